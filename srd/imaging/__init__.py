"""Image files in and out: the format table, decoding untrusted files under limits (stills, animations,
TIFF pages), encoding every written format, metadata, PNG/APNG/GIF/16-bit TIFF writers."""

from srd.imaging.animation import Animation, AnimationResult, Frame, write_animation
from srd.imaging.decode import Pages, read_image, read_media
from srd.imaging.encode import encode_image, output_suffix, quantize
from srd.imaging.formats import FORMATS, ImageFormat, resolve_output
from srd.imaging.metadata import Metadata
from srd.imaging.png import PngStreamWriter
from srd.imaging.raster import RasterImage

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
