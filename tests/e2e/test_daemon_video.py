"""End-to-end: videos dropped into a running daemon's inbox come out upscaled, a worker killed mid-video
resumes at a segment boundary, and bad videos go to errors with the reason while the daemon carries on."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from support.daemon import DaemonProcess, queue_drained, wait_for, write_config
from support.videos import VideoSpec, make_video, video_packets

from srd.video import probe_video

pytestmark = pytest.mark.slow
LIMITS = {"max_pixels": 1_000_000, "max_seconds": 3600.0}
CLIP = VideoSpec(frames=12, gop=4, subtitles=True)  # three segments of 0.4 s
VIDEO = {"codec": "ffv1", "pix_fmt": "bgr0", "container": "mkv", "segment_seconds": 0.3}


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DaemonProcess]]:
    """A daemon whose worker SIGKILLs itself after each segment but the last of `resume.mkv`; fed a
    clean copy of the same clip, the resumed one, and three bad videos."""
    root = tmp_path_factory.mktemp("video")
    cache = tmp_path_factory.getbasetemp() / "jax-cache"
    config = write_config(root, cache, output={"video": VIDEO}, limits={"attempts": 4})
    inbox = root / "inbox"
    inbox.mkdir()
    make_video(root / "clean.mkv", CLIP).rename(inbox / "clean.mkv")
    make_video(root / "resume.mkv", CLIP).rename(inbox / "resume.mkv")
    with zipfile.ZipFile(root / "archive.mp4", "w") as archive:
        archive.writestr("a.txt", "not a video" * 50)
    (root / "archive.mp4").rename(inbox / "archive.mp4")
    truncated = make_video(root / "cut.mp4", VideoSpec(frames=20))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    truncated.rename(inbox / "cut.mp4")
    (inbox / "sound.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(64))  # EBML header, nothing after
    daemon = DaemonProcess(config, {"SRD_TEST_FAULT": "kill_after_segment:resume.mkv"}).wait_ready()
    wait_for(lambda: queue_drained(root, 5), 600, "every video to be published or refused")
    yield root, daemon
    daemon.stop()
    DaemonProcess.reap_all()


@pytest.fixture
def daemon_root(daemon_run: tuple[Path, DaemonProcess]) -> Path:
    return daemon_run[0]


def _video(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def test_a_video_is_published_with_its_frames_and_streams(daemon_root: Path) -> None:
    """clean.mkv: every frame 2x at its time, the audio and subtitles copied, the original archived."""
    output = daemon_root / "outbox" / "clean.mkv"
    info = probe_video(output, **LIMITS)
    assert (info.frames, info.width, info.height) == (12, 64, 48)
    source = daemon_root / "archive" / "clean.mkv"
    assert video_packets(output, "audio") == video_packets(source, "audio")
    assert video_packets(output, "subtitle") == video_packets(source, "subtitle")


def test_a_killed_worker_resumes_at_a_segment_and_gives_the_same_output(
    daemon_run: tuple[Path, DaemonProcess],
) -> None:
    """resume.mkv's worker died after segments 1 and 2 (SIGKILL); the third try made segment 3 only and
    the output equals the uninterrupted clean.mkv's, packet for packet."""
    daemon_root, daemon = daemon_run
    lost = [e for e in daemon.events() if e.get("event") == "worker.lost"]
    assert len(lost) == 2, lost
    outbox = daemon_root / "outbox"
    assert _video(outbox / "resume.mkv") == _video(outbox / "clean.mkv")
    assert (daemon_root / "archive" / "resume.mkv").exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("archive.mp4", "not a video FFmpeg can read"),
        ("cut.mp4", "damaged or truncated"),
        ("sound.mkv", "damaged or truncated"),
    ],
)
def test_bad_videos_go_to_errors_with_the_reason(daemon_root: Path, name: str, reason: str) -> None:
    """A zip named .mp4, a truncated MP4, a Matroska header with nothing after: errors/, with why."""
    assert (daemon_root / "errors" / name).exists()
    report = json.loads((daemon_root / "errors" / f"{name}.error.json").read_text())
    assert reason in report["reason"], report
