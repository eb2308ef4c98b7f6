"""What srd offers, as data that imports no JAX (`srd models` lists it in a fraction of a second): the
built-in model families by name, and the names of the community architectures srd.models.community reads
(tests/unit/test_community_models.py checks these against that package's ARCHITECTURES)."""

from __future__ import annotations

from srd.models import realcugan, realesrgan, waifu2x
from srd.models.family import ModelFamily

BUILTINS: dict[str, ModelFamily] = {
    family.name: family for family in (*waifu2x.FAMILIES, *realcugan.FAMILIES, *realesrgan.FAMILIES)
}

# The community architectures srd reads from .pth / .safetensors files, as `srd models` names them.
COMMUNITY_ARCHITECTURES: tuple[str, ...] = (
    "ESRGAN",
    "Compact",
    "SPAN",
    "RealPLKSR",
    "SwinIR",
    "HAT",
    "DAT",
)
