"""One video job from input to temporary output, resumable: probe, plan the segments, upscale each one not
already finished in the job's work folder, then assemble them with the input's other streams.

The work folder holds `plan.json` (the segments and what they were made with) and one `segment-NNNNN.nut`
per finished segment, each renamed into place only once complete and fsynced. A restart with the same plan
and settings reuses every segment file there and redoes the first missing one; a different model or
video setting discards them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import structlog

from srd.imaging.formats import VIDEO_BY_NAME, VideoContainer
from srd.jobs.fsops import fsync_dir, write_json_replace
from srd.settings import VideoSettings
from srd.video._assemble import assemble_video
from srd.video._codecs import fits_container
from srd.video._plan import Segment, plan_segments
from srd.video._probe import VideoInfo, probe_video
from srd.video._segment import Upscale, encode_segment

PLAN_NAME = "plan.json"
log = structlog.get_logger("srd.video")
FramesDone = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoResult:
    """What a video job wrote: frames in all and how many the network ran on (duplicates and segments
    reused from an earlier attempt are not run again), the output size and suffix, and the streams."""

    frames: int
    upscaled: int
    input_size: tuple[int, int]
    size: tuple[int, int]
    segments: int
    reused: int  # segments finished by an earlier attempt
    suffix: str
    copied: tuple[str, ...]  # type/codec of each stream copied as it was (`audio/aac`)
    dropped: tuple[str, ...]  # those the output container cannot hold, left out
    converted: tuple[str, ...] = ()  # those it holds only re-encoded (`audio/flac -> aac`)


def output_container(info: VideoInfo, settings: VideoSettings) -> VideoContainer:
    """The container written: output.video.container, or the input's (Matroska where it cannot hold the
    codec, as WebM cannot H.264)."""
    if settings.container != "same":
        return VIDEO_BY_NAME[settings.container]
    same = VIDEO_BY_NAME[info.container]
    return same if fits_container(settings.codec, same.muxer) else VIDEO_BY_NAME["mkv"]


def segment_path(work: Path, segment: Segment) -> Path:
    return work / f"segment-{segment.index:05d}.nut"


def _fingerprint(info: VideoInfo, settings: VideoSettings, model: str, segments: tuple[Segment, ...]) -> str:
    document = {
        "model": model,
        "video": settings.model_dump(mode="json"),
        "frames": info.frames,
        "size": [info.width, info.height],
        "segments": [[s.first, s.count] for s in segments],
        "pyav": av.__version__,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _prepare_work(work: Path, fingerprint: str, segments: tuple[Segment, ...]) -> None:
    """Keep the segments of an earlier attempt with this fingerprint; start afresh otherwise."""
    try:
        earlier = json.loads((work / PLAN_NAME).read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if earlier == fingerprint:
        for leftover in work.glob(".*.tmp"):  # a segment being written when the last attempt died
            leftover.unlink(missing_ok=True)
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    plan = [asdict(segment) for segment in segments]
    write_json_replace(work / PLAN_NAME, {"fingerprint": fingerprint, "segments": plan})
    fsync_dir(work)


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return context.width, context.height


def upscale_video(
    path: Path,
    upscale: Upscale,
    temp: Path,
    work: Path,
    settings: VideoSettings,
    *,
    model: str,
    max_pixels: int,
    max_seconds: float,
    on_frame: FramesDone | None = None,
    on_segment: Callable[[int, int], None] | None = None,
) -> VideoResult:
    """Upscale the video at `path` into `temp` (fsynced), keeping finished segments in `work`; `model` names
    the model setting (a different one discards them). `on_frame(done, total)` counts the job's frames,
    `on_segment(number, total)` runs as each segment this call makes is durable."""
    info = probe_video(path, max_pixels=max_pixels, max_seconds=max_seconds)
    container = output_container(info, settings)
    segments = plan_segments(info.pts, info.keyframes, info.time_base, settings.segment_seconds)
    _prepare_work(work, _fingerprint(info, settings, model, segments), segments)
    done = upscaled = reused = 0
    for segment in segments:
        final = segment_path(work, segment)
        if final.exists():
            reused += 1
        else:
            base = done

            def frames_done(count: int, total: int, base: int = base) -> None:
                if on_frame is not None:
                    on_frame(base + count, info.frames)

            upscaled += encode_segment(
                info, segment, upscale, settings, final, container.muxer, frames_done
            ).upscaled
            if on_segment is not None:
                on_segment(segment.index + 1, len(segments))
        done += segment.count
        if on_frame is not None:
            on_frame(done, info.frames)
    files = [(segment_path(work, segment), segment) for segment in segments]
    assembled = assemble_video(info, files, temp, container.muxer)
    for stream in assembled.converted:
        log.warning("video.stream_reencoded", input=str(path), stream=stream, container=container.name)
    for stream in assembled.dropped:
        log.warning("video.stream_dropped", input=str(path), stream=stream, container=container.name)
    return VideoResult(
        frames=info.frames,
        upscaled=upscaled,
        input_size=(info.width, info.height),
        size=_size(files[0][0]),
        segments=len(segments),
        reused=reused,
        suffix=container.suffix,
        copied=assembled.copied,
        dropped=assembled.dropped,
        converted=assembled.converted,
    )


def discard_work(work: Path) -> None:
    """Remove a video job's work folder (after its output is published)."""
    shutil.rmtree(work, ignore_errors=True)
    if work.parent.exists():
        fsync_dir(work.parent)
