"""Image files in and out: the format table, decoding untrusted files under limits (stills, animations,
TIFF pages), encoding every written format, metadata, PNG/APNG/GIF/16-bit TIFF writers.

The names load on first use, so that importing one module (the command line's parser needs only the
format table) does not import every codec and numpy with it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from srd.imaging.animation import Animation, AnimationResult, Frame, write_animation
    from srd.imaging.decode import Pages, read_image, read_media
    from srd.imaging.encode import encode_image, output_suffix, quantize
    from srd.imaging.formats import FORMATS, ImageFormat, resolve_output
    from srd.imaging.metadata import Metadata
    from srd.imaging.png import PngStreamWriter
    from srd.imaging.raster import RasterImage

_LAZY = {
    "Animation": "srd.imaging.animation",
    "AnimationResult": "srd.imaging.animation",
    "Frame": "srd.imaging.animation",
    "write_animation": "srd.imaging.animation",
    "Pages": "srd.imaging.decode",
    "read_image": "srd.imaging.decode",
    "read_media": "srd.imaging.decode",
    "encode_image": "srd.imaging.encode",
    "output_suffix": "srd.imaging.encode",
    "quantize": "srd.imaging.encode",
    "FORMATS": "srd.imaging.formats",
    "ImageFormat": "srd.imaging.formats",
    "resolve_output": "srd.imaging.formats",
    "Metadata": "srd.imaging.metadata",
    "PngStreamWriter": "srd.imaging.png",
    "RasterImage": "srd.imaging.raster",
}

__all__ = [
    "FORMATS",
    "Animation",
    "AnimationResult",
    "Frame",
    "ImageFormat",
    "Metadata",
    "Pages",
    "PngStreamWriter",
    "RasterImage",
    "encode_image",
    "output_suffix",
    "quantize",
    "read_image",
    "read_media",
    "resolve_output",
    "write_animation",
]


def __getattr__(name: str) -> object:
    """Load a name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srd.imaging' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
