"""What an animation is as Pillow reads it, and whether srd's output of it kept it: animated, the same
frames with the same durations, the same loop count, and each frame showing the input's frame.

The reference is Pillow's reading of the input with srd's documented differences applied
(docs/animations.md): an APNG's default image that is not part of the animation is not a frame; a GIF's
frames are clipped to its canvas (Pillow grows the canvas for a frame past it). A WebP output's frame count
may be smaller where libwebp merged identical consecutive frames: frames are then compared by when they
show, so the verdict is about the timeline a viewer plays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from srd.imaging.raster import RasterImage

Rgba = npt.NDArray[np.uint8]
DURATION_SHARE = 0.05  # the measure: total duration within 5% ...
DURATION_SLACK_MS = 20.0  # ... or 20 ms


class PixelRepeat:
    """An upscaler (srd.jobs.runner.Upscaler) that repeats each pixel 2x2: an output frame taken one pixel
    in four is the input frame, so that what srd's decode -> encode path keeps can be checked exactly."""

    scale = 2

    def upscale(
        self, image: RasterImage, target_size: tuple[int, int] | None = None, progress: object = None
    ) -> RasterImage:
        def twice(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return np.ascontiguousarray(plane.repeat(2, 0).repeat(2, 1))

        alpha = None if image.alpha is None else twice(image.alpha)
        return replace(image, pixels=twice(image.pixels), alpha=alpha)


@dataclass(frozen=True)
class Timeline:
    """An animation as Pillow reads it: each frame composited (RGBA), its duration in ms, the loop."""

    format: str
    size: tuple[int, int]
    frames: list[Rgba]
    durations: list[float]
    loop: int | None

    @property
    def total_ms(self) -> float:
        return float(sum(self.durations))


def pillow_timeline(path: Path, *, skip_default_image: bool = True, clip: bool = True) -> Timeline:
    """Every frame of the file as Pillow composites it; an APNG's default image outside the animation is
    left out (`skip_default_image`) and frames are cut to the size Pillow gave the first frame (`clip`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            size = im.size
            frames, durations = [], []
            loop = im.info.get("loop")
            for index in range(getattr(im, "n_frames", 1)):
                im.seek(index)
                im.load()
                if skip_default_image and index == 0 and im.format == "PNG" and im.info.get("default_image"):
                    continue
                rgba = np.asarray(im.convert("RGBA"), np.uint8)
                frames.append(rgba[: size[1], : size[0]] if clip else rgba)
                durations.append(float(im.info.get("duration") or 0))
            return Timeline(str(im.format), size, frames, durations, loop)


def plays(timeline: Timeline) -> int:
    """How many times it plays, 0 forever: GIF's NETSCAPE count is repeats (absent: once)."""
    if timeline.format == "GIF":
        return 1 if timeline.loop is None else (0 if timeline.loop == 0 else int(timeline.loop) + 1)
    return 0 if timeline.loop is None else int(timeline.loop)


def downscale(rgba: Rgba, factor: int) -> npt.NDArray[np.float64]:
    """A box-filtered reduction by an integer factor, colour weighted by alpha (what an upscaled frame is
    compared with its input frame by)."""
    if factor == 1:
        return rgba.astype(np.float64)
    h, w = rgba.shape[0] // factor, rgba.shape[1] // factor
    blocks = rgba[: h * factor, : w * factor].astype(np.float64).reshape(h, factor, w, factor, 4)
    alpha = blocks[..., 3:].mean(axis=(1, 3))
    weighted = (blocks[..., :3] * blocks[..., 3:]).mean(axis=(1, 3))
    colour = np.divide(weighted, alpha, out=np.zeros_like(weighted), where=alpha > 0)
    return np.concatenate([colour, alpha], axis=2)


def frame_error(got: npt.NDArray[np.float64], want: Rgba) -> float:
    """How far a (downscaled) output frame is from the input frame, in 8-bit levels: alpha's mean
    difference, plus colours' mean difference where both show (alpha >= 128)."""
    want_f = want.astype(np.float64)
    alpha = float(np.abs(got[..., 3] - want_f[..., 3]).mean())
    both = (got[..., 3] >= 128) & (want_f[..., 3] >= 128)
    colour = float(np.abs(got[both, :3] - want_f[both, :3]).mean()) if both.any() else 0.0
    return alpha + colour


def _frame_at(timeline: Timeline, ms: float) -> int:
    """The index of the frame showing at `ms` from the start (zero-length frames are never shown)."""
    elapsed = 0.0
    for index, duration in enumerate(timeline.durations):
        elapsed += duration
        if ms < elapsed:
            return index
    return len(timeline.durations) - 1


@dataclass
class Verdict:
    """What became of one animation: kept is the issue's measure (animated, frame count, total
    duration); problems says what differs, content_error the worst frame's error."""

    name: str
    frames_in: int
    frames_out: int
    ms_in: float
    ms_out: float
    kept: bool
    problems: list[str] = field(default_factory=list)
    content_error: float | None = None


def compare(name: str, source: Timeline, output: Timeline, *, scale: int, merged_ok: bool = False) -> Verdict:
    """The verdict on `output` (srd's file, read by pillow_timeline) of `source`, upscaled by `scale`.
    `merged_ok`: identical consecutive frames merged into one of their summed duration keep the frame count
    (libwebp's animation encoder does that)."""
    problems: list[str] = []
    if len(output.frames) <= 1 < len(source.frames):
        problems.append("not animated")
    if output.size != (source.size[0] * scale, source.size[1] * scale):
        problems.append(f"size {output.size} for {source.size} x{scale}")
    expected = len(source.frames)
    if merged_ok:
        expected -= sum(np.array_equal(a, b) for a, b in zip(source.frames, source.frames[1:], strict=False))
    count_ok = len(output.frames) == expected or (merged_ok and len(output.frames) == len(source.frames))
    if not count_ok:
        problems.append(f"{len(output.frames)} frames for {len(source.frames)}")
    slack = max(DURATION_SLACK_MS, DURATION_SHARE * source.total_ms)
    duration_ok = abs(output.total_ms - source.total_ms) <= slack
    if not duration_ok:
        problems.append(f"{output.total_ms:g} ms for {source.total_ms:g}")
    if len(output.frames) == len(source.frames):
        steps = [abs(a - b) for a, b in zip(output.durations, source.durations, strict=True)]
        if max(steps, default=0.0) > 10.0:
            problems.append(f"frame durations {output.durations} for {source.durations}")
    if plays(output) != plays(source):
        problems.append(f"plays {plays(output)} for {plays(source)}")
    error = None
    if output.size == (source.size[0] * scale, source.size[1] * scale) and output.frames:
        errors = []
        elapsed = 0.0
        for index, frame in enumerate(output.frames):
            want = index if len(output.frames) == len(source.frames) else _frame_at(source, elapsed)
            errors.append(frame_error(downscale(frame, scale), source.frames[want]))
            elapsed += output.durations[index]
        error = max(errors)
    kept = "not animated" not in problems and count_ok and duration_ok
    return Verdict(
        name,
        len(source.frames),
        len(output.frames),
        source.total_ms,
        output.total_ms,
        kept,
        problems,
        error,
    )
