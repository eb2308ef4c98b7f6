"""`srd upscale`'s options, with their defaults and choices taken from the settings schema (no JAX here:
`srd --help` must stay fast)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from srd.imaging.formats import ANIMATION_NAMES, WRITE_NAMES
from srd.settings import EngineSettings, ModelSettings, OutputSettings

_MODEL = ModelSettings().model_dump()
_ENGINE = EngineSettings().model_dump()
_OUTPUT = OutputSettings().model_dump()


def _choices(model: type[BaseModel], key: str) -> list[Any]:
    """The values a Literal field of the schema allows."""
    return list(get_args(model.model_fields[key].annotation))


def add_upscale_parser(sub: Any, epilog: str, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the `upscale` command to the subparsers `sub`."""
    up: argparse.ArgumentParser = sub.add_parser(
        "upscale",
        help="upscale image files or folders once, then exit",
        description="Upscale image and video files, or every one in folders (recursively), and write each"
        " result beside its input as NAME_x2.png (NAME_x4_n1.png for -s 4 -n 1, clip_x2.mp4, ...) or under"
        " -o. An existing output is never replaced without --overwrite; every write is atomic; a video"
        " interrupted resumes at its first unfinished segment when run again.",
        epilog=epilog,
        formatter_class=formatter,
    )
    up.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files, or folders (recursive)"
    )
    up.add_argument(
        "-o", "--outdir", type=Path, default=None, help="output folder (default: beside each input)"
    )
    up.add_argument(
        "-m", "--model", default=_MODEL["name"], help="built-in model name or a model path (see `srd models`)"
    )
    up.add_argument(
        "-n",
        "--noise",
        type=int,
        default=_MODEL["noise"],
        choices=_choices(ModelSettings, "noise"),
        help="noise reduction level",
    )
    up.add_argument(
        "-s",
        "--scale",
        type=int,
        default=None,
        choices=_choices(ModelSettings, "scale"),
        help="scale factor (default: the model's own: 4 for the x4-only models and a 4x model file, else 2)",
    )
    up.add_argument(
        "--size",
        default=None,
        metavar="WxH",
        help="output size: fit in WxH keeping the aspect ratio, or WxH! for exactly that"
        " (Lanczos from the next 2^k result)",
    )
    up.add_argument("--tile", type=int, default=None, help="tile size in input pixels (default: per model)")
    up.add_argument("--batch", type=int, default=_ENGINE["batch"], help="tiles per network call")
    up.add_argument(
        "--alpha",
        default=_MODEL["alpha"],
        choices=_choices(ModelSettings, "alpha"),
        help="how alpha is upscaled: as the model's reference program does (waifu2x: by the network;"
        " Real-CUGAN, Real-ESRGAN, RealSR: bicubic), or by the network for every model",
    )
    up.add_argument(
        "--syncgap",
        type=int,
        default=_MODEL["syncgap"],
        choices=_choices(ModelSettings, "syncgap"),
        help="Real-CUGAN on images larger than one tile: how tiles share their squeeze-excitation, as"
        " realcugan-ncnn-vulkan's -c (0 each its own, 1 accurate, 2 rough, 3 very rough)",
    )
    up.add_argument(
        "--tta", action="store_true", help="8-way test-time augmentation (8x slower, slightly better)"
    )
    up.add_argument(
        "-f",
        "--format",
        default=_OUTPUT["format"],
        choices=list(WRITE_NAMES),
        metavar="FORMAT",  # the choices are listed once, in the help, not twice in the option's name
        help=f"output format of still images: {', '.join(WRITE_NAMES)} (same: the input's where srd"
        " writes it, else png)",
    )
    up.add_argument(
        "--animation",
        default=_OUTPUT["animation"],
        choices=list(ANIMATION_NAMES),
        help="output format of animated GIF/APNG/WebP inputs (same, png = APNG, webp, gif)",
    )
    up.add_argument(
        "--tiff-pages",
        default=_OUTPUT["tiff_pages"],
        choices=_choices(OutputSettings, "tiff_pages"),
        help="multi-page TIFF inputs: the first page, all pages into one multi-page TIFF (with a TIFF"
        " output), or separate: each page its own file, NAME_x2.p001.png, ...",
    )
    up.add_argument("-q", "--quality", type=int, default=_OUTPUT["quality"], help="JPEG/WebP quality")
    up.add_argument(
        "--background",
        default=_OUTPUT["background"],
        metavar="#RRGGBB",
        help="formats without alpha (JPEG, BMP, PPM): transparent areas are composited onto this colour"
        " (default: white)",
    )
    up.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="a live status line with percentages for long images (auto: on a terminal)",
    )
    existing = up.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing output files")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave inputs whose output exists alone (a rerun of a folder does only what is new)",
    )
    up.add_argument("--device", default=_ENGINE["device"], help="JAX platform: auto, cpu, gpu or tpu")

    up.add_argument(
        "--conv",
        default=_ENGINE["conv"],
        choices=_choices(EngineSettings, "conv"),
        help="3x3 convolution algorithm: native (srd's Winograd F(6x6,3x3) CPU kernel), native-bf16 (the"
        " same with bfloat16 matmuls on AMX: faster, ~0.03 dB less PSNR), direct (lax.conv), winograd"
        " (F(4x4,3x3) in jnp, slow); auto = native on the CPU when built, else direct",
    )
    up.add_argument(
        "--precision",
        default=_ENGINE["precision"],
        choices=_choices(EngineSettings, "precision"),
        help="the dtype the network computes in: float32, or bfloat16/float16 (for GPUs; runs lax.conv)",
    )
    up.add_argument(
        "--cache-dir",
        default=None,
        help="JAX compilation cache (default: $XDG_CACHE_HOME/srd/jax; 'none' disables it)",
    )
