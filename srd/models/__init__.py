"""Model files: ncnn .param/.bin and waifu2x JSON parsers, and the registry of built-in models."""
