"""waifu2x's image pipeline: YUV, alpha border fill, TTA, 4x, exact target sizes, gray and 16-bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from srd.engine import Engine, plan_passes, scale_for_target
from srd.engine.pipeline import (
    _dihedral,
    _dihedral_inverse,
    fill_transparent,
    nearest_upscale,
    rgb_to_yuv,
    yuv_to_rgb,
)
from srd.errors import ModelError, UsageError
from srd.imaging.raster import RasterImage
from srd.settings import EngineSettings, ModelSettings

_ENGINES: dict[ModelSettings, Engine] = {}


def _engine(**kwargs: object) -> Engine:
    model = ModelSettings.model_validate(kwargs)
    if model not in _ENGINES:
        _ENGINES[model] = Engine(model, EngineSettings(tile=32))
    return _ENGINES[model]


def _image(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, c), dtype=np.float32)


def test_yuv_round_trip() -> None:
    """Torch's analog BT.601 matrices invert each other to 1e-4."""
    rgb = _image(8, 8)
    np.testing.assert_allclose(yuv_to_rgb(rgb_to_yuv(rgb)), rgb, atol=1e-4)
    assert rgb_to_yuv(np.ones((1, 1, 3), np.float32))[0, 0, 0] == pytest.approx(1.0)


def test_fill_transparent_takes_neighbour_colours() -> None:
    """Transparent pixels take the colour of nearby opaque ones; opaque pixels are untouched."""
    rgb = np.zeros((5, 9, 3), np.float32)
    rgb[:, :3] = (1.0, 0.0, 0.0)
    rgb[:, 3:] = (0.0, 1.0, 0.0)  # hidden colour under transparency: must not leak
    alpha = np.zeros((5, 9), np.float32)
    alpha[:, :3] = 1.0
    filled = fill_transparent(rgb, alpha, iterations=3)
    np.testing.assert_array_equal(filled[:, :3], rgb[:, :3])
    np.testing.assert_allclose(filled[:, 3:6], np.broadcast_to((1.0, 0.0, 0.0), (5, 3, 3)), atol=1e-5)
    np.testing.assert_array_equal(filled[:, 6:], 0.0)  # beyond the iterations: still the zero fill


def test_alpha_is_upscaled_and_kept() -> None:
    """An RGBA image comes back with a 2x alpha that stays transparent where it was."""
    alpha = np.ones((20, 24), np.float32)
    alpha[:, :12] = 0.0
    out = _engine().upscale(RasterImage(_image(20, 24), alpha=alpha))
    assert out.alpha is not None and out.alpha.shape == (40, 48)
    assert out.alpha[:, :20].max() < 0.02 and out.alpha[:, 28:].min() > 0.98


def test_alpha_uses_the_noise_free_model() -> None:
    """As waifu2x's alpha_util.composite: alpha goes through the plain 2x model even when noise is set."""
    engine = _engine(noise=2)
    assert (engine.passes[0].noise, engine.alpha_model(engine.passes[0]).noise) == (2, -1)
    alpha = np.ones((12, 10), np.float32)
    alpha[:, :5] = 0.0
    out = engine.upscale(RasterImage(_image(12, 10), alpha=alpha))
    assert out.alpha is not None and out.alpha.shape == (24, 20)


def test_scale_three_is_four_then_a_downscale() -> None:
    """A scale the family has no pass for runs the next larger plan (4x) and is downsized to 3x."""
    engine = _engine(scale=3)
    assert [(p.noise, p.scale) for p in engine.passes] == [(-1, 2), (-1, 2)] and engine.scale == 4
    out = engine.upscale(RasterImage(_image(9, 7)))
    assert out.pixels.shape == (27, 21, 3)


def test_scale_four_is_two_passes_with_noise_first() -> None:
    """4x runs the noise 2x model, then the plain 2x model."""
    passes = plan_passes(ModelSettings(name="upconv7-art", noise=2, scale=4))
    assert [(p.noise, p.scale) for p in passes] == [(2, 2), (-1, 2)]
    out = _engine(scale=4).upscale(RasterImage(_image(9, 7)))
    assert out.pixels.shape == (36, 28, 3)


def test_impossible_plans_are_clear_errors() -> None:
    """Scale 1 without noise, upconv_7 at 1x, and bad levels are refused up front."""
    with pytest.raises(UsageError, match="nothing"):
        plan_passes(ModelSettings(scale=1, noise=-1))
    with pytest.raises(ModelError, match="no 1x model"):
        plan_passes(ModelSettings(name="upconv7-art", scale=1, noise=1))
    with pytest.raises(ValidationError, match="scale"):
        ModelSettings(scale=5)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="no 2x or larger model with noise level 1"):
        plan_passes(ModelSettings(name="realesrgan-x4plus", scale=2, noise=1))


def test_target_size_downscales_next_power_of_two() -> None:
    """An exact output size picks the smallest covering scale and resizes to it."""
    assert scale_for_target(100, 50, (150, 100)) == 2
    assert scale_for_target(100, 50, (300, 100)) == 3
    assert scale_for_target(100, 50, (301, 100)) == 4
    out = _engine().upscale(RasterImage(_image(16, 20)), target_size=(31, 25))
    assert out.pixels.shape == (25, 31, 3)


def test_tta_is_close_to_plain() -> None:
    """TTA averages 8 transforms: different from, but close to, the plain result on a smooth image."""
    yy, xx = np.mgrid[0:24, 0:24].astype(np.float32)
    image = np.stack([xx / 24, yy / 24, (xx * yy) / 576], axis=2)  # smooth and asymmetric
    plain = _engine().upscale(RasterImage(image)).pixels
    tta = _engine(tta=True).upscale(RasterImage(image)).pixels
    assert 0 < np.abs(plain - tta).mean() < 0.01


def test_dihedral_transforms_invert() -> None:
    """Each of the 8 TTA transforms is undone by its inverse, on a non-square image."""
    image = _image(3, 5)
    for k in range(8):
        np.testing.assert_array_equal(_dihedral_inverse(_dihedral(image, k), k), image)
    assert len({_dihedral(image, k).tobytes() for k in range(8)}) == 8


def test_gray_and_16_bit_are_kept() -> None:
    """A 16-bit grayscale image comes back 16-bit grayscale at 2x."""
    out = _engine().upscale(RasterImage(_image(10, 11, c=1), bits=16, icc_profile=b"icc"))
    assert (out.pixels.shape, out.bits, out.icc_profile) == ((20, 22, 1), 16, b"icc")


def test_luminance_model_pipeline(waifu2x_json: Path) -> None:
    """vgg_7 art_y: the output's Y is the network's Y on the nearest-2x input; chroma follows Lanczos."""
    path = str(waifu2x_json / "vgg_7" / "art_y" / "scale2.0x_model.json")
    engine = Engine(ModelSettings(name=path), EngineSettings(tile=32))
    gray = np.repeat(_image(12, 10, c=1), 3, axis=2)
    out = engine.upscale(RasterImage(gray)).pixels
    assert out.shape == (24, 20, 3)
    # A gray input has no chroma, so every output channel carries the same upscaled Y.
    assert np.abs(out - out.mean(axis=2, keepdims=True)).max() < 2e-3
    # The Y network on a nearest-upscaled image stays close to that image (it sharpens, not repaints).
    assert np.abs(out[:, :, 0] - nearest_upscale(gray, 2)[:, :, 0]).mean() < 0.15


@pytest.mark.parametrize(
    ("options", "size", "with_alpha"),
    [
        ({}, (45, 70), False),  # several tiles of a 32 tile, edge buckets included
        ({"noise": 1}, (30, 40), True),  # the noise-free network upscales the alpha: its tiles count too
        ({"scale": 4}, (20, 18), False),  # two 2x passes, the second on the first's output
        ({"tta": True}, (20, 24), False),  # eight transforms, each a full pass
    ],
)
def test_progress_counts_every_tile(
    options: dict[str, object], size: tuple[int, int], with_alpha: bool
) -> None:
    """`upscale` reports finished tiles in order and ends at exactly `tile_count` (passes, TTA, alpha)."""
    engine = _engine(**options)
    h, w = size
    image = RasterImage(_image(h, w), alpha=np.ones((h, w), np.float32) if with_alpha else None)
    reports: list[tuple[int, int]] = []
    engine.upscale(image, progress=lambda done, total: reports.append((done, total)))
    total = engine.tile_count(image)
    assert total > 1
    assert {t for _, t in reports} == {total}
    done = [d for d, _ in reports]
    assert done == sorted(done)
    assert done[-1] == total


def test_streamed_bands_report_progress_too() -> None:
    """`upscale_bands` reports its tiles like `upscale`, ending at the same total."""
    engine = _engine()
    image = RasterImage(_image(40, 50))
    reports: list[int] = []
    bands = list(engine.upscale_bands(image, lambda done, total: reports.append(total - done)))
    assert bands
    assert reports[-1] == 0
    assert len(reports) > 1
