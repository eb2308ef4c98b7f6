"""Tiling: fixed tile shapes give the untiled result exactly, and compile once per tile shape."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srd.engine import Engine
from srd.imaging.raster import RasterImage
from srd.models import load_step
from srd.nn import Activation, Conv, ConvAlgorithm, TileRunner, Weights, infer_geometry, upscale_untiled
from srd.nn.conv import NATIVE
from srd.nn.tile_plan import axis_plan, bucket_sizes, bucket_step
from srd.settings import EngineSettings, ModelSettings

UPCONV = load_step("upconv7-art", -1, 2)


def _random_vgg7(channels: int) -> tuple[object, Weights]:
    """vgg_7's architecture (1->32->32->64->64->128->128->1) with random weights."""
    widths = [channels, 32, 32, 64, 64, 128, 128, channels]
    rng = np.random.default_rng(0)
    ops, weights = [], {}
    for i in range(7):
        last = i == 6
        name = f"l{i}"
        ops.append(
            Conv(
                name,
                "in" if i == 0 else f"b{i - 1}",
                f"b{i}",
                (3, 3),
                activation=Activation.NONE if last else Activation.LEAKY_RELU,
                slope=0.1,
            )
        )
        fan_in = 9 * widths[i]
        weights[name] = {
            "w": (rng.standard_normal((3, 3, widths[i], widths[i + 1])) / np.sqrt(fan_in)).astype(np.float32),
            "b": (rng.standard_normal(widths[i + 1]) * 0.01).astype(np.float32),
        }
    spec = infer_geometry("vgg_7", tuple(ops), weights, "in", "b6", channels)
    return spec, weights


VGG7 = _random_vgg7(1)
# lax.conv everywhere; srd's native kernel where it runs (built, and the default device is a CPU)
CONVS = ["direct", *(["native"] if NATIVE.unavailable_reason(jax.devices()[0].platform) is None else [])]
_RUNNERS: dict[tuple[str, int, ConvAlgorithm], TileRunner] = {}


def _runner(kind: str, tile: int, conv: ConvAlgorithm) -> TileRunner:
    if (kind, tile, conv) not in _RUNNERS:
        spec, weights = (UPCONV.spec, UPCONV.weights) if kind == "upconv" else VGG7
        runner = TileRunner(spec, weights, tile, 2, jax.devices()[0], conv)  # type: ignore[arg-type]
        _RUNNERS[(kind, tile, conv)] = runner
    return _RUNNERS[(kind, tile, conv)]


@settings(max_examples=10, deadline=None)
@given(
    kind=st.sampled_from(["upconv", "vgg7"]),
    tile=st.sampled_from([8, 13, 24, 32]),
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    seed=st.integers(0, 2**16),
    conv=st.sampled_from(CONVS),
)
def test_tiled_equals_untiled(
    kind: str, tile: int, height: int, width: int, seed: int, conv: ConvAlgorithm
) -> None:
    """Any image size with any tile size reproduces the single-call result: to the 8-bit pixel with
    lax.conv; with the native Winograd, whose 6x6 blocks fall elsewhere in a tile than in the whole image,
    to float32 rounding (so an 8-bit value sitting on a rounding boundary may move by 1)."""
    runner = _runner(kind, tile, conv)
    image = np.random.default_rng(seed).random((height, width, runner.spec.in_channels), dtype=np.float32)
    tiled = runner.upscale(image)
    weights = {k: dict(v) for k, v in runner._weights.items()}
    whole = upscale_untiled(runner.spec, weights, image, conv)  # type: ignore[arg-type]
    assert (
        tiled.shape
        == whole.shape
        == (height * runner.spec.scale, width * runner.spec.scale, runner.spec.out_channels)
    )
    # F(6x6, 3x3) in float32 is accurate to a few 1e-5 on these values (tests/test_native.py)
    np.testing.assert_allclose(tiled, whole, atol=1e-5 if conv == "direct" else 5e-5)
    quant = lambda a: np.floor(np.clip(a, 0, 1) * 255 + 0.5)  # noqa: E731
    if conv == "direct":
        assert np.array_equal(quant(tiled), quant(whole))
    else:
        assert np.abs(quant(tiled) - quant(whole)).max() <= 1


def test_compiles_are_bounded_whatever_the_image_sizes() -> None:
    """The engine compiles once per tile shape (the tile and its edge buckets), never per image size."""
    engine = Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32, batch=2))
    runner = engine._runners[engine.passes[0].label]
    sizes = [(10, 17), (33, 64), (70, 5), (32, 32), (41, 97)]
    rng = np.random.default_rng(1)
    for h, w in sizes:
        out = engine.upscale(RasterImage(rng.random((h, w, 3), dtype=np.float32)))
        assert out.pixels.shape == (2 * h, 2 * w, 3)
    assert 1 <= engine.trace_count <= len(runner.buckets) ** 2
    before = engine.trace_count
    for h, w in [(9, 18), (65, 31), (100, 100)]:
        engine.upscale(RasterImage(rng.random((h, w, 3), dtype=np.float32)))
    engine.warmup(every_shape=True)  # compiles every bucket pair; nothing after it compiles again
    after_warmup = engine.trace_count
    assert before <= after_warmup <= len(runner.buckets) ** 2
    engine.upscale(RasterImage(rng.random((57, 23, 3), dtype=np.float32)))
    assert engine.trace_count == after_warmup


def test_edge_tiles_take_the_smallest_covering_bucket() -> None:
    """Whole tiles along an axis, then the smallest bucket that covers the remainder."""
    spec = UPCONV.spec
    buckets = bucket_sizes(256, spec)
    assert buckets == tuple(range(256, 0, -16))
    assert axis_plan(600, 256, buckets) == [(0, 256), (256, 256), (512, 96)]
    assert axis_plan(620, 256, buckets) == [(0, 256), (256, 256), (512, 112)]
    assert axis_plan(40, 256, buckets) == [(0, 48)]
    assert axis_plan(256, 256, buckets) == [(0, 256)]


@pytest.mark.parametrize("tile", [16, 32, 64, 100, 256, 400, 512, 1024, 4096])
@pytest.mark.parametrize("align", [1, 2, 4])
def test_buckets_waste_at_most_one_step_and_stay_few(tile: int, align: int) -> None:
    """Every remainder runs in a bucket at most one step larger; at most 33 sizes an axis; all aligned."""
    tile = -(-tile // align) * align
    buckets = bucket_sizes(tile, UPCONV.spec, align)
    step = bucket_step(tile, align)
    assert buckets[0] == tile and len(buckets) <= 33
    assert all(b % align == 0 for b in buckets)
    for remainder in range(1, tile + 1):
        size = min(b for b in buckets if b >= remainder)
        assert size - remainder < step
    # the usual tiles edge at 16 px: a 256 px image in a 400 tile runs at 256, as ncnn's exact tile does
    if 64 <= tile <= 512:
        assert step == max(16, align)
