"""End-to-end: the daemon itself SIGKILLed (a power cut: its worker dies with it) in the middle of a video
job; started again, it resumes the job at a segment boundary and publishes what an uninterrupted run does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import pytest
from support.daemon import DaemonProcess, queue_drained, status, wait_for, write_config
from support.videos import VideoSpec, make_video

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reap_daemons")]
CLIP = VideoSpec(frames=12, gop=4)  # three segments of 0.4 s
VIDEO = {"codec": "ffv1", "pix_fmt": "bgr0", "container": "mkv", "segment_seconds": 0.3}
SLOW = {"SRD_TEST_FAULT": "slow_frames:resume.mkv"}  # 1 s after each frame: segments 4 s apart


def _segment(root: Path, number: int) -> Path | None:
    return next((root / "work").rglob(f"segment-{number:05d}.nut"), None)


def _identity(path: Path) -> tuple[int, int]:
    """A file's inode and modification time: a segment made again is a new file renamed into place."""
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def _video(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def test_a_killed_daemon_resumes_a_video_at_a_segment_boundary(tmp_path: Path, cache: Path) -> None:
    """SIGKILL the daemon once segment 1 is durable; the restarted daemon keeps that segment file (same
    inode, not made again), makes segments 2 and 3, and publishes the same frames as a clean run."""
    config = write_config(tmp_path, cache, output={"video": VIDEO})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    make_video(tmp_path / "resume.mkv", CLIP).rename(inbox / "resume.mkv")
    first = DaemonProcess(config, SLOW).wait_ready()
    wait_for(lambda: _segment(tmp_path, 0), 120, "the first segment to be durable")
    first.kill()
    kept = _segment(tmp_path, 0)
    assert kept is not None and _segment(tmp_path, 1) is None, "the kill came too late to test anything"
    before = _identity(kept)

    second = DaemonProcess(config, SLOW, log_name="daemon2.log").wait_ready()
    wait_for(lambda: _segment(tmp_path, 1), 120, "the resumed job's next segment")
    assert _identity(kept) == before  # segment 1 was reused, not recomputed
    seen: list[dict[str, Any]] = []

    def frames_in_flight() -> bool:
        jobs: list[dict[str, Any]] = status(tmp_path).get("in_flight") or []  # type: ignore[assignment]
        seen.extend(j["progress"] for j in jobs if j.get("input") == "resume.mkv" and j.get("progress"))
        return any(0 < p["done"] < p["total"] for p in seen)

    # status.json (what `srd status` and the web page show) counts the video's frames while it runs.
    wait_for(frames_in_flight, 120, "resume.mkv in flight with some of its frames done")
    assert {(p["unit"], p["total"]) for p in seen} == {("frames", 12)}
    make_video(tmp_path / "clean.mkv", CLIP).rename(inbox / "clean.mkv")
    wait_for(lambda: queue_drained(tmp_path, 2), 300, "both videos to be published")
    assert second.stop() == 0
    outbox = tmp_path / "outbox"
    assert _video(outbox / "resume.mkv") == _video(outbox / "clean.mkv")
    assert len(_video(outbox / "resume.mkv")) == 12
    assert (tmp_path / "archive" / "resume.mkv").exists()
