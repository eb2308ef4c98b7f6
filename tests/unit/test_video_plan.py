"""Tests for srd.video.plan_segments: where a video job is cut."""

from __future__ import annotations

import itertools
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from srd.video import plan_segments

MS = Fraction(1, 1000)


def test_segments_start_at_the_first_keyframe_after_the_length() -> None:
    """Frames every 100 ms, keyframes every 4 frames, 0.3 s segments: cut at each keyframe."""
    pts = [i * 100 for i in range(12)]
    segments = plan_segments(pts, frozenset({0, 4, 8}), MS, 0.3)
    assert [(s.first, s.count) for s in segments] == [(0, 4), (4, 4), (8, 4)]
    assert [(s.start_pts, s.end_pts) for s in segments] == [(0, 400), (400, 800), (800, 1101)]


def test_a_long_gop_is_cut_at_twice_the_length() -> None:
    """With one keyframe, a segment still ends twice the segment length in."""
    pts = [i * 100 for i in range(10)]
    segments = plan_segments(pts, frozenset({0}), MS, 0.2)
    assert [s.first for s in segments] == [0, 4, 8]


def test_an_empty_video_has_no_segments() -> None:
    """No frames, no segments."""
    assert plan_segments([], frozenset(), MS, 1.0) == ()


@given(
    st.lists(st.integers(1, 300), min_size=1, max_size=60),
    st.sets(st.integers(0, 59)),
    st.floats(0.05, 2.0),
)
def test_segments_cover_every_frame_once_in_order(gaps: list[int], keys: set[int], seconds: float) -> None:
    """Whatever the timing, the segments are consecutive, non-empty and cover every frame."""
    pts = [sum(gaps[:i]) for i in range(len(gaps))]
    segments = plan_segments(pts, frozenset({0} | {k for k in keys if k < len(pts)}), MS, seconds)
    assert segments[0].first == 0 and segments[-1].last == len(pts) - 1
    for before, after in itertools.pairwise(segments):
        assert after.first == before.last + 1 and before.end_pts == after.start_pts
    assert all(s.count > 0 for s in segments)
