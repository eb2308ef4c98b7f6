"""`srd models`: the built-in model families, with their passes, licences and costs."""

from __future__ import annotations

from srd.models.catalog import BUILTINS, COMMUNITY_ARCHITECTURES


def models_command() -> int:
    """Print the built-in models and how to use any other; exit status 0."""
    for name, family in BUILTINS.items():
        note = f" ({family.levels_note})" if family.levels_note else ""
        cost = ", ".join(f"{scale}x {gflop:.0f}" for scale, gflop in family.gflop_per_mpx)
        print(f"{name:<24} {family.description}")
        print(f"{'':<4}{family.levels_text()}{note}")
        print(f"{'':<4}{family.arch}, {family.licence}; GFLOP per output megapixel: {cost}")
    print()
    print("A scale a model has no pass for runs the next larger one, then a Lanczos downscale; waifu2x's")
    print("models make 4x from two 2x passes (noise reduction on the first). GFLOP per megapixel is the")
    print("work the network does: time grows with it. Any waifu2x .json model, ncnn .param (with .bin")
    print("beside it), or a folder of them also works as -m PATH.")
    print()
    print("Community models (PyTorch .pth / .ckpt, .safetensors) work as -m PATH too, read without PyTorch;")
    names = ", ".join(COMMUNITY_ARCHITECTURES)
    print(f"their architecture is detected from the weights: {names}.")
    print("`srd models --inspect FILE` says what a file is.")
    return 0
