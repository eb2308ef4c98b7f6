"""Image files in and out: the format table, decoding untrusted files under limits, encoding, PNG."""

from srd.imaging.decode import read_image
from srd.imaging.encode import encode_image, output_suffix, quantize
from srd.imaging.formats import FORMATS, ImageFormat
from srd.imaging.png import PngStreamWriter
from srd.imaging.raster import RasterImage

__all__ = [
    "FORMATS",
    "ImageFormat",
    "PngStreamWriter",
    "RasterImage",
    "encode_image",
    "output_suffix",
    "quantize",
    "read_image",
]
