"""Jobs of many frames, upscaled and written inside the upscaling half of a job (srd/jobs/runner.py): an
animation streamed frame by frame into its output, a multi-page TIFF page by page into a multi-page TIFF
(output.tiff_pages `all`) or into one output per page (`separate`, staged for srd/jobs/pages.py)."""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import BinaryIO

from PIL import TiffImagePlugin

from srd.imaging.animation import Animation, AnimationResult, write_animation
from srd.imaging.decode import Pages
from srd.imaging.encode import encode_image
from srd.imaging.formats import resolve_output
from srd.imaging.metadata import NONE
from srd.imaging.raster import RasterImage
from srd.jobs.fsops import fsync_dir, write_file_synced, write_synced
from srd.jobs.messages import JobDone, JobSpec
from srd.jobs.pages import page_file_name
from srd.settings import OutputSettings

Upscale = Callable[[RasterImage], RasterImage]
FramesDone = Callable[[int, int], None] | None


class _FirstFrame:
    """Wraps the upscale call and keeps the first frame (or page) and its result, for the thumbnails."""

    def __init__(self, upscale: Upscale) -> None:
        self._upscale = upscale
        self.pair: tuple[RasterImage, RasterImage] | None = None

    def __call__(self, image: RasterImage) -> RasterImage:
        upscaled = self._upscale(image)
        if self.pair is None:
            self.pair = (image, upscaled)
        return upscaled

    def write_thumbnails(self, spec: JobSpec) -> None:
        """The status page's before/after of the first frame; never fails the job."""
        if spec.thumbnails is not None and self.pair is not None:
            # The daemon's thumbnails (srd web); `srd upscale` asks for none and never imports their
            # writer (nor structlog with it: a tenth of a one-shot run's start-up).
            from srd.status.thumbnails import write_thumbnails

            write_thumbnails(spec.thumbnails, spec.job_id, *self.pair, spec.thumbnail_size)


def with_scaled_metadata(image: RasterImage, upscaled: RasterImage) -> RasterImage:
    """`upscaled` with the metadata of `image` scaled to it (DPI and Exif sizes; srd.imaging.metadata)."""
    sx, sy = upscaled.width / image.width, upscaled.height / image.height
    return replace(upscaled, metadata=image.metadata.scaled(upscaled.width, upscaled.height, sx, sy))


def wants_pages(output: OutputSettings) -> bool:
    """Whether a multi-page TIFF is read page by page: output.tiff_pages `separate`, or `all` and a TIFF
    output."""
    if output.tiff_pages == "separate":
        return True
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
    first = _FirstFrame(upscale)

    def write(handle: BinaryIO) -> None:
        nonlocal result
        result = write_animation(
            animation,
            first,
            handle,
            fmt.name,
            quality=output.quality,
            lossless=output.webp_lossless,
            keep_metadata=output.metadata == "keep",
            on_frame=frames,
        )

    write_synced(spec.temp, write)
    assert result is not None
    first.write_thumbnails(spec)
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


def upscaled_pages(
    upscale: Upscale, pages: Pages, output: OutputSettings, frames: FramesDone
) -> Iterator[tuple[RasterImage, RasterImage]]:
    """Each page and its upscaled image (metadata scaled, or stripped), one page decoded at a time."""
    for number, page in enumerate(pages, 1):
        upscaled = with_scaled_metadata(page, upscale(page))
        if output.metadata != "keep":
            upscaled = replace(upscaled, metadata=NONE)
        yield page, upscaled
        if frames is not None:
            frames(number, pages.count)


def encode_page(upscaled: RasterImage, fmt: str, output: OutputSettings) -> bytes:
    """One upscaled page in the output format `fmt`, with output's encoder settings."""
    return encode_image(
        upscaled,
        fmt,
        quality=output.quality,
        png_level=output.png_level,
        png_strategy=output.png_strategy,
        background=output.background_rgb,
        lossless=output.webp_lossless,
    )


Sizes = list[tuple[tuple[int, int], tuple[int, int]]]  # each page's (input size, output size)


def multipage_tiff(
    pairs: Iterator[tuple[RasterImage, RasterImage]], output: OutputSettings
) -> tuple[bytes, Sizes]:
    """The upscaled pages of `pairs` (upscaled_pages) as one multi-page TIFF, held compressed."""
    buffer = io.BytesIO()
    sizes: Sizes = []
    with TiffImagePlugin.AppendingTiffWriter(buffer) as pages_out:
        for page, upscaled in pairs:
            pages_out.write(encode_image(upscaled, "tiff", background=output.background_rgb))
            pages_out.newFrame()
            sizes.append(((page.width, page.height), (upscaled.width, upscaled.height)))
    return buffer.getvalue(), sizes


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
    first = _FirstFrame(upscale)
    data, sizes = multipage_tiff(upscaled_pages(first, pages, output, frames), output)
    write_file_synced(spec.temp, data)
    first.write_thumbnails(spec)
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


def separate_pages_job(
    upscale: Upscale,
    spec: JobSpec,
    pages: Pages,
    input_bytes: int,
    started: float,
    frames: FramesDone,
) -> JobDone:
    """Upscale every page of a multi-page TIFF into its own file in output.format, each written and
    fsynced into the job's staging folder (emptied first: an earlier attempt may have left pages there)
    for the publisher to publish all together (srd/jobs/pages.py)."""
    output = spec.output
    fmt = resolve_output(output.format, "TIFF")
    shutil.rmtree(spec.staging, ignore_errors=True)
    spec.staging.mkdir()
    names: list[str] = []
    sizes: Sizes = []
    written = 0
    first = _FirstFrame(upscale)
    for page, upscaled in upscaled_pages(first, pages, output, frames):
        data = encode_page(upscaled, fmt.name, output)
        names.append(page_file_name(len(names) + 1, pages.count, fmt.suffix))
        write_file_synced(spec.staging / names[-1], data)
        written += len(data)
        sizes.append(((page.width, page.height), (upscaled.width, upscaled.height)))
    fsync_dir(spec.staging)
    first.write_thumbnails(spec)
    return JobDone(
        job_id=spec.job_id,
        input_size=sizes[0][0],
        output_size=sizes[0][1],
        input_bytes=input_bytes,
        output_bytes=written,
        ms=round((time.monotonic() - started) * 1000, 1),
        frames=len(names),
        suffix=fmt.suffix,
        pages=tuple(names),
    )
