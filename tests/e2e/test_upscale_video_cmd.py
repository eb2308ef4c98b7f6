"""End-to-end: `srd upscale` of video files, as a user runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.daemon import SRD_COMMAND
from support.videos import VideoSpec, make_video, video_packets

from srd.video import probe_video

pytestmark = pytest.mark.slow


def test_srd_upscale_writes_a_video_beside_its_input(tmp_path: Path) -> None:
    """clip.mp4 -> clip_x2.mp4 with every frame 2x and the audio copied; a zip named .mp4 fails alone
    (exit 1, its reason said); no hidden segment folder is left behind."""
    source = make_video(tmp_path / "clip.mp4", VideoSpec(frames=8))
    (tmp_path / "bad.mp4").write_bytes(b"PK\x03\x04" + bytes(100))
    run = subprocess.run(
        [
            *SRD_COMMAND,
            "upscale",
            str(source),
            str(tmp_path / "bad.mp4"),
            "--tile",
            "64",
            "--cache-dir",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "bad.mp4: not a video FFmpeg can read" in run.stderr
    output = tmp_path / "clip_x2.mp4"
    info = probe_video(output, max_pixels=10**6, max_seconds=60)
    assert (info.frames, info.width, info.height) == (8, 64, 48)
    assert video_packets(output, "audio") == video_packets(source, "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "clip.mp4", "clip_x2.mp4"]
