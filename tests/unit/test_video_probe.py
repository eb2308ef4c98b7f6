"""Tests for srd.video.probe_video: what a video holds, and the files it refuses with their reason."""

from __future__ import annotations

import zipfile
from fractions import Fraction
from pathlib import Path

import av
import pytest
from support.videos import VideoSpec, frame_times, make_video

from srd.errors import CorruptImageError, ImageTooLargeError, UnsupportedFormatError
from srd.video import probe_video

LIMITS = {"max_pixels": 1_000_000, "max_seconds": 3600.0}


def test_a_cfr_clip_is_described_frame_by_frame(tmp_path: Path) -> None:
    """Frame count, times, keyframes, size, rotation and the other streams of a constant-rate MP4."""
    spec = VideoSpec(frames=12, gop=4)
    info = probe_video(make_video(tmp_path / "a.mp4", spec), **LIMITS)
    assert (info.frames, info.width, info.height, info.container) == (12, 32, 24, "mp4")
    assert [float(p * info.time_base) for p in info.pts] == [t / 1000 for t in frame_times(spec)]
    assert info.keyframes == frozenset({0, 4, 8})
    assert not info.vfr and info.rotation == 0 and info.bits == 8
    assert info.other_streams == ("audio",)
    assert info.seconds == pytest.approx(1.2)


def test_variable_rate_and_rotation_are_seen(tmp_path: Path) -> None:
    """A VFR clip's irregular times and a 90-degree display matrix."""
    spec = VideoSpec(vfr=True, rotation=90)
    info = probe_video(make_video(tmp_path / "v.mp4", spec), **LIMITS)
    assert info.vfr and info.rotation == 90
    assert [round(float(p * info.time_base) * 1000) for p in info.pts] == frame_times(spec)


def test_a_ten_bit_clip_is_carried_at_16_bits(tmp_path: Path) -> None:
    """yuv420p10le input: bits 16."""
    path = make_video(tmp_path / "deep.mkv", VideoSpec(pix_fmt="yuv420p10le", audio=False))
    assert probe_video(path, **LIMITS).bits == 16


def test_a_zip_named_mp4_is_not_a_video(tmp_path: Path) -> None:
    """A zip archive renamed .mp4 is refused as a foreign format, not a damaged video."""
    path = tmp_path / "archive.mp4"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello" * 100)
    with pytest.raises(UnsupportedFormatError, match="not a video"):
        probe_video(path, **LIMITS)


def test_a_truncated_mp4_is_corrupt(tmp_path: Path) -> None:
    """An MP4 cut in half (its index at the end is lost) is a damaged video."""
    path = make_video(tmp_path / "cut.mp4", VideoSpec(frames=20))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptImageError, match="damaged or truncated"):
        probe_video(path, **LIMITS)


def test_a_truncated_mkv_is_corrupt(tmp_path: Path) -> None:
    """A Matroska file cut short still opens; its header's duration gives it away."""
    path = make_video(tmp_path / "cut.mkv", VideoSpec(frames=60, frame_ms=100))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(CorruptImageError, match="truncated"):
        probe_video(path, **LIMITS)


def test_an_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    """An M4A-like MP4 with sound only is refused with the reason."""
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts, frame.time_base = 8000, 0, Fraction(1, 8000)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(UnsupportedFormatError, match="no video stream"):
        probe_video(path, **LIMITS)


def test_an_unknown_codec_is_refused(tmp_path: Path) -> None:
    """An AVI whose video fourcc no decoder knows is refused, not crashed on."""
    path = make_video(tmp_path / "odd.avi", VideoSpec(codec="mpeg4", audio=False, title=None))
    data = path.read_bytes()
    assert data.count(b"FMP4") >= 1
    path.write_bytes(data.replace(b"FMP4", b"QQQQ"))
    with pytest.raises((UnsupportedFormatError, CorruptImageError)):
        probe_video(path, **LIMITS)


def test_limits_refuse_long_or_large_videos(tmp_path: Path) -> None:
    """limits.max_video_seconds and limits.max_pixels (per frame) are said in the error."""
    path = make_video(tmp_path / "a.mkv", VideoSpec(frames=12))
    with pytest.raises(ImageTooLargeError, match="max_video_seconds"):
        probe_video(path, max_pixels=1_000_000, max_seconds=1.0)
    with pytest.raises(ImageTooLargeError, match="max_pixels"):
        probe_video(path, max_pixels=32 * 24 - 1, max_seconds=3600.0)
