"""Tests for output.video and limits.max_video_seconds in the settings schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from srd.errors import ConfigError
from srd.imaging.formats import DEFAULT_PATTERNS, READ_SUFFIXES, is_video
from srd.settings import parse_config

FOLDERS = {"inbox": "in", "outbox": "out", "errors": "err", "work": "work", "archive": "delete"}


def test_video_settings_are_read_with_their_defaults() -> None:
    """output.video's keys and limits.max_video_seconds, given and defaulted."""
    raw = {**FOLDERS, "output": {"video": {"codec": "ffv1", "pix_fmt": "bgr0", "container": "mkv"}}}
    config = parse_config(raw, Path("/srv"))
    video = config.output.video
    assert (video.codec, video.pix_fmt, video.container, video.crf, video.preset) == (
        "ffv1",
        "bgr0",
        "mkv",
        18,
        "medium",
    )
    assert config.limits.max_video_seconds == 10_800.0


@pytest.mark.parametrize(
    ("video", "message"),
    [
        ({"codec": "no-such-codec"}, "At 'output.video': this FFmpeg .* has no encoder 'no-such-codec'"),
        ({"codec": "aac"}, "At 'output.video': 'aac' is an audio encoder"),
        ({"pix_fmt": "rgb24"}, "At 'output.video': libx264 does not write pix_fmt 'rgb24'"),
        ({"container": "flv"}, "At 'output.video.container'"),
        ({"crf": 99}, "At 'output.video.crf'"),
        ({"bitrate": 5}, "At 'output.video.bitrate': unknown key"),
    ],
)
def test_impossible_video_settings_name_their_key(video: dict[str, object], message: str) -> None:
    """An encoder FFmpeg lacks, a pixel format it does not write, unknown keys: errors at their path."""
    with pytest.raises(ConfigError, match=message):
        parse_config({**FOLDERS, "output": {"video": video}}, Path("/srv"))


def test_the_inbox_and_srd_upscale_take_video_suffixes() -> None:
    """The default inbox patterns and srd upscale's folder walk include the video containers."""
    for suffix in (".mp4", ".mkv", ".webm", ".mov", ".avi"):
        assert f"*{suffix}" in DEFAULT_PATTERNS and suffix in READ_SUFFIXES
    assert is_video("Clip.MP4") and not is_video("clip.png") and not is_video("mp4")
