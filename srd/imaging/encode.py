"""Encode a RasterImage to the bytes of a PNG (srd's own streaming writer), WebP or JPEG file (Pillow)."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from PIL import Image

from srd.errors import UsageError
from srd.imaging.formats import output_format
from srd.imaging.png import DEFAULT_LEVEL, DEFAULT_STRATEGY, STRATEGIES, encode_png
from srd.imaging.raster import FloatArray, RasterImage, icc_matches

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
    """The file suffix for an output format: ".png", ".webp" or ".jpg"."""
    try:
        return output_format(fmt).suffix
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def quantize(x: FloatArray, maxv: int, dtype: type[np.unsignedinteger]) -> npt.NDArray[np.unsignedinteger]:
    """floor(x * maxv + 0.5) clipped to 0..maxv, in float32 arithmetic as waifu2x and ncnn do."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(maxv) + np.float32(0.5)
    np.floor(scaled, out=scaled)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.clip(scaled, 0, maxv, out=scaled)
    return scaled.astype(dtype)


def encode_image(
    image: RasterImage,
    fmt: str = "png",
    *,
    quality: int = 95,
    png_level: int = DEFAULT_LEVEL,
    png_strategy: str = DEFAULT_STRATEGY,
    background: tuple[float, float, float] = WHITE,
) -> bytes:
    """The complete file bytes of the image as PNG, WebP or JPEG.

    PNG keeps 16-bit images at 16 bits and alpha; JPEG is 8-bit and has no alpha: an image with alpha is
    composited onto `background` (RGB in 0..1, white by default), never written with the colours its
    transparent pixels happen to hold; WebP has no gray, so gray is written as RGB. The ICC profile is
    embedded when it fits the written pixels.
    """
    output_suffix(fmt)
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be 1..100, got {quality}")
    if not 0 <= png_level <= 9:
        raise UsageError(f"png_level must be 0..9, got {png_level}")
    if png_strategy not in STRATEGIES:
        raise UsageError(f"png_strategy must be one of {', '.join(STRATEGIES)}, got {png_strategy!r}")
    if fmt == "jpg" and image.alpha is not None:
        image = flatten(image, background)
    planes = [image.pixels] if image.alpha is None else [image.pixels, image.alpha[..., None]]
    maxv, dtype = (65535, np.uint16) if fmt == "png" and image.bits == 16 else (255, np.uint8)
    samples = quantize(np.concatenate(planes, axis=2), maxv, dtype)
    if fmt == "webp" and image.channels == 1:
        samples = np.concatenate([samples[..., :1]] * 3 + [samples[..., 1:]], axis=2)
    C = samples.shape[2]
    icc = image.icc_profile if icc_matches(image.icc_profile, 1 if C < 3 else 3) else None
    if fmt == "png":
        return encode_png(samples, icc, level=png_level, strategy=png_strategy)
    pil_mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[C]
    pil = Image.fromarray(samples[..., 0] if C == 1 else samples, mode=pil_mode)
    options: dict[str, object] = {} if icc is None else {"icc_profile": icc}
    out = io.BytesIO()
    if fmt == "jpg":
        # 4:4:4: chroma subsampling would smear exactly the sharp edges an upscaler is for.
        pil.save(out, format="JPEG", quality=quality, subsampling=0, **options)
    else:
        pil.save(out, format="WEBP", quality=quality, **options)
    return out.getvalue()
