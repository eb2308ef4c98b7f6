"""The GPU path's engine settings, checked on the CPU: engine.precision (the network in bfloat16 or
float16, pixels float32 outside it) and the per-device default tile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srd.engine import GPU_TILE, Engine, check_engine, conv_backend_for, default_tile
from srd.imaging.raster import RasterImage
from srd.models import load_step
from srd.nn.ops import masked_mean
from srd.settings import EngineSettings, ModelSettings, Precision


def _image(height: int, width: int) -> RasterImage:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(xx / 5) * 0.4 + 0.5, yy / height, ((xx // 8 + yy // 8) % 2) * 0.7 + 0.1], 2)
    return RasterImage(np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32))


def _upscale(model: ModelSettings, precision: Precision, image: RasterImage, tile: int) -> np.ndarray:
    engine = Engine(model, EngineSettings(precision=precision, tile=tile))  # the GPU where there is one
    out = engine.upscale(image)
    assert out.pixels.dtype == np.float32
    return out.pixels


# (model, dtype, mean and largest absolute difference from float32 allowed): about 2.5x what the CPU gave
@pytest.mark.parametrize(
    ("name", "precision", "mean_tol", "max_tol"),
    [
        ("upconv7-art", "bfloat16", 0.005, 0.04),
        ("realcugan-se", "float16", 0.0015, 0.015),
        ("cunet", "bfloat16", 0.005, 0.05),
    ],
)
def test_low_precision_stays_close_to_float32(
    name: str, precision: Precision, mean_tol: float, max_tol: float
) -> None:
    """bfloat16/float16 (edge tiles, global pooling, shared pools) differ from float32 by rounding only."""
    model = ModelSettings(name=name)
    image = _image(44, 52)  # partial tiles on both axes with tile 32
    exact = _upscale(model, "float32", image, 32)
    low = _upscale(model, precision, image, 32)
    diff = np.abs(low - exact)
    assert np.isfinite(low).all()
    assert 0 < float(diff.mean()) < mean_tol
    assert float(diff.max()) < max_tol


def test_precision_runs_direct_and_says_why() -> None:
    """engine.precision bfloat16 makes conv auto mean lax.conv, and the start-up line says so."""
    engine = Engine(ModelSettings(), EngineSettings(device="cpu", precision="bfloat16"))
    assert engine.conv_algorithm == "direct"
    assert "engine.precision bfloat16" in engine.conv_description


def test_precision_with_a_float32_kernel_is_refused() -> None:
    """A float32-only backend with bfloat16 is a settings error naming both keys, for check-config too."""
    settings = EngineSettings(device="cpu", precision="bfloat16", conv="winograd")
    with pytest.raises(ValueError, match=r"engine\.precision bfloat16 runs with conv direct"):
        conv_backend_for(settings, "cpu")
    problems = check_engine(ModelSettings(), settings)
    assert len(problems) == 1
    assert problems[0].startswith("At 'engine.conv': engine.precision bfloat16")


def test_float16_global_mean_of_a_large_tile_does_not_overflow() -> None:
    """masked_mean of a float16 blob with more pixels than float16 can count (65504) is still the mean."""
    x = jnp.full((1, 300, 300, 2), 0.5, jnp.float16)
    mean = masked_mean(x, jnp.array([[300, 280]], jnp.int32))
    assert mean.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(mean, np.float32), 0.5)


@pytest.mark.parametrize(
    ("name", "scale", "cpu", "gpu"),
    [("upconv7-art", 2, 256, GPU_TILE), ("cunet", 2, 400, 400), ("realesrgan-x4plus", 4, 200, 200)],
)
def test_default_tile_per_device(name: str, scale: int, cpu: int, gpu: int) -> None:
    """On a GPU only tile-independent networks get the big tile; tile-dependent ones keep ncnn's."""
    model = load_step(name, -1, scale)
    assert default_tile(model, "cpu") == cpu
    assert default_tile(model, "gpu") == gpu
    assert default_tile(model, "tpu") == gpu


def test_engine_uses_the_device_default_tile() -> None:
    """The engine's tile is the device default when engine.tile is unset, the setting otherwise."""
    platform = jax.devices()[0].platform
    engine = Engine(ModelSettings(), EngineSettings())
    assert engine.tile_for(engine.passes[0]) == default_tile(engine.passes[0], platform)
    assert Engine(ModelSettings(), EngineSettings(tile=64)).tile_for(engine.passes[0]) == 64
