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

from srd.imaging.raster import RasterImage
from srd.status.history import thumbnail_path

QUALITY = 80
METHOD = 2  # libwebp's effort, 0..6: at 2 as small as at 4 on upscaled images, in about half the time
log = structlog.get_logger("srd.worker")


def thumbnail_image(image: RasterImage, size: int) -> Image.Image:
    """The image fitted in size x size (never enlarged), as 8-bit RGB(A)."""
    # Subsample a big image with a stride first (a view, no copy), so a 16 Mpx output costs a few MB here.
    step = max(1, max(image.width, image.height) // (2 * size))
    pixels = image.pixels[::step, ::step]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    planes = [pixels]
    if image.alpha is not None:
        planes.append(image.alpha[::step, ::step, None])
    stacked = np.concatenate(planes, axis=2) if len(planes) > 1 else pixels
    scaled = stacked * np.float32(255.0)
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
    except (OSError, ValueError) as exc:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
        log.warning("thumbnail.failed", job_id=job_id, error=str(exc))
