"""A video job inside the upscaling half of a job (srd/jobs/runner.py): srd/video upscales it segment by
segment into the job's temporary output, keeping the finished segments in the job's work folder, so that
the job, started again after a crash, resumes where it was."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

from srd.imaging.raster import RasterImage
from srd.jobs.frames import _FirstFrame
from srd.jobs.messages import JobDone, JobSpec
from srd.video import upscale_video

Upscale = Callable[[RasterImage], RasterImage]
Report = Callable[[int, int], None] | None


def video_job(
    upscale: Upscale,
    spec: JobSpec,
    model: str,
    input_bytes: int,
    started: float,
    frames: Report = None,
    segments: Report = None,
) -> JobDone:
    """Upscale the video `spec.input` into `spec.temp`, reporting frames done to `frames` and each durable
    segment to `segments`. Without a work folder of the job's own (spec.work), its segments live beside the
    temporary output and go once it is written."""
    work = spec.work if spec.work is not None else spec.staging
    first = _FirstFrame(upscale)
    result = upscale_video(
        spec.input,
        first,
        spec.temp,
        work,
        spec.output.video,
        model=model,
        max_pixels=spec.max_pixels,
        max_seconds=spec.max_video_seconds,
        on_frame=frames,
        on_segment=segments,
    )
    if spec.work is None:
        shutil.rmtree(work, ignore_errors=True)
    first.write_thumbnails(spec)
    return JobDone(
        job_id=spec.job_id,
        input_size=result.input_size,
        output_size=result.size,
        input_bytes=input_bytes,
        output_bytes=os.stat(spec.temp).st_size,
        ms=round((time.monotonic() - started) * 1000, 1),
        frames=result.frames,
        suffix=result.suffix,
    )
