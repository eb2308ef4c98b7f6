"""How a video job is cut into segments: each a run of consecutive frames that is decoded, upscaled and
encoded on its own into one durable file, so that a restart resumes at the first unfinished one.

A segment starts at the first keyframe at least `seconds` after the last one started (decoding starts
there, with nothing before it to decode and throw away); where no keyframe comes within twice that long
it starts at the frame that far in, and its decoding starts at the keyframe before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Segment:
    """Frames first .. first + count - 1 of the video (presentation order), showing from start_pts until
    end_pts."""

    index: int
    first: int
    count: int
    start_pts: int  # the first frame's presentation time (time base units)
    end_pts: int  # the next segment's first frame's time, or past the last frame

    @property
    def last(self) -> int:
        return self.first + self.count - 1


def plan_segments(
    pts: Sequence[int], keyframes: frozenset[int], time_base: Fraction, seconds: float
) -> tuple[Segment, ...]:
    """The segments of a video whose frames show at `pts` (ascending), decodable from `keyframes`."""
    if not pts:
        return ()
    span = seconds / time_base  # `seconds` in time base units
    starts = [0]
    for index in range(1, len(pts)):
        since = pts[index] - pts[starts[-1]]
        if (index in keyframes and since >= span) or since >= 2 * span:
            starts.append(index)
    ends = [*starts[1:], len(pts)]
    return tuple(
        Segment(
            index=number,
            first=first,
            count=end - first,
            start_pts=pts[first],
            end_pts=pts[end] if end < len(pts) else pts[-1] + 1,
        )
        for number, (first, end) in enumerate(zip(starts, ends, strict=True))
    )
