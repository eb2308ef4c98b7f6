"""`srd models`: the built-in model families, with architecture, passes and description."""

from __future__ import annotations

from srd.models import BUILTINS


def models_command() -> int:
    """Print the built-in models and how to use any other; exit status 0."""
    print(f"{'name':<15} {'arch':<9} {'levels':<45} description")
    for name, family in BUILTINS.items():
        print(f"{name:<15} {family.arch:<9} {family.levels_text():<45} {family.description}")
    print("\nAny waifu2x .json model, ncnn .param (with .bin beside it), or a folder of them")
    print("also works as -m PATH.")
    print("Scale 4 runs the 2x model twice (noise on the first pass only).")
    return 0
