"""srd's Real-CUGAN 2x and compact (realesr-animevideov3 4x) networks against independent float64 numpy
references written from the published PyTorch architectures (tests/support/reference_cugan.py,
reference_compact.py), on the packaged weights: float outputs within 1e-4."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from support import reference_compact as compact
from support import reference_cugan as cugan

from srd.engine import Engine
from srd.imaging.raster import RasterImage
from srd.models import load_step
from srd.nn.network import apply_network
from srd.settings import ModelSettings

SET14 = Path(__file__).resolve().parents[3] / "shared" / "data" / "set14"
TOLERANCE = 1e-4  # float32 (srd, ncnn) against float64 (reference)
F32 = npt.NDArray[np.float32]

CUGAN_MODELS = [(-1, "REALCUGAN_SE_UP2X_CONSERVATIVE"), (0, "REALCUGAN_SE_UP2X")]
COMPACT_4X = "REALESRGAN_ANIMAVIDEOV3_UP4X"


def _crop(top: int, left: int, height: int, width: int) -> F32:
    """A CHW float32 crop of baboon.png in [0, 1] as srd reads 8-bit images; skip without ../shared."""
    path = SET14 / "baboon.png"
    if not path.is_file():
        pytest.skip("../shared/data/set14/baboon.png is not present beside the repo")
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))[top : top + height, left : left + width]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(np.float32) / np.float32(255)


def _cugan_input() -> F32:
    """A 40 x 52 crop with 18 px of reflected context a side: 76 x 88, even, as the 2x net consumes it."""
    return np.pad(_crop(100, 60, 40, 52), ((0, 0), (18, 18), (18, 18)), mode="reflect")


def _srd_network(model: str, noise: int, scale: int, x: F32) -> F32:
    """srd's network alone (apply_network, "direct" convolutions) on one CHW input, as CHW."""
    loaded = load_step(model, noise, scale)
    weights = jax.tree.map(jnp.asarray, loaded.weights)
    y = apply_network(loaded.spec, weights, jnp.asarray(x.transpose(1, 2, 0)[None]), "direct")
    return np.asarray(y)[0].transpose(2, 0, 1)


def _max_diff(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def test_reader_maps_every_weight_layer_onto_the_pytorch_modules() -> None:
    """The minimal .param/.bin reader consumes each .bin exactly and every ncnn weight layer lands on a
    PyTorch parameter of the published shape."""
    for _, stem in CUGAN_MODELS:
        params = cugan.load_upcunet2x(stem)
        assert len(params) == 2 * len(cugan.UPCUNET2X_LAYERS)
        assert params["unet1.conv_bottom.weight"].shape == (64, 3, 4, 4)  # ConvTranspose2d: [in][out]
        assert params["unet2.conv3.seblock.conv1.weight"].shape == (16, 128, 1, 1)
        assert params["unet2.conv_bottom.weight"].shape == (3, 64, 3, 3)
    params, num_conv, upscale = compact.load_compact(COMPACT_4X)
    assert (num_conv, upscale) == (16, 4)
    assert params["body.1.weight"].shape == (64,) and params["body.34.weight"].shape == (48, 64, 3, 3)


@pytest.mark.parametrize(("noise", "stem"), CUGAN_MODELS)
def test_cugan_reference_matches_ncnn(noise: int, stem: str) -> None:
    """The reference UpCunet2x agrees with ncnn (fp16 off) running the packaged graph on the same input,
    which confirms the weight mapping, the deconvolution layout included, independently of srd."""
    peer = pytest.importorskip("support.realsr_peer")
    x = _cugan_input()
    ref = cugan.upcunet2x(cugan.load_upcunet2x(stem), x)
    net = peer.load("realcugan", stem)
    out = peer._run(net, x, {}, (net.output,))[net.output]
    assert ref.shape == (3, 80, 104)
    assert _max_diff(out, ref) < TOLERANCE


def test_cugan_deconvolution_layout_matters() -> None:
    """Reading ncnn's deconvolution kernels as PyTorch's [in][out] without the transpose changes the
    output by far more than the tolerance, so the agreement above is not vacuous."""
    param_text, bin_data = cugan.model_files("realcugan", CUGAN_MODELS[0][1])
    right = cugan.upcunet2x_params(param_text, bin_data)
    wrong = dict(right)
    for name, kind, (cin, cout, k) in cugan.UPCUNET2X_LAYERS:
        if kind == "deconv":
            wrong[f"{name}.weight"] = right[f"{name}.weight"].transpose(1, 0, 2, 3).reshape(cin, cout, k, k)
    x = _cugan_input()
    assert _max_diff(cugan.upcunet2x(right, x), cugan.upcunet2x(wrong, x)) > 100 * TOLERANCE


@pytest.mark.parametrize(("noise", "stem"), CUGAN_MODELS)
def test_cugan_network_matches_reference(noise: int, stem: str) -> None:
    """srd's realcugan-se 2x network on a padded baboon crop equals the published UpCunet2x in float64."""
    x = _cugan_input()
    ref = cugan.upcunet2x(cugan.load_upcunet2x(stem), x)
    out = _srd_network("realcugan-se", noise, 2, x)
    assert out.shape == ref.shape == (3, 2 * (76 - 36), 2 * (88 - 36))
    assert _max_diff(out, ref) < TOLERANCE


def test_cugan_pipeline_matches_published_forward() -> None:
    """srd's Engine on an odd-sized crop (one tile, reflect border) equals UpCunet2x.forward's tile_mode 0
    padding, network and crop, clamped to 0..1 (the published forward's byte rounding left out)."""
    x = _crop(100, 60, 39, 51)
    ref = np.clip(cugan.upcunet2x_unrounded(cugan.load_upcunet2x(CUGAN_MODELS[0][1]), x), 0.0, 1.0)
    engine = Engine(ModelSettings(name="realcugan-se", scale=2, noise=-1))
    out = engine.upscale(RasterImage(np.ascontiguousarray(x.transpose(1, 2, 0)))).pixels.transpose(2, 0, 1)
    assert out.shape == ref.shape == (3, 78, 102)
    assert _max_diff(out, ref) < TOLERANCE


def test_compact_reference_matches_ncnn() -> None:
    """The reference SRVGGNetCompact agrees with ncnn (fp16 off) on the packaged 4x graph, independently
    of srd."""
    peer = pytest.importorskip("support.realsr_peer")
    x = _crop(100, 60, 32, 40)
    ref = compact.srvgg_compact(*compact.load_compact(COMPACT_4X), x)
    net = peer.load("realesrgan", COMPACT_4X)
    out = peer._run(net, x, {}, (net.output,))[net.output]
    assert _max_diff(out, ref) < TOLERANCE


def test_compact_network_matches_reference() -> None:
    """srd's realesr-animevideov3 4x network on a baboon crop equals the published SRVGGNetCompact."""
    x = _crop(100, 60, 32, 40)
    ref = compact.srvgg_compact(*compact.load_compact(COMPACT_4X), x)
    out = _srd_network("realesr-animevideov3", -1, 4, x)
    assert out.shape == ref.shape == (3, 128, 160)
    assert _max_diff(out, ref) < TOLERANCE
