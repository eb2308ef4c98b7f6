"""Before/after thumbnails for the status page, made by the worker from the pixels it already holds.

Never from the inbox's bytes: what the page shows went through the same bounded decoder as the job, and
`srd web` serves only these small WebP files, looked up by job id.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import structlog
from PIL import Image

from srd.imaging.raster import RasterImage, fit_inside, quantize
from srd.status.history import thumbnail_path

QUALITY = 80
# libwebp's effort, 0..6: 0 is as faithful as 2 and 4 on 320 px thumbnails (Set14: within 0.2 dB PSNR) and
# ~20% larger (17 vs 14 KB for lenna), in 1.2 ms against 2.0 at 2 and 6 at 4 (Intel Xeon)
METHOD = 0
log = structlog.get_logger("srd.worker")


def thumbnail_image(image: RasterImage, size: int) -> Image.Image:
    """The image fitted in size x size (never enlarged), as 8-bit RGB(A).

    A big image is cut down before anything touches all its pixels: subsampled with a stride (a view, no
    copy) to at most about 4 x size, quantized to 8 bits (srd.imaging.raster.quantize, one pass in C),
    box-averaged by Pillow's reduce to between 1 and 2 x size, and fitted by Pillow's bicubic, which at
    these ratios looks as Lanczos does (a 1024 px output: 4.9 -> 3.9 ms; a 16 Mpx one costs a few MB
    here). The fitted size is the whole image's, whatever the stride and the box left out."""
    step = max(1, max(image.width, image.height) // (4 * size))
    pixels = image.pixels[::step, ::step]
    if image.alpha is not None:
        pixels = np.concatenate([pixels, image.alpha[::step, ::step, None]], axis=2)
    samples = quantize(pixels, 255, np.uint8)
    height, width, channels = samples.shape
    thumb = Image.fromarray(samples[:, :, 0] if channels == 1 else samples)  # L, LA, RGB or RGBA
    factor = min(max(height, width) // size, height, width)  # a 6000 x 2 image keeps its two rows
    if factor >= 2:
        thumb = thumb.reduce(factor)
    if thumb.mode in ("L", "LA"):
        thumb = thumb.convert("RGBA" if image.alpha is not None else "RGB")
    fitted = (image.width, image.height)
    if max(fitted) > size:  # never enlarged
        fitted = fit_inside(image.width, image.height, size, size)
    return thumb.resize(fitted, Image.Resampling.BICUBIC)


def write_thumbnails(folder: Path, job_id: str, before: RasterImage, after: RasterImage, size: int) -> None:
    """Write <job_id>.before.webp and .after.webp atomically; a failure is logged, never raised."""
    temp: Path | None = None
    try:
        for side, image in (("before", before), ("after", after)):
            path = thumbnail_path(folder, job_id, side)
            temp = path.with_name(f".{path.name}.tmp")
            thumbnail_image(image, size).save(temp, "WEBP", quality=QUALITY, method=METHOD)
            os.replace(temp, path)
    except Exception as exc:  # a thumbnail must never fail the job it shows (logged)
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
        log.warning("thumbnail.failed", job_id=job_id, error=str(exc))
