"""Encode a RasterImage to the bytes of a file in any format srd writes (srd/imaging/formats.py): PNG by
srd's own writer, GIF by srd's GIF writer (srd/imaging/animation_writers.py), the rest through Pillow."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from PIL import Image, features

from srd.errors import UsageError
from srd.imaging.formats import ImageFormat, output_format
from srd.imaging.gif import GifWriter
from srd.imaging.metadata import NONE, Metadata, pillow_options, png_chunks
from srd.imaging.png import STRATEGIES, encode_png
from srd.imaging.png_options import DEFAULT_LEVEL, DEFAULT_STRATEGY
from srd.imaging.raster import RasterImage, icc_matches, quantize
from srd.imaging.tiff import encode_tiff16

__all__ = ["WHITE", "encode_image", "flatten", "output_suffix", "quantize"]

WHITE = (1.0, 1.0, 1.0)


def flatten(image: RasterImage, background: tuple[float, float, float]) -> RasterImage:
    """The image composited onto an opaque background colour (alpha over), without alpha."""
    if image.alpha is None:
        return image
    alpha = image.alpha[..., None]
    colour = np.asarray(background, np.float32)
    if image.channels == 1:
        colour = colour.mean(keepdims=True, dtype=np.float32)
    pixels = image.pixels * alpha + colour * (np.float32(1.0) - alpha)
    return replace(image, pixels=np.ascontiguousarray(pixels, np.float32), alpha=None)


def output_suffix(fmt: str) -> str:
    """The file suffix for an output format (not `same`): ".png", ".webp", ".jpg", ".tif", ..."""
    try:
        return output_format(fmt).suffix
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def encode_image(
    image: RasterImage,
    fmt: str = "png",
    *,
    quality: int = 95,
    png_level: int = DEFAULT_LEVEL,
    png_strategy: str = DEFAULT_STRATEGY,
    background: tuple[float, float, float] = WHITE,
    lossless: bool = False,
    keep_metadata: bool = True,
) -> bytes:
    """The complete file bytes of the image in srd's output format `fmt` (not `same`: resolve it first).

    What the format cannot hold is adapted, as its row of srd.imaging.formats says: an image with alpha is
    composited onto `background` (RGB in 0..1, white by default) for a format without alpha, never written
    with the colours its transparent pixels happen to hold; gray becomes RGB where the format has no gray;
    16-bit images stay 16-bit where the format keeps them (PNG: all; TIFF: gray, RGB, RGBA; PGM and JPEG
    2000: gray without alpha), else 8-bit. The ICC profile is embedded when it fits the written pixels;
    `keep_metadata` writes the image's EXIF, XMP, DPI and PNG text where the format carries them.
    `lossless` is WebP's.
    """
    try:
        target = output_format(fmt)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be 1..100, got {quality}")
    if not 0 <= png_level <= 9:
        raise UsageError(f"png_level must be 0..9, got {png_level}")
    if png_strategy not in STRATEGIES:
        raise UsageError(f"png_strategy must be one of {', '.join(STRATEGIES)}, got {png_strategy!r}")
    if not target.alpha and image.alpha is not None:
        image = flatten(image, background)
    metadata = image.metadata if keep_metadata else NONE
    samples = _samples(image, target)
    C = samples.shape[2]
    icc = image.icc_profile if icc_matches(image.icc_profile, 1 if C < 3 else 3) else None
    if target.name == "png":
        return encode_png(samples, icc, level=png_level, strategy=png_strategy, chunks=png_chunks(metadata))
    if target.name == "gif":
        return _encode_gif(samples)
    return _encode_pillow(samples, target, icc, metadata, quality=quality, lossless=lossless)


def _samples(image: RasterImage, target: ImageFormat) -> npt.NDArray[np.unsignedinteger]:
    """The integer samples to write: gray or RGB, with alpha if any, at 8 or 16 bits as `target` keeps."""
    layout = image.channels + (image.alpha is not None)
    deep = image.bits == 16 and layout in target.deep
    planes = [image.pixels] if image.alpha is None else [image.pixels, image.alpha[..., None]]
    maxv, dtype = (65535, np.uint16) if deep else (255, np.uint8)
    samples = quantize(planes[0] if len(planes) == 1 else np.concatenate(planes, axis=2), maxv, dtype)
    if not target.gray and image.channels == 1:
        samples = np.concatenate([samples[..., :1]] * 3 + [samples[..., 1:]], axis=2)
    return samples


def _encode_gif(samples: npt.NDArray[np.unsignedinteger]) -> bytes:
    """A still GIF: the RGBA image quantised to 255 colours plus a transparent index."""
    rgba = (
        samples
        if samples.shape[2] == 4
        else np.concatenate([samples, np.full_like(samples[..., :1], 255)], 2)
    )
    out = io.BytesIO()
    writer = GifWriter(out, (rgba.shape[1], rgba.shape[0]), plays=1)
    writer.add(np.asarray(rgba, np.uint8), 0)
    writer.close()
    return out.getvalue()


_TIFF_COMPRESSION = "tiff_adobe_deflate" if features.check_codec("libtiff") else None


def _encode_pillow(
    samples: npt.NDArray[np.unsignedinteger],
    target: ImageFormat,
    icc: bytes | None,
    metadata: Metadata,
    *,
    quality: int,
    lossless: bool,
) -> bytes:
    C = samples.shape[2]
    if samples.dtype == np.uint16 and C > 1:  # 16-bit colour: only TIFF gets here (formats.py)
        return encode_tiff16(samples, icc, metadata)
    if samples.dtype == np.uint16:
        pil = Image.fromarray(np.ascontiguousarray(samples[..., 0], np.uint16))  # I;16
    else:
        pil_mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[C]
        pil = Image.fromarray(samples[..., 0] if C == 1 else samples, mode=pil_mode)
    options: dict[str, object] = pillow_options(metadata, target.name)
    if icc is not None and target.name in ("jpg", "webp", "tiff", "avif", "jp2"):
        options["icc_profile"] = icc
    if target.name == "jpg":
        # 4:4:4: chroma subsampling would smear exactly the sharp edges an upscaler is for.
        options |= {"quality": quality, "subsampling": 0}
    elif target.name == "webp":
        options |= {"quality": quality, "lossless": lossless, "exact": True, "method": 4}
    elif target.name == "avif":
        options |= {"quality": quality}
    elif target.name == "tiff" and _TIFF_COMPRESSION is not None:
        options["compression"] = _TIFF_COMPRESSION
    elif target.name == "tga":
        options["compression"] = "tga_rle"
    out = io.BytesIO()
    pil.save(out, format=target.pillow, **options)
    return out.getvalue()
