"""The JSON loader and the JAX network against an independent float64 reference on nagadomi's weights."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from support.reference_net import run_json_layers

from srd.errors import ModelError
from srd.models import load_step, parse_json_model
from srd.nn import ConvAlgorithm, apply_network, prepare_weights


def _compare(path: Path, size: int, conv: ConvAlgorithm = "direct") -> float:
    model = load_step(str(path), -1, 2)
    rng = np.random.default_rng(7)
    x = rng.random((size, size, model.spec.in_channels)).astype(np.float32)
    weights = jax.tree.map(jnp.asarray, prepare_weights(model.spec, model.weights, conv))
    ours = np.asarray(apply_network(model.spec, weights, jnp.asarray(x[None]), conv))[0]
    layers = json.loads(path.read_text())
    ref = run_json_layers(layers, x.transpose(2, 0, 1).astype(np.float64)).transpose(1, 2, 0)
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max())


@pytest.mark.parametrize("conv", ["direct", "native"])
def test_vgg7_art_y_matches_float64_reference(waifu2x_json: Path, conv: ConvAlgorithm) -> None:
    """The seed's network (vgg_7 art_y) equals a float64 numpy reference within 1e-5 before rounding,
    with lax.conv and with the native Winograd kernel (its 32..128-channel layers)."""
    path = waifu2x_json / "vgg_7" / "art_y" / "scale2.0x_model.json"
    assert _compare(path, 30, conv) < 1e-5


@pytest.mark.parametrize("conv", ["direct", "native"])
def test_upconv7_json_matches_float64_reference(waifu2x_json: Path, conv: ConvAlgorithm) -> None:
    """upconv_7 from JSON (transposed convolution included) equals the float64 reference within 1e-5."""
    path = waifu2x_json / "upconv_7" / "art" / "scale2.0x_model.json"
    assert _compare(path, 24, conv) < 1e-5


def test_geometry_from_json(waifu2x_json: Path) -> None:
    """vgg_7 is a 1x network with 7 px of context and needs a 2x nearest pre-upscale; upconv_7 is 2x."""
    vgg = load_step(str(waifu2x_json / "vgg_7" / "art_y" / "scale2.0x_model.json"), -1, 2)
    assert (vgg.spec.scale, vgg.spec.context, vgg.pre_upscale, vgg.luminance) == (1, 7, 2, True)
    up = load_step(str(waifu2x_json / "upconv_7" / "art" / "scale2.0x_model.json"), -1, 2)
    assert (up.spec.scale, up.spec.context, up.pre_upscale, up.luminance) == (2, 7, 1, False)
    noise = load_step(str(waifu2x_json / "vgg_7" / "art_y" / "noise1_model.json"), 1, 1)
    assert (noise.scale, noise.noise) == (1, 1)


def test_json_without_model_config_infers_arch(waifu2x_json: Path) -> None:
    """Older files without model_config are recognised from their layers."""
    layers = json.loads((waifu2x_json / "upconv_7" / "photo" / "scale2.0x_model.json").read_text())
    layers[0].pop("model_config", None)
    assert parse_json_model(json.dumps(layers)).arch == "upconv_7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "non-empty list"),
        ("not json", "not a waifu2x JSON model"),
        (
            json.dumps(
                [
                    {
                        "class_name": "nn.Tanh",
                        "kW": 3,
                        "kH": 3,
                        "dW": 1,
                        "dH": 1,
                        "nInputPlane": 3,
                        "nOutputPlane": 3,
                        "weight": [],
                        "bias": [],
                    }
                ]
            ),
            "nn.Tanh",
        ),
    ],
)
def test_bad_json_is_a_clear_error(text: str, message: str) -> None:
    """Malformed files and unknown layer classes raise ModelError naming the problem."""
    with pytest.raises(ModelError, match=message):
        parse_json_model(text)


def test_a_folder_without_the_combined_file_chains_noise_then_scale(waifu2x_json: Path) -> None:
    """vgg_7/art_y has noise1_model and scale2.0x_model but no noise1_scale2.0x_model: -n 1 -s 2 runs the
    1x noise pass, then the 2x pass, as waifu2x does, and equals the two run one after the other."""
    from srd.engine import Engine
    from srd.engine.engine import plan_passes
    from srd.imaging.raster import RasterImage
    from srd.settings import EngineSettings, ModelSettings

    folder = waifu2x_json / "vgg_7" / "art_y"
    passes = plan_passes(ModelSettings(name=str(folder), noise=1, scale=2))
    assert [(p.noise, p.scale) for p in passes] == [(1, 1), (-1, 2)]
    assert len(plan_passes(ModelSettings(name=str(folder), noise=1, scale=4))) == 3
    settings = EngineSettings(tile=32, conv="direct")
    rng = np.random.default_rng(0)
    image = RasterImage(rng.random((20, 24, 3), dtype=np.float32))
    chained = Engine(ModelSettings(name=str(folder), noise=1, scale=2), settings).upscale(image)
    denoised = Engine(ModelSettings(name=str(folder / "noise1_model.json"), noise=1, scale=1), settings)
    scaled = Engine(ModelSettings(name=str(folder / "scale2.0x_model.json"), scale=2), settings)
    expected = scaled.upscale(denoised.upscale(image))
    assert chained.pixels.shape == (40, 48, 3)
    np.testing.assert_allclose(chained.pixels, expected.pixels, atol=1e-5)
    with pytest.raises(ModelError, match=r"noise1_scale2\.0x_model"):
        plan_passes(ModelSettings(name=str(waifu2x_json / "vgg_7" / "art"), noise=1, scale=2))
