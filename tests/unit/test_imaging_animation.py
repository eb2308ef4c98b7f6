"""Animated GIF, APNG and WebP: frames composited as the specifications say (checked against an independent
compositor), every frame upscaled by the engine and written back with durations, loop and transparency."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.animations import SubFrame, apng, composite_apng, composite_gif, gif

from srd.engine.engine import Engine
from srd.errors import CorruptImageError
from srd.imaging import RasterImage
from srd.imaging.animation import Animation, frame_image, to_rgba8, write_animation
from srd.imaging.decode import read_media
from srd.imaging.encode import encode_image
from srd.imaging.gif import quantize_gif_frame
from srd.imaging.metadata import NONE
from srd.jobs import FailureKind, JobDone, JobFailed, JobSpec
from srd.jobs.record import new_job_id
from srd.jobs.runner import run_job
from srd.settings import EngineSettings, ModelSettings, OutputSettings
from srd.status.history import thumbnail_path

W, H = 24, 20
LIMIT = 1_000_000


@pytest.fixture(scope="module")
def engine() -> Engine:
    """upconv7-art at 2x, one 32-pixel tile: each 24x20 frame is one network call."""
    return Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))


def _rng() -> np.random.Generator:
    return np.random.default_rng(13)


def _rgba(rng: np.random.Generator, h: int, w: int, alpha: str) -> np.ndarray:
    """Noise with alpha "opaque", "binary" (30% clear) or "partial" (clear, half and opaque)."""
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    pick = rng.random((h, w))
    pixels[..., 3] = 255
    if alpha != "opaque":
        pixels[pick < 0.3, 3] = 0
    if alpha == "partial":
        pixels[(pick >= 0.3) & (pick < 0.6), 3] = 128
    return pixels


def _palette_rgba(rng: np.random.Generator, h: int, w: int, transparent: bool) -> np.ndarray:
    colours = rng.integers(0, 256, (20, 3), dtype=np.uint8)
    pixels = np.concatenate([colours[rng.integers(0, 20, (h, w))], np.full((h, w, 1), 255, np.uint8)], axis=2)
    if transparent:
        pixels[rng.random((h, w)) < 0.3, 3] = 0
    return pixels


def gif_frames() -> list[SubFrame]:
    """Sub-rectangles with every GIF disposal (1 none, 2 background, 3 previous) and transparency."""
    rng = _rng()
    return [
        SubFrame(_palette_rgba(rng, H, W, False), 0, 0, 100, 1),
        SubFrame(_palette_rgba(rng, 8, 10, True), 3, 4, 150, 2),
        SubFrame(_palette_rgba(rng, 8, 10, True), 10, 6, 200, 3),
        SubFrame(_palette_rgba(rng, 6, 6, True), 2, 2, 50, 1),
        SubFrame(_palette_rgba(rng, 5, 5, False), 12, 10, 80, 1),
    ]


def apng_frames() -> list[SubFrame]:
    """Sub-rectangles with every APNG dispose op and both blend ops, partly transparent pixels over others."""
    rng = _rng()
    return [
        SubFrame(_rgba(rng, H, W, "partial"), 0, 0, 100, 0, 0),
        SubFrame(_rgba(rng, 8, 10, "opaque"), 3, 4, 150, 1, 0),
        SubFrame(_rgba(rng, 8, 10, "partial"), 10, 6, 200, 2, 1),
        SubFrame(_rgba(rng, 6, 6, "partial"), 2, 2, 50, 0, 1),
        SubFrame(_rgba(rng, 5, 12, "binary"), 12, 10, 80, 0, 0),
    ]


def webp_canvases() -> list[np.ndarray]:
    """Whole canvases with transparency, for libwebp's encoder to turn into sub-frames of its own."""
    rng = _rng()
    first = _rgba(rng, H, W, "binary")
    second = first.copy()
    second[5:12, 4:15] = _rgba(rng, 7, 11, "opaque")
    third = _rgba(rng, H, W, "binary")
    fourth = third.copy()
    fourth[:3] = 0  # areas turning transparent
    return [first, second, third, fourth, _rgba(rng, H, W, "opaque")]


def _webp_bytes(canvases: list[np.ndarray], durations: list[int], loop: int) -> bytes:
    images = [Image.fromarray(c, "RGBA") for c in canvases]
    out = io.BytesIO()
    images[0].save(
        out, "WEBP", save_all=True, append_images=images[1:], duration=durations, loop=loop, lossless=True
    )
    return out.getvalue()


def _frames(media: RasterImage | Animation) -> list[tuple[np.ndarray, int]]:
    assert isinstance(media, Animation)
    with media:
        return [(frame.rgba, frame.duration) for frame in media]


def test_gif_frames_are_composited_by_the_gif89a_rules(tmp_path: Path) -> None:
    """Each GIF frame equals the independent compositor's canvas exactly, with its duration."""
    frames = gif_frames()
    path = tmp_path / "a.gif"
    path.write_bytes(gif((W, H), frames, loop=2))
    got = _frames(read_media(path, max_pixels=LIMIT))
    for (rgba, duration), want, frame in zip(got, composite_gif((W, H), frames), frames, strict=True):
        np.testing.assert_array_equal(rgba[..., 3], want[..., 3])
        visible = want[..., 3] > 0
        np.testing.assert_array_equal(rgba[visible], want[visible])
        assert duration == frame.duration


def test_apng_frames_are_composited_by_the_apng_rules(tmp_path: Path) -> None:
    """Each APNG frame equals the independent compositor's canvas within rounding (dispose none, background,
    previous; blend source and over with half-transparent pixels), with its duration."""
    frames = apng_frames()
    path = tmp_path / "a.png"
    path.write_bytes(apng((W, H), frames, plays=3))
    got = _frames(read_media(path, max_pixels=LIMIT))
    for (rgba, duration), want, frame in zip(got, composite_apng((W, H), frames), frames, strict=True):
        np.testing.assert_allclose(rgba[..., 3], want[..., 3], atol=0.5)
        visible = want[..., 3] > 0
        np.testing.assert_allclose(rgba[visible].astype(float), want[visible], atol=0.51)
        assert duration == frame.duration


def test_webp_frames_are_the_canvases_that_were_encoded(tmp_path: Path) -> None:
    """A lossless animated WebP gives back each canvas it was made from, with its duration."""
    canvases, durations = webp_canvases(), [100, 30, 250, 250, 70]
    path = tmp_path / "a.webp"
    path.write_bytes(_webp_bytes(canvases, durations, loop=4))
    got = _frames(read_media(path, max_pixels=LIMIT))
    for (rgba, duration), want, want_duration in zip(got, canvases, durations, strict=True):
        np.testing.assert_array_equal(rgba[..., 3], want[..., 3])
        visible = want[..., 3] > 0
        np.testing.assert_array_equal(rgba[visible], want[visible])
        assert duration == want_duration


def _inputs(tmp_path: Path) -> dict[str, tuple[Path, list[np.ndarray], list[int]]]:
    """Each input format: its file, its frames as the compositors show them, and their durations."""
    gf, af = gif_frames(), apng_frames()
    wc, wd = webp_canvases(), [100, 30, 250, 250, 70]
    (tmp_path / "in.gif").write_bytes(gif((W, H), gf, loop=2))
    (tmp_path / "in.png").write_bytes(apng((W, H), af, plays=3))
    (tmp_path / "in.webp").write_bytes(_webp_bytes(wc, wd, loop=4))
    apng_shown = [np.floor(c + 0.5).astype(np.uint8) for c in composite_apng((W, H), af)]
    return {
        "gif": (tmp_path / "in.gif", composite_gif((W, H), gf), [f.duration for f in gf]),
        "png": (tmp_path / "in.png", apng_shown, [f.duration for f in af]),
        "webp": (tmp_path / "in.webp", wc, wd),
    }


def _read_all(path: Path) -> tuple[str, list[np.ndarray], list[int], object]:
    with Image.open(path) as im:
        frames, durations = [], []
        for index in range(im.n_frames):
            im.seek(index)
            frames.append(np.asarray(im.convert("RGBA")))
            durations.append(round(float(im.info.get("duration", 0))))
        return str(im.format), frames, durations, im.info.get("loop")


def _expected(engine: Engine, shown: np.ndarray) -> np.ndarray:
    """The upscaled frame as srd should write it: the composited frame upscaled alone."""
    return to_rgba8(engine.upscale(frame_image(shown, None, NONE, "")))


def assert_gif_frame_shows(got: np.ndarray, want: np.ndarray) -> None:
    """A GIF frame as decoded shows `want` with GIF's binary transparency (alpha < 128 transparent) exactly,
    and its colours within what quantising the whole frame to 255 colours costs (plus one level): a frame
    that draws only its changed rectangle shows the rest as quantised by earlier frames."""
    opaque = want[..., 3] >= 128
    np.testing.assert_array_equal(got[..., 3], np.where(opaque, 255, 0))
    indices, palette = quantize_gif_frame(want)
    whole = np.asarray(palette, np.uint8).reshape(256, 3)[indices]
    error = np.abs(got[opaque, :3].astype(int) - want[opaque, :3]).mean()
    assert error <= np.abs(whole[opaque].astype(int) - want[opaque, :3]).mean() + 1


@pytest.mark.parametrize(
    ("source", "animation"),
    [("gif", "same"), ("png", "same"), ("webp", "same"), ("gif", "png"), ("png", "webp")],
)
def test_an_animation_round_trips_with_every_frame_upscaled(
    tmp_path: Path, engine: Engine, source: str, animation: str
) -> None:
    """Frame count, durations and loop are kept, each frame is the composited input frame upscaled alone
    (APNG and lossless WebP exactly; GIF with its transparency exactly and its colours as quantised), and
    progress is reported frame by frame."""
    path, shown, durations = _inputs(tmp_path)[source]
    settings = OutputSettings(animation=animation, webp_lossless=True)
    spec = JobSpec("j", path, tmp_path / ".out.tmp", settings, LIMIT, 10**7, max_frames=10)
    reported: list[tuple[int, int]] = []
    result = run_job(engine, spec, frames=lambda done, total: reported.append((done, total)))
    out_format = source if animation == "same" else animation
    assert isinstance(result, JobDone), result
    assert result.frames == len(shown) and result.suffix == f".{out_format}"
    assert result.output_size == (2 * W, 2 * H)
    assert reported == [(done, len(shown)) for done in range(1, len(shown) + 1)]
    fmt, frames, got_durations, loop = _read_all(spec.temp)
    assert fmt == {"gif": "GIF", "png": "PNG", "webp": "WEBP"}[out_format]
    assert got_durations == durations
    plays = {"gif": 3, "png": 3, "webp": 4}[source]
    assert loop == {"gif": plays - 1, "png": plays, "webp": plays}[out_format]
    assert len(frames) == len(shown)
    for got, frame in zip(frames, shown, strict=True):
        want = _expected(engine, frame)
        if out_format == "gif":
            assert_gif_frame_shows(got, want)
            continue
        np.testing.assert_array_equal(got[..., 3], want[..., 3])
        visible = want[..., 3] > 0
        np.testing.assert_array_equal(got[visible], want[visible])


def test_identical_consecutive_frames_are_upscaled_once(tmp_path: Path, engine: Engine) -> None:
    """Frames A A B B B run the network twice and still come out as five frames with their durations."""
    rng = _rng()
    a, b = _rgba(rng, H, W, "opaque"), _rgba(rng, H, W, "binary")
    path = tmp_path / "dup.png"
    records = [SubFrame(c, 0, 0, d, 0, 0) for c, d in zip([a, a, b, b, b], [10, 20, 30, 40, 50], strict=True)]
    path.write_bytes(apng((W, H), records, plays=0))
    calls = []

    def upscale(image: RasterImage) -> RasterImage:
        calls.append(image.width)
        return engine.upscale(image)

    media = read_media(path, max_pixels=LIMIT)
    assert isinstance(media, Animation)
    out = io.BytesIO()
    with media:
        result = write_animation(media, upscale, out, "png")
    assert (result.frames, result.upscaled, len(calls)) == (5, 2, 2)
    (tmp_path / "o.png").write_bytes(out.getvalue())
    assert _read_all(tmp_path / "o.png")[2] == [10, 20, 30, 40, 50]


def test_more_frames_than_the_limit_is_the_inputs_fault(tmp_path: Path, engine: Engine) -> None:
    """An animation over limits.max_frames fails as the input's fault, naming the counts and the setting."""
    path = tmp_path / "long.gif"
    path.write_bytes(gif((W, H), gif_frames(), loop=0))
    spec = JobSpec("j", path, tmp_path / ".o.tmp", OutputSettings(), LIMIT, 10**7, max_frames=4)
    result = run_job(engine, spec)
    assert isinstance(result, JobFailed) and result.kind is FailureKind.INPUT
    assert "5 frames, over the limit of 4 (limits.max_frames)" in result.message


def test_a_truncated_animation_is_corrupt(tmp_path: Path) -> None:
    """An APNG and a GIF cut in the middle of their frames are refused as corrupt, naming the frame."""
    for name, data in (
        ("cut.png", apng((W, H), apng_frames(), 0)),
        ("cut.gif", gif((W, H), gif_frames(), 0)),
    ):
        path = tmp_path / name
        path.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(CorruptImageError, match=name):
            _frames(read_media(path, max_pixels=LIMIT))


def test_memory_holds_a_bounded_number_of_frames(tmp_path: Path, engine: Engine) -> None:
    """Upscaling 32 frames peaks at about the memory of 8: frames are streamed, never collected."""
    rng = _rng()

    def peak(count: int) -> int:
        canvases = [_rgba(rng, 48, 48, "binary") for _ in range(count)]
        path = tmp_path / f"m{count}.webp"
        path.write_bytes(_webp_bytes(canvases, [40] * count, loop=0))
        media = read_media(path, max_pixels=LIMIT)
        assert isinstance(media, Animation)
        engine.upscale(frame_image(canvases[0], None, NONE, ""))  # compile outside the window
        tracemalloc.start()
        with media:
            write_animation(media, engine.upscale, io.BytesIO(), "gif")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(8), peak(32)
    frame_bytes = 96 * 96 * 4 * 4  # one upscaled RGBA frame in float32
    assert large < small + 4 * frame_bytes, (small, large)


def test_an_animation_gets_thumbnails_of_its_first_frame(tmp_path: Path, engine: Engine) -> None:
    """With a thumbnail folder in the job, an animation's before/after thumbnails show its first frame."""
    path, shown, _ = _inputs(tmp_path)["gif"]
    folder = tmp_path / "thumbs"
    folder.mkdir()
    job_id = new_job_id()
    spec = JobSpec(job_id, path, tmp_path / ".out.tmp", OutputSettings(), LIMIT, 10**7, 10, folder, 320)
    assert isinstance(run_job(engine, spec), JobDone)
    with Image.open(thumbnail_path(folder, job_id, "before")) as before:
        assert before.size == (W, H)
        first = np.asarray(before.convert("RGBA"), np.int16)
    with Image.open(thumbnail_path(folder, job_id, "after")) as after:
        assert after.size == (2 * W, 2 * H)
    # WebP thumbnails are lossy: the thumbnail is nearer the first frame than any other
    distances = [np.abs(first[..., :3] - frame[..., :3].astype(np.int16)).mean() for frame in shown]
    assert int(np.argmin(distances)) == 0, distances


def test_a_mostly_static_gif_comes_out_a_fraction_of_its_frames(tmp_path: Path, engine: Engine) -> None:
    """A sprite moving over a still background, upscaled to GIF: every frame shows its upscaled frame (as
    quantised), and the file is under half of as many whole frames' bytes (srd/imaging/gif.py writes
    only each frame's changed rectangle)."""
    rng = np.random.default_rng(4)
    base = np.full((40, 48, 4), 255, np.uint8)
    base[..., :3] = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    canvases = []
    for index in range(8):
        canvas = base.copy()
        canvas[16:22, 4 + 4 * index : 10 + 4 * index, :3] = (255, 0, 0)
        canvases.append(canvas)
    path = tmp_path / "walk.gif"
    path.write_bytes(gif((48, 40), [SubFrame(c, 0, 0, 60, 1) for c in canvases], loop=0))
    spec = JobSpec("j", path, tmp_path / ".out.tmp", OutputSettings(), LIMIT, 10**7, max_frames=10)
    result = run_job(engine, spec)
    assert isinstance(result, JobDone) and result.frames == len(canvases)
    _, frames, durations, _ = _read_all(spec.temp)
    assert durations == [60] * len(canvases)
    for got, canvas in zip(frames, canvases, strict=True):
        assert_gif_frame_shows(got, _expected(engine, canvas))
    one_frame = len(encode_image(engine.upscale(frame_image(canvases[0], None, NONE, "")), "gif"))
    assert result.output_bytes * 2 < len(canvases) * one_frame, (result.output_bytes, one_frame)
