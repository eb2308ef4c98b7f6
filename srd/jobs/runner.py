"""One job's work, whoever runs it: decode -> engine.upscale -> encode -> an fsynced temporary file.

Split in two halves so the local worker can encode one job on a thread while it upscales the next
(`upscale_job`, then `write_job`); `run_job` does both, for a runner that takes one job at a time. An
animation is upscaled and written frame by frame inside `upscale_job` (srd/jobs/frames.py: streamed, its
frames never all exist at once), which then returns its `JobDone` directly; so is a video (srd/jobs/video.py,
segment by segment). Errors
never escape: they become a `JobFailed` that says whose fault they were. The engine is passed in, so this
module never imports JAX itself (nor the worker's test-fault hooks: srd/workers/process.py calls those).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from srd.imaging.animation import Animation
from srd.imaging.decode import Pages, read_media
from srd.imaging.formats import is_video, resolve_output
from srd.imaging.metadata import NONE
from srd.imaging.raster import RasterImage
from srd.jobs.frames import (
    animation_job,
    encode_page,
    pages_job,
    separate_pages_job,
    wants_pages,
    with_scaled_metadata,
)
from srd.jobs.fsops import write_file_synced
from srd.jobs.messages import JobDone, JobFailed, JobResult, JobSpec
from srd.status.thumbnails import write_thumbnails

ProgressFn = Callable[[int, int], None]  # (tiles done, tiles in all)


class Upscaler(Protocol):
    """What a runner needs of srd.engine.Engine."""

    def upscale(
        self,
        image: RasterImage,
        target_size: tuple[int, int] | None = None,
        progress: ProgressFn | None = None,
    ) -> RasterImage: ...


@dataclass(frozen=True)
class UpscaledJob:
    """A job whose image is upscaled and waits to be encoded and written."""

    spec: JobSpec
    image: RasterImage
    upscaled: RasterImage
    input_bytes: int
    started: float

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def output_pixels(self) -> int:
        return self.upscaled.width * self.upscaled.height


def upscale_job(
    engine: Upscaler,
    spec: JobSpec,
    progress: ProgressFn | None = None,
    frames: ProgressFn | None = None,
    segments: ProgressFn | None = None,
) -> UpscaledJob | JobResult:
    """Decode and upscale one input, reporting finished tiles to `progress`; an animation (or a multi-page
    TIFF with output.tiff_pages `all` or `separate`) or a video is also written, reporting its finished
    frames to `frames` (srd/jobs/frames.py, srd/jobs/video.py) and a video's durable segments to
    `segments`. An error becomes a JobFailed."""
    started = time.monotonic()
    try:
        input_bytes = os.lstat(spec.input).st_size
        if is_video(spec.input.name):
            from srd.jobs.video import video_job  # PyAV (FFmpeg) loads with the first video only

            # The model setting names the segments a resumed job may reuse (Engine.model_id).
            model = str(getattr(engine, "model_id", type(engine).__name__))
            return video_job(engine.upscale, spec, model, input_bytes, started, frames, segments)
        media = read_media(
            spec.input,
            max_pixels=spec.max_pixels,
            max_bytes=spec.max_bytes,
            max_frames=spec.max_frames,
            pages=wants_pages(spec.output),
        )
        if isinstance(media, Animation):
            with media:
                return animation_job(engine.upscale, spec, media, input_bytes, started, frames)
        if isinstance(media, Pages):
            pages_as = separate_pages_job if spec.output.tiff_pages == "separate" else pages_job
            with media:
                return pages_as(engine.upscale, spec, media, input_bytes, started, frames)
        upscaled = with_scaled_metadata(media, engine.upscale(media, progress=progress))
    except Exception as exc:
        return JobFailed.from_exception(spec.job_id, exc)
    return UpscaledJob(spec, media, upscaled, input_bytes, started)


def write_job(job: UpscaledJob) -> JobResult:
    """Encode an upscaled job into its fsynced temporary output; an error becomes a JobFailed."""
    spec, upscaled, output = job.spec, job.upscaled, job.spec.output
    try:
        fmt = resolve_output(output.format, job.image.source_format)
        data = encode_page(
            upscaled if output.metadata == "keep" else replace(upscaled, metadata=NONE), fmt.name, output
        )
        write_file_synced(spec.temp, data)
    except Exception as exc:
        return JobFailed.from_exception(spec.job_id, exc)
    if spec.thumbnails is not None:  # for the status page; never fails the job
        write_thumbnails(spec.thumbnails, spec.job_id, job.image, upscaled, spec.thumbnail_size)
    return JobDone(
        job_id=spec.job_id,
        input_size=(job.image.width, job.image.height),
        output_size=(upscaled.width, upscaled.height),
        input_bytes=job.input_bytes,
        output_bytes=len(data),
        ms=round((time.monotonic() - job.started) * 1000, 1),
        suffix=fmt.suffix,
    )


def run_job(
    engine: Upscaler, spec: JobSpec, progress: ProgressFn | None = None, frames: ProgressFn | None = None
) -> JobResult:
    """The whole job in one call."""
    upscaled = upscale_job(engine, spec, progress, frames)
    return write_job(upscaled) if isinstance(upscaled, UpscaledJob) else upscaled
