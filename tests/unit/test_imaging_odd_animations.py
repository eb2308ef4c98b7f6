"""Odd animations (tests/support/odd_corpus.py, written byte by byte) read as browsers show them and kept
through srd's real job path in every animated output format: frame count, each frame's duration, loop
count and each frame's pixels; and the deliberate differences docs/animations.md documents."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.animation_compare import PixelRepeat, Timeline, compare, pillow_timeline, plays
from support.odd_animations import GifFrame, gif
from support.odd_corpus import Case, odd_corpus

from srd.engine.engine import Engine
from srd.errors import ImageTooLargeError
from srd.imaging import RasterImage
from srd.imaging.animation import Animation, frame_image, to_rgba8
from srd.imaging.decode import read_media
from srd.imaging.gif import quantize_gif_frame
from srd.imaging.metadata import NONE
from srd.jobs import JobDone, JobSpec
from srd.jobs.runner import Upscaler, run_job
from srd.settings import EngineSettings, ModelSettings, OutputSettings

LIMIT = 1_000_000
CASES = odd_corpus()
BY_NAME = {case.name: case for case in CASES}
FORMAT_OF = {"GIF": "gif", "PNG": "png", "WEBP": "webp"}


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.name
    path.write_bytes(case.data)
    return path


def _read(path: Path) -> tuple[list[np.ndarray], list[int], int] | RasterImage:
    """srd's reading of a file: its frames (RGBA), durations and plays, or the still image it is."""
    media = read_media(path, max_pixels=LIMIT)
    if not isinstance(media, Animation):
        assert isinstance(media, RasterImage)
        return media
    with media:
        frames = [(frame.rgba, frame.duration) for frame in media]
        return [f for f, _ in frames], [d for _, d in frames], media.plays


# Within rounding: APNG's OVER is rounded to 8 bits at each frame, libwebp blends in integers.
TOLERANCE = {"gif": 0.0, "png": 1.0, "webp": 2.0}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_frame_is_read_as_a_browser_shows_it(tmp_path: Path, case: Case) -> None:
    """srd's frames equal the reference compositor's (browsers' rules: GIF89a with transparent disposal
    and clipping, the APNG and WebP specifications), with their durations and play count; a one-frame
    file is a still image."""
    read = _read(_write(tmp_path, case))
    if isinstance(read, RasterImage):
        assert not case.animated
        return
    frames, durations, plays = read
    assert (len(frames), durations, plays) == (len(case.frames), case.durations, case.plays)
    tolerance = TOLERANCE[case.name.split("-")[0].replace("apng", "png")]
    for number, (got, want) in enumerate(zip(frames, case.frames, strict=True)):
        assert got.shape == want.shape, number
        np.testing.assert_allclose(got[..., 3], want[..., 3], atol=tolerance, err_msg=f"frame {number}")
        visible = want[..., 3] > 0
        np.testing.assert_allclose(
            got[visible, :3], want[visible, :3], atol=tolerance, err_msg=f"frame {number}"
        )


def _job(tmp_path: Path, source: Path, animation: str, engine: Upscaler | None = None) -> Path:
    settings = OutputSettings(animation=animation, format="same", webp_lossless=True)
    spec = JobSpec("j", source, tmp_path / f".{animation}.tmp", settings, LIMIT, 10**7)
    result = run_job(engine or PixelRepeat(), spec)
    assert isinstance(result, JobDone), result
    return spec.temp


def _merged(frames: list[np.ndarray]) -> int:
    """How many frames repeat the one before them (libwebp's encoder merges those into one)."""
    return sum(np.array_equal(a, b) for a, b in itertools.pairwise(frames))


def assert_shows(got: np.ndarray, want: np.ndarray, out_format: str) -> None:
    """An output frame shows `want`: exactly (alpha exact, colours where visible) in APNG and lossless
    WebP; in GIF with alpha made binary at 128 and colours within what quantising the whole frame to 255
    colours costs, plus one level (a frame drawing only what changed shows the rest as quantised before)."""
    got, want = got.astype(np.int32), want.astype(np.int32)
    if out_format == "gif":
        opaque = want[..., 3] >= 128
        np.testing.assert_array_equal(got[..., 3], np.where(opaque, 255, 0))
        if opaque.any():
            indices, palette = quantize_gif_frame(want.astype(np.uint8))
            whole = np.asarray(palette, np.int32).reshape(256, 3)[indices]
            cost = np.abs(whole[opaque] - want[opaque, :3]).mean()
            assert np.abs(got[opaque, :3] - want[opaque, :3]).mean() <= cost + 1
        return
    np.testing.assert_array_equal(got[..., 3], want[..., 3])
    visible = want[..., 3] > 0
    np.testing.assert_array_equal(got[visible, :3], want[visible, :3])


@pytest.mark.parametrize("animation", ["same", "gif", "png", "webp"])
def test_every_odd_animation_comes_out_whole(tmp_path: Path, animation: str) -> None:
    """Through srd's job (decode -> upscale -> encode), every animated case comes out animated in each
    output format with its frames (WebP: identical consecutive ones merged by libwebp), durations (GIF:
    in whole centiseconds, within 10 ms each), play count and pixels; by the issue's measure against
    Pillow's reading of the output, every one is kept."""
    for case in CASES:
        source = _write(tmp_path, case)
        read = _read(source)
        if isinstance(read, RasterImage):
            continue
        frames, durations, _ = read
        out = pillow_timeline(_job(tmp_path, source, animation), skip_default_image=False, clip=False)
        out_format = FORMAT_OF[out.format]
        expected = len(frames) - (_merged(frames) if out_format == "webp" else 0)
        assert len(out.frames) == expected, case.name
        shown = (
            frames
            if len(out.frames) == len(frames)
            else [f for i, f in enumerate(frames) if i == 0 or not np.array_equal(f, frames[i - 1])]
        )
        for got, want in zip(out.frames, shown, strict=True):
            assert_shows(got[::2, ::2], want, out_format)  # one pixel in four
        if len(frames) == 1:  # a one-frame animation (after an APNG's default image): nothing plays
            continue
        assert plays(out) == case.plays, case.name
        if out_format == "gif":
            assert all(d % 10 == 0 for d in out.durations), case.name
        if len(out.frames) == len(frames) and out_format != "gif":
            assert out.durations == durations, case.name
        if case.name in PILLOW_CANNOT:
            continue
        verdict = compare(case.name, pillow_timeline(source), out, scale=2, merged_ok=out_format == "webp")
        assert verdict.kept, (case.name, verdict.problems)


PILLOW_CANNOT = {"gif-empty-frames.gif"}  # a frame of no pixels: Pillow cannot load it, srd shows its delay


def test_the_cases_pillow_cannot_read_are_the_ones_listed(tmp_path: Path) -> None:
    """Pillow reads every odd case but those srd reads without it (a 0x0 GIF frame)."""
    cannot = set()
    for case in CASES:
        try:
            pillow_timeline(_write(tmp_path, case))
        except ValueError:
            cannot.add(case.name)
    assert cannot == PILLOW_CANNOT


def _pillow_differs(case: Case, path: Path) -> bool:
    """Whether Pillow's frames of the case (cut to its canvas) differ from the reference's."""
    timeline = pillow_timeline(path)
    if len(timeline.frames) != len(case.frames):
        return True
    tolerance = TOLERANCE[case.name.split("-")[0].replace("apng", "png")]
    for got, want in zip(timeline.frames, case.frames, strict=True):
        if got.shape != want.shape or np.abs(got[..., 3] - want[..., 3]).max() > tolerance:
            return True
        visible = want[..., 3] > 0
        if visible.any() and np.abs(got[visible, :3] - want[visible, :3]).max() > tolerance:
            return True
    return False


# Where srd's frames are not Pillow's (docs/animations.md): GIF disposal 2 and a partial first frame
# leave transparency, not an opaque colour; disposal 0 after 2 does not repeat the 2; 5-7 keep the canvas;
# a 0x0 frame is no error; APNG's OVER blend keeps the canvas's alpha.
DIFFERS_FROM_PILLOW = {
    "gif-dispose-background.gif",
    "gif-dispose-background-transparent.gif",
    "gif-dispose-previous-first.gif",
    "gif-disposal-unspecified-after-background.gif",
    "gif-undefined-disposals.gif",
    "gif-first-frame-partial.gif",
    "gif-many-small-frames.gif",
    "apng-blend-over.png",
    "apng-dispose-background-first.png",
    "apng-transparent.png",
    "apng-undefined-ops.png",
}


def test_srd_and_pillow_differ_only_where_documented(tmp_path: Path) -> None:
    """Pillow composites these cases otherwise than browsers (and srd) do, and every other case alike."""
    differs = set()
    for case in CASES:
        path = _write(tmp_path, case)
        if case.name not in PILLOW_CANNOT and _pillow_differs(case, path):
            differs.add(case.name)
    assert differs == DIFFERS_FROM_PILLOW


def _output(tmp_path: Path, name: str, animation: str, engine: Upscaler | None = None) -> Timeline:
    out = _job(tmp_path, _write(tmp_path, BY_NAME[name]), animation, engine)
    return pillow_timeline(out, skip_default_image=False, clip=False)


def test_zero_delays_stay_zero_in_every_format(tmp_path: Path) -> None:
    """0 ms frames (which browsers show for 100 ms) are written 0 ms to GIF, APNG and WebP: srd does not
    rewrite a file's timing, so a viewer plays the output as it plays the input."""
    for name in ("gif-zero-delays.gif", "apng-zero-delays.png", "webp-zero-durations.webp"):
        for animation in ("gif", "png", "webp"):
            out = _output(tmp_path, name, animation)
            assert out.durations == [0.0] * len(BY_NAME[name].frames), (name, animation)


def test_gif_delays_add_up_to_the_durations(tmp_path: Path) -> None:
    """Written to GIF (whole centiseconds), frames of 1/30 s last 30 or 40 ms and add up to the second;
    frames of 1, 7, 33 and 15 ms last 0, 10, 30 and 20 ms: one of 15 ms never 10, which browsers show for
    100 ms."""
    out = _output(tmp_path, "apng-30-fps.png", "gif")
    assert set(out.durations) == {30.0, 40.0} and sum(out.durations) == 1000
    assert _output(tmp_path, "webp-33ms-frames.webp", "gif").total_ms == 990
    assert _output(tmp_path, "webp-short-durations.webp", "gif").durations == [0, 10, 30, 20]


def test_apng_delays_keep_their_sum_and_length(tmp_path: Path) -> None:
    """An APNG's 1/30 s frames come out 33 or 34 ms adding up to the second (not 30 x 33 ms), and a 70 s
    frame (past fcTL's 65535 thousandths) stays 70 s."""
    out = _output(tmp_path, "apng-30-fps.png", "same")
    assert set(out.durations) == {33.0, 34.0} and sum(out.durations) == 1000
    assert _output(tmp_path, "apng-long-delay.png", "same").durations == [70000.0, 100.0]


def test_a_one_frame_animation_is_a_still_image(tmp_path: Path) -> None:
    """A GIF, APNG or WebP of one frame is a still image: written in output.format (PNG by default)."""
    for name in ("gif-single-frame.gif", "apng-single-frame.png", "webp-single-frame.webp"):
        spec = JobSpec(
            "j", _write(tmp_path, BY_NAME[name]), tmp_path / ".o.tmp", OutputSettings(), LIMIT, 10**7
        )
        result = run_job(PixelRepeat(), spec)
        assert isinstance(result, JobDone) and result.suffix == ".png", result
        with Image.open(spec.temp) as im:
            assert im.format == "PNG" and not getattr(im, "is_animated", False)


def test_identical_consecutive_frames_are_merged_only_by_webp(tmp_path: Path) -> None:
    """GIF and APNG outputs keep every frame of a run of identical ones, each with its duration; libwebp's
    encoder merges such a run into one frame of their summed duration: the same timeline, fewer frames."""
    for animation in ("gif", "png"):
        assert _output(tmp_path, "gif-duplicates.gif", animation).durations == [100, 200, 300, 400, 500]
    assert _output(tmp_path, "gif-duplicates.gif", "webp").durations == [300, 1200]


@pytest.fixture(scope="module")
def engine() -> Engine:
    """upconv7-art at 2x, one 32-pixel tile: each 20x16 frame is one network call."""
    return Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))


@pytest.mark.parametrize(
    "name",
    [
        "gif-dispose-background.gif",
        "gif-past-screen.gif",
        "apng-undefined-ops.png",
        "webp-blend-dispose.webp",
    ],
)
def test_through_a_network_each_frame_is_its_frame_upscaled(
    tmp_path: Path, engine: Engine, name: str
) -> None:
    """With a real model, an odd animation keeps its frames and durations, and each output frame is srd's
    frame upscaled alone (exactly for APNG and lossless WebP; GIF as quantised)."""
    read = _read(_write(tmp_path, BY_NAME[name]))
    assert not isinstance(read, RasterImage)
    frames, durations, _ = read
    out = _output(tmp_path, name, "same", engine)
    assert len(out.frames) == len(frames) and out.durations == durations
    for got, frame in zip(out.frames, frames, strict=True):
        assert_shows(got, to_rgba8(engine.upscale(frame_image(frame, None, NONE, ""))), FORMAT_OF[out.format])


def test_a_gif_frame_far_larger_than_its_canvas_is_refused_as_too_large(tmp_path: Path) -> None:
    """An interlaced frame declaring 30000x30000 pixels on a 20x16 canvas (decoded whole, so Pillow's
    decompression-bomb check sees it) is the input's fault, not an error srd would retry."""
    small = np.zeros((2, 2), np.uint8)
    data = gif((20, 16), [GifFrame(small), GifFrame(small, interlace=True, size=(30000, 30000))])
    path = tmp_path / "bomb.gif"
    path.write_bytes(data)
    media = read_media(path, max_pixels=LIMIT)
    assert isinstance(media, Animation)
    with media, pytest.raises(ImageTooLargeError, match="frame 2"):
        list(media)
