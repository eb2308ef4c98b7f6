"""16-bit APNG: frames composited at 16 bits (every colour type), upscaled and written back as a 16-bit APNG
with each frame equal to upscaling its composited frame alone; an 8-bit output rounded from the upscale."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from support.animations import SubFrame, apng, composite_apng, read_apng16

from srd.engine.engine import Engine
from srd.imaging.animation import Animation, frame_image, to_rgba, to_rgba8
from srd.imaging.decode import read_media
from srd.imaging.metadata import NONE
from srd.jobs import JobDone, JobSpec
from srd.jobs.runner import run_job
from srd.settings import EngineSettings, ModelSettings, OutputSettings

W, H = 24, 20
LIMIT = 1_000_000


@pytest.fixture(scope="module")
def engine() -> Engine:
    """upconv7-art at 2x, one 32-pixel tile: each 24x20 frame is one network call."""
    return Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))


def _samples(rng: np.random.Generator, h: int, w: int, channels: int, alpha: str) -> np.ndarray:
    """16-bit noise in every bit (the low byte matters); alpha "opaque", "binary" or "partial"."""
    pixels = rng.integers(0, 65536, (h, w, channels), dtype=np.uint16)
    if channels in (2, 4):
        pick = rng.random((h, w))
        pixels[..., -1] = 65535
        if alpha != "opaque":
            pixels[pick < 0.3, -1] = 0
        if alpha == "partial":
            pixels[(pick >= 0.3) & (pick < 0.6), -1] = rng.integers(
                1, 65535, int(((pick >= 0.3) & (pick < 0.6)).sum())
            )
    return pixels


def frames16(channels: int) -> list[SubFrame]:
    """Sub-rectangles with every dispose op and both blend ops (over only where the frames have alpha)."""
    rng = np.random.default_rng(19)
    over = 1 if channels in (2, 4) else 0
    return [
        SubFrame(_samples(rng, H, W, channels, "partial"), 0, 0, 100, 0, 0),
        SubFrame(_samples(rng, 8, 10, channels, "opaque"), 3, 4, 150, 1, 0),
        SubFrame(_samples(rng, 8, 10, channels, "partial"), 10, 6, 200, 2, over),
        SubFrame(_samples(rng, 6, 6, channels, "partial"), 2, 2, 50, 0, over),
        SubFrame(_samples(rng, 5, 12, channels, "binary"), 12, 10, 80, 0, 0),
    ]


def _with_key(frames: list[SubFrame], key: tuple[int, ...]) -> list[SubFrame]:
    """The frames with a block of pixels set to the tRNS colour key (transparent in a viewer)."""
    for frame in frames:
        frame.pixels[:2, :3] = key
    return frames


CASES = {  # colour type: (channels, tRNS colour key)
    "rgba": (4, None),
    "gray-alpha": (2, None),
    "rgb-key": (3, (4660, 22136, 39612)),
    "gray-key": (1, (4660,)),
}


def _input(tmp_path: Path, case: str) -> tuple[Path, list[np.ndarray], list[int]]:
    """A 16-bit APNG of `case` playing 3 times, its composited frames (0..65535) and durations."""
    channels, key = CASES[case]
    frames = frames16(channels)
    trns = b""
    if key is not None:
        frames = _with_key(frames, key)
        trns = struct.pack(f">{len(key)}H", *key)
    path = tmp_path / f"{case}.png"
    path.write_bytes(apng((W, H), frames, plays=3, trns=trns))
    return path, composite_apng((W, H), frames, key), [f.duration for f in frames]


@pytest.mark.parametrize("case", list(CASES))
def test_16bit_apng_frames_are_composited_at_16_bits(tmp_path: Path, case: str) -> None:
    """Each frame of a 16-bit APNG is read as uint16 RGBA equal to the independent compositor's canvas
    within 1/65535 (rounding), with its duration: no sample is reduced to its high byte."""
    path, shown, durations = _input(tmp_path, case)
    media = read_media(path, max_pixels=LIMIT)
    assert isinstance(media, Animation) and media.bits == 16
    with media:
        got = [(frame.rgba, frame.image.bits, frame.duration) for frame in media]
    assert [duration for _, _, duration in got] == durations
    for (rgba, bits, _), want in zip(got, shown, strict=True):
        assert rgba.dtype == np.uint16 and bits == 16
        np.testing.assert_allclose(rgba[..., 3], want[..., 3], atol=0.5)
        visible = want[..., 3] > 0
        np.testing.assert_allclose(rgba[visible].astype(float), want[visible], atol=0.51)


def _upscaled16(engine: Engine, shown: np.ndarray) -> np.ndarray:
    """The composited 16-bit frame upscaled alone, as 16-bit RGBA."""
    rgba = np.floor(shown + 0.5).astype(np.uint16)
    return np.asarray(to_rgba(engine.upscale(frame_image(rgba, None, NONE, "")), 16))


@pytest.mark.parametrize("case", ["rgba", "gray-key"])
def test_a_16bit_apng_comes_out_a_16bit_apng(tmp_path: Path, engine: Engine, case: str) -> None:
    """output.animation same keeps a 16-bit APNG 16-bit: frame count, durations and plays kept, and each
    frame equal (within 1/65535) to upscaling that composited 16-bit frame alone."""
    path, shown, durations = _input(tmp_path, case)
    spec = JobSpec("j", path, tmp_path / ".out.tmp", OutputSettings(animation="same"), LIMIT, 10**7, 10)
    result = run_job(engine, spec)
    assert isinstance(result, JobDone), result
    assert (result.frames, result.suffix, result.output_size) == (len(shown), ".png", (2 * W, 2 * H))
    frames, got_durations, plays = read_apng16(spec.temp.read_bytes())
    assert (len(frames), got_durations, plays) == (len(shown), durations, 3)
    for got, frame in zip(frames, shown, strict=True):
        want = _upscaled16(engine, frame)
        np.testing.assert_allclose(got[..., 3], want[..., 3], atol=1)
        visible = want[..., 3] > 0
        np.testing.assert_allclose(got[visible].astype(float), want[visible], atol=1)
    # the low bytes carry information: not an 8-bit image widened
    assert any(((got[..., :3] % 257) != 0).any() for got in frames)


def test_a_16bit_apng_written_as_webp_is_rounded_from_the_upscale(tmp_path: Path, engine: Engine) -> None:
    """A 16-bit APNG upscaled into a lossless WebP gives each upscaled 16-bit frame rounded once to 8 bits."""
    from PIL import Image

    path, shown, durations = _input(tmp_path, "rgba")
    settings = OutputSettings(animation="webp", webp_lossless=True)
    spec = JobSpec("j", path, tmp_path / ".out.tmp", settings, LIMIT, 10**7, 10)
    assert isinstance(run_job(engine, spec), JobDone)
    with Image.open(spec.temp) as im:
        assert (im.format, im.n_frames) == ("WEBP", len(shown))
        for index, frame in enumerate(shown):
            im.seek(index)
            got = np.asarray(im.convert("RGBA"))
            assert round(float(im.info["duration"])) == durations[index]
            rgba = np.floor(frame + 0.5).astype(np.uint16)
            want = to_rgba8(engine.upscale(frame_image(rgba, None, NONE, "")))
            np.testing.assert_array_equal(got[..., 3], want[..., 3])
            visible = want[..., 3] > 0
            np.testing.assert_array_equal(got[visible], want[visible])
