"""`srd upscale` of a video file: srd/video's job with the default output.video settings, its segments in
a hidden folder beside the output (a rerun after Ctrl-C or a crash resumes there), published atomically,
the live line counting frames."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from srd.cli.progress import Progress
from srd.engine.engine import Engine
from srd.errors import UsageError
from srd.jobs.fsops import fsync_dir, hidden_temp_name, link_exclusive
from srd.settings import VideoSettings
from srd.video import output_container, probe_video, upscale_video

NO_LIMIT = float("inf")  # srd upscale takes any length; the daemon has limits.max_video_seconds


def video_suffix(path: Path, max_pixels: int, settings: VideoSettings) -> tuple[str, tuple[int, int]]:
    """The suffix srd upscale writes `path` with, and its frame size (the file is probed: InputError for
    one that is not a readable video)."""
    info = probe_video(path, max_pixels=max_pixels, max_seconds=NO_LIMIT)
    return output_container(info, settings).suffix, (info.width, info.height)


def write_video(
    engine: Engine,
    path: Path,
    destination: Path,
    settings: VideoSettings,
    *,
    max_pixels: int,
    overwrite: bool,
    progress: Progress,
) -> tuple[int, int]:
    """Upscale the video `path` into `destination`; returns the output's frame size."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = destination.parent / hidden_temp_name(destination.name, ".srd-video.part")
    work = destination.parent / hidden_temp_name(destination.name, ".srd-video.d")
    result = upscale_video(
        path,
        engine.upscale,
        temp,
        work,
        settings,
        model=engine.model_id,
        max_pixels=max_pixels,
        max_seconds=NO_LIMIT,
        on_frame=lambda done, total: progress.advance(done, total, "frames"),
    )
    try:
        if overwrite:
            os.replace(temp, destination)
        else:
            try:
                link_exclusive(temp, destination)
            except FileExistsError as exc:
                raise UsageError(f"{destination} exists (use --overwrite to replace it)") from exc
        fsync_dir(destination.parent)
    finally:
        temp.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    for stream in result.converted:
        progress.note(
            f"srd: note: {path.name}: {stream} (the {result.suffix} container cannot hold it as it is)"
        )
    for stream in result.dropped:
        progress.note(
            f"srd: note: {path.name}: {stream} left out (the {result.suffix} container cannot hold it)"
        )
    return result.size
