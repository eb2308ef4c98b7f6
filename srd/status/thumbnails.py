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

from srd.imaging.raster import FloatArray, RasterImage
from srd.status.history import thumbnail_path

QUALITY = 80
METHOD = 2  # libwebp's effort, 0..6: at 2 as small as at 4 on upscaled images, in about half the time
log = structlog.get_logger("srd.worker")


def _box_reduce(pixels: FloatArray, factor: int) -> FloatArray:
    """The mean of each whole factor x factor block (the last rows and columns that make no whole block,
    fewer than `factor`, are left out): rows summed over contiguous memory first, then the columns of a
    factor-times smaller array, so the big image is read once."""
    h, w, channels = pixels.shape[0] // factor, pixels.shape[1] // factor, pixels.shape[2]
    rows = pixels[: h * factor, : w * factor].reshape(h, factor, w * factor * channels)
    summed = rows[:, 0].astype(np.float32)
    for dy in range(1, factor):
        summed += rows[:, dy]
    blocks = summed.reshape(h, w, factor * channels)
    total = blocks[:, :, :channels].copy()
    for dx in range(1, factor):
        total += blocks[:, :, dx * channels : (dx + 1) * channels]
    total *= np.float32(1.0 / (factor * factor))
    return total


def thumbnail_image(image: RasterImage, size: int) -> Image.Image:
    """The image fitted in size x size (never enlarged), as 8-bit RGB(A).

    A big image is cut down before anything touches all its pixels: subsampled with a stride (a view, no
    copy) to at most about 4 x size, then box-averaged to between 1 and 2 x size, quantized, and fitted by
    Pillow's Lanczos (a 1024 px output: 11 -> 6 ms; a 16 Mpx one costs a few MB here). The box drops
    fewer than `factor` edge rows and columns, which can move the fitted size by a pixel."""
    step = max(1, max(image.width, image.height) // (4 * size))
    planes = [image.pixels[::step, ::step]]
    if image.alpha is not None:
        planes.append(image.alpha[::step, ::step, None])
    height, width = planes[0].shape[:2]
    factor = min(max(height, width) // size, height, width)  # a 6000 x 2 image keeps its two rows
    reduced = [_box_reduce(plane, factor) if factor >= 2 else plane.astype(np.float32) for plane in planes]
    if reduced[0].shape[2] == 1:
        reduced[0] = np.repeat(reduced[0], 3, axis=2)
    scaled = np.concatenate(reduced, axis=2) if len(reduced) > 1 else reduced[0]
    scaled *= np.float32(255.0)
    scaled += np.float32(0.5)
    data = np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)  # rounds as floor(x + 0.5) on 0..255
    thumb = Image.fromarray(data, "RGBA" if image.alpha is not None else "RGB")
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return thumb


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
