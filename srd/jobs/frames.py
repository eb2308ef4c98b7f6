"""Jobs of many frames, upscaled and written inside the upscaling half of a job (srd/jobs/runner.py): an
animation streamed frame by frame into its output, a multi-page TIFF page by page into a multi-page TIFF."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import BinaryIO

from PIL import TiffImagePlugin

from srd.imaging.animation import Animation, AnimationResult, write_animation
from srd.imaging.decode import Pages
from srd.imaging.encode import encode_image
from srd.imaging.formats import resolve_output
from srd.imaging.metadata import NONE
from srd.imaging.raster import RasterImage
from srd.jobs.fsops import write_file_synced, write_synced
from srd.jobs.messages import JobDone, JobSpec
from srd.settings import OutputSettings

Upscale = Callable[[RasterImage], RasterImage]
FramesDone = Callable[[int, int], None] | None


def with_scaled_metadata(image: RasterImage, upscaled: RasterImage) -> RasterImage:
    """`upscaled` with the metadata of `image` scaled to it (DPI and Exif sizes; srd.imaging.metadata)."""
    sx, sy = upscaled.width / image.width, upscaled.height / image.height
    return replace(upscaled, metadata=image.metadata.scaled(upscaled.width, upscaled.height, sx, sy))


def wants_pages(output: OutputSettings) -> bool:
    """Whether a multi-page TIFF is read page by page: output.tiff_pages `all` and a TIFF output."""
    return output.tiff_pages == "all" and resolve_output(output.format, "TIFF").name == "tiff"


def animation_job(
    upscale: Upscale,
    spec: JobSpec,
    animation: Animation,
    input_bytes: int,
    started: float,
    frames: FramesDone,
) -> JobDone:
    """Upscale an animation frame by frame into the job's temporary output, in output.animation's format."""
    output = spec.output
    fmt = resolve_output(output.animation, animation.source_format)
    result: AnimationResult | None = None

    def write(handle: BinaryIO) -> None:
        nonlocal result
        result = write_animation(
            animation,
            upscale,
            handle,
            fmt.name,
            quality=output.quality,
            lossless=output.webp_lossless,
            keep_metadata=output.metadata == "keep",
            on_frame=frames,
        )

    write_synced(spec.temp, write)
    assert result is not None
    return JobDone(
        job_id=spec.job_id,
        input_size=(animation.width, animation.height),
        output_size=result.size,
        input_bytes=input_bytes,
        output_bytes=os.stat(spec.temp).st_size,
        ms=round((time.monotonic() - started) * 1000, 1),
        frames=result.frames,
        suffix=fmt.suffix,
    )


def pages_job(
    upscale: Upscale,
    spec: JobSpec,
    pages: Pages,
    input_bytes: int,
    started: float,
    frames: FramesDone,
) -> JobDone:
    """Upscale every page of a multi-page TIFF into one multi-page TIFF; one page is decoded at a time and
    the output is held compressed."""
    output = spec.output
    buffer = io.BytesIO()
    sizes: list[tuple[tuple[int, int], tuple[int, int]]] = []
    with TiffImagePlugin.AppendingTiffWriter(buffer) as pages_out:
        for page in pages:
            upscaled = with_scaled_metadata(page, upscale(page))
            if output.metadata != "keep":
                upscaled = replace(upscaled, metadata=NONE)
            pages_out.write(encode_image(upscaled, "tiff", background=output.background_rgb))
            pages_out.newFrame()
            sizes.append(((page.width, page.height), (upscaled.width, upscaled.height)))
            if frames is not None:
                frames(len(sizes), pages.count)
    data = buffer.getvalue()
    write_file_synced(spec.temp, data)
    return JobDone(
        job_id=spec.job_id,
        input_size=sizes[0][0],
        output_size=sizes[0][1],
        input_bytes=input_bytes,
        output_bytes=len(data),
        ms=round((time.monotonic() - started) * 1000, 1),
        frames=len(sizes),
        suffix=resolve_output(output.format, "TIFF").suffix,
    )
