"""srd's engine against ncnn (PyPI) running the same packaged .param/.bin: every 8-bit pixel within 1."""

from __future__ import annotations

import numpy as np
import pytest
from support.ncnn_peer import load_peer

from srd.engine import Engine
from srd.imaging.raster import RasterImage
from srd.nn import ConvAlgorithm
from srd.settings import EngineSettings, ModelSettings


def _test_image(height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic image with edges, gradients, texture and flat areas, like real art."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    g = (xx + yy) / (width + height)
    b = ((xx // 16 + yy // 16) % 2).astype(np.float32) * 0.8 + 0.1
    image = np.stack([r, g, b], axis=2) + rng.normal(0, 0.03, (height, width, 3))
    image[height // 3 : height // 2, width // 4 : width // 2] = (1.0, 0.9, 0.2)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


def _srd(model: ModelSettings, settings: EngineSettings, rgb: np.ndarray) -> np.ndarray:
    out = Engine(model, settings).upscale(RasterImage(rgb.astype(np.float32) / 255.0))
    return np.floor(np.clip(out.pixels, 0, 1) * 255 + 0.5).astype(np.uint8)


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.slow
@pytest.mark.parametrize(("name", "noise"), [("upconv7-art", -1), ("upconv7-photo", -1), ("upconv7-art", 1)])
def test_upconv7_matches_ncnn(name: str, noise: int) -> None:
    """upconv_7 art and photo, 2x, on an odd-sized image: within 1 of ncnn everywhere."""
    rgb = _test_image(90, 131, seed=1)
    peer = load_peer(name, noise, 2).process(rgb)
    ours = _srd(ModelSettings(name=name, noise=noise, scale=2), EngineSettings(tile=64, batch=2), rgb)
    assert _max_diff(ours, peer) <= 1


@pytest.mark.slow
@pytest.mark.parametrize(("noise", "scale"), [(-1, 2), (1, 1)])
def test_cunet_matches_ncnn_at_its_cpu_tile(noise: int, scale: int) -> None:
    """cunet 2x and cunet 1x denoise at ncnn's CPU tile size of 400: within 1 of ncnn everywhere."""
    rgb = _test_image(400, 400, seed=2)
    peer = load_peer("cunet", noise, scale).process(rgb)
    ours = _srd(ModelSettings(name="cunet", noise=noise, scale=scale), EngineSettings(tile=400), rgb)
    assert _max_diff(ours, peer) <= 1


@pytest.mark.slow
@pytest.mark.parametrize(("height", "width", "tile"), [(77, 130, None), (150, 430, None), (90, 70, 64)])
def test_cunet_partial_tiles_match_ncnn(height: int, width: int, tile: int | None) -> None:
    """cunet on sizes that leave partial edge tiles (and on one tile smaller than the image) matches
    ncnn run with the same tile size: global pooling sees only each tile's real area."""
    rgb = _test_image(height, width, seed=3)
    peer = load_peer("cunet", -1, 2, tilesize=tile or 400).process(rgb)
    ours = _srd(ModelSettings(name="cunet", noise=-1, scale=2), EngineSettings(tile=tile), rgb)
    assert _max_diff(ours, peer) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["upconv7-art", "cunet"])
@pytest.mark.parametrize("conv", ["direct", "winograd"])
def test_other_conv_algorithms_match_ncnn(name: str, conv: ConvAlgorithm) -> None:
    """The tests above run the default ("native" on the CPU); lax.conv ("direct", what GPUs run) and the
    jnp Winograd ("winograd") also stay within 1 of ncnn."""
    rgb = _test_image(150, 130, seed=4)
    peer = load_peer(name, -1, 2).process(rgb)
    ours = _srd(ModelSettings(name=name, noise=-1, scale=2), EngineSettings(conv=conv), rgb)
    assert _max_diff(ours, peer) <= 1
