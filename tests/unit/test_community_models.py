"""Community models (.pth / .safetensors) against spandrel's own PyTorch classes: detection of every key
layout and the 8-bit output of srd's graphs against the reference forward on the same image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.spandrel_ref import (
    architecture,
    calibrate,
    forward_reflect,
    match_reference,
    randomise,
    save_pth,
    save_safetensors,
    textured_image,
)

from srd.api import Upscaler
from srd.errors import ModelError
from srd.models.community import detect_network, read_network

torch = pytest.importorskip("torch")


def _compare(model: Any, path: Path, scale: int, size: tuple[int, int] = (36, 44), **options: Any) -> None:
    """srd's output of the file equals the reference forward (mirrored 10 px context) within 1 of 255,
    and the reference is not saturated (so the comparison sees the network, not clipping). The model
    is calibrated before it is saved (`_saved`), on the same image."""
    match_reference(model, path, scale, textured_image(*size), **options)


def _calibrated(model: Any, last: str, size: tuple[int, int] = (36, 44)) -> Any:
    """`model` with its last layer `last` rescaled so its output on the textured image is not saturated."""
    return calibrate(model, last, textured_image(*size).astype(np.float32) / 255)


def _esrgan(size: tuple[int, int] = (36, 44), seed: int = 0, **kwargs: Any) -> Any:
    model = randomise(architecture("ESRGAN").ESRGAN(**kwargs), seed=seed, scale=0.3)
    return _calibrated(model, f"model.{len(model.model) - 1}", size)


def _new_keys(state: dict[str, Any]) -> dict[str, Any]:
    """An old-layout ESRGAN state dict in BasicSR / Real-ESRGAN's key names (conv_first, body.N.rdbK...)."""
    out: dict[str, Any] = {}
    ups = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.")} - {0, 1})
    convs = [n for n in ups if f"model.{n}.weight" in state]
    names = {0: "conv_first", convs[-1]: "conv_last", convs[-2]: "conv_hr"}
    names |= {n: f"conv_up{i + 1}" for i, n in enumerate(convs[:-2])}
    trunk = max(int(k.split(".")[3]) for k in state if k.startswith("model.1.sub."))
    for key, value in state.items():
        parts = key.split(".")
        if parts[1] == "1":
            if int(parts[3]) == trunk:
                out[f"conv_body.{parts[-1]}"] = value
            else:
                rdb, conv = parts[4].lower(), parts[5]
                out[f"body.{parts[3]}.{rdb}.{conv}.{parts[-1]}"] = value
        else:
            out[f"{names[int(parts[1])]}.{parts[-1]}"] = value
    return out


def _bsrgan_keys(state: dict[str, Any]) -> dict[str, Any]:
    """The same in BSRGAN / RealSR's names (RRDB_trunk.N.RDBk, trunk_conv, upconvN, HRconv)."""
    renames = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
    out = {}
    for key, value in _new_keys(state).items():
        head, _, rest = key.partition(".")
        if head == "body":
            index, rdb, tail = rest.split(".", 2)
            out[f"RRDB_trunk.{index}.{rdb.upper()}.{tail}"] = value
        elif head.startswith("conv_up"):
            out[f"upconv{head[-1]}.{rest}"] = value
        else:
            out[f"{renames.get(head, head)}.{rest}"] = value
    return out


@pytest.mark.parametrize(
    ("kwargs", "scale"),
    [
        ({"num_filters": 16, "num_blocks": 2, "scale": 4}, 4),
        ({"num_filters": 8, "num_blocks": 1, "scale": 2}, 2),
        ({"num_filters": 8, "num_blocks": 1, "scale": 1}, 1),
        ({"num_filters": 8, "num_blocks": 1, "scale": 8}, 8),
        ({"in_nc": 12, "num_filters": 8, "num_blocks": 1, "scale": 4, "shuffle_factor": 2}, 2),
        ({"in_nc": 48, "num_filters": 8, "num_blocks": 1, "scale": 4, "shuffle_factor": 4}, 1),
    ],
    ids=["4x", "2x", "1x", "8x", "2x-unshuffle", "1x-unshuffle"],
)
def test_esrgan_matches_spandrel(tmp_path: Path, kwargs: dict[str, Any], scale: int) -> None:
    """ESRGAN of every scale, with and without Real-ESRGAN's pixel unshuffle, equals spandrel's forward."""
    size = (32, 40) if scale < 8 else (12, 16)
    model = _esrgan(size, seed=scale, **kwargs)
    path = save_pth(model.state_dict(), tmp_path / "esrgan.pth")
    _compare(model, path, scale, size)


@pytest.mark.parametrize("layout", ["old", "new", "bsrgan"])
@pytest.mark.parametrize("container", ["pth", "legacy-pth", "safetensors"])
def test_esrgan_layouts_load_and_detect(tmp_path: Path, layout: str, container: str) -> None:
    """Every ESRGAN key layout, in every container, is detected with its hyperparameters and runs as the
    old layout does (which spandrel's forward checks)."""
    model = _esrgan((20, 28), seed=7, num_filters=8, num_blocks=3, scale=4)
    state = dict(model.state_dict())
    state = {"old": state, "new": _new_keys(state), "bsrgan": _bsrgan_keys(state)}[layout]
    if container == "safetensors":
        path = save_safetensors(state, tmp_path / "m.safetensors")
    else:
        wrapped = {"params_ema": state, "iter": 1000} if layout == "new" else state
        path = save_pth(wrapped, tmp_path / "m.pth", legacy=container == "legacy-pth")
    net = read_network(path)
    assert (net.arch, net.scale, net.in_channels, net.out_channels) == ("ESRGAN", 4, 3, 3)
    assert dict(net.hyperparameters)["blocks"] == "3"
    assert dict(net.hyperparameters)["features"] == "8"
    _compare(model, path, 4, (20, 28))


@pytest.mark.parametrize(("convs", "feat", "scale"), [(4, 16, 4), (2, 8, 2), (3, 8, 1), (2, 8, 3)])
def test_compact_matches_spandrel(tmp_path: Path, convs: int, feat: int, scale: int) -> None:
    """Real-ESRGAN Compact of any depth, width and scale equals spandrel's forward."""
    cls = architecture("Compact").Compact
    model = randomise(cls(num_in_ch=3, num_out_ch=3, num_feat=feat, num_conv=convs, upscale=scale), 3)
    model = _calibrated(model, f"body.{2 * convs + 2}")
    path = save_safetensors(model.state_dict(), tmp_path / "compact.safetensors")
    net = read_network(path)
    assert (net.arch, net.scale) == ("Compact", scale)
    assert dict(net.hyperparameters) == {"convolutions": str(convs), "features": str(feat)}
    _compare(model, path, scale)


@pytest.mark.parametrize(("scale", "norm"), [(4, True), (2, False), (1, True)])
def test_span_matches_spandrel(tmp_path: Path, scale: int, norm: bool) -> None:
    """SPAN, with and without its input normalisation, equals spandrel's forward (which recomputes each
    Conv3XC's kernel from its trained layers, as srd does)."""
    cls = architecture("SPAN").SPAN
    model = randomise(cls(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=scale, norm=norm), 5, 0.3)
    model = _calibrated(model, "upsampler.0")
    path = save_pth(model.state_dict(), tmp_path / "span.pth")
    net = read_network(path)
    assert (net.arch, net.scale, dict(net.hyperparameters)["normalised"]) == ("SPAN", scale, str(norm))
    _compare(model, path, scale)


def test_tiled_image_matches_untiled_reference_inside(tmp_path: Path) -> None:
    """An image cut into several tiles (a partial edge tile included) equals the reference on the whole
    mirrored image within 1 of 255 for a network whose reach fits the 10 px context (Compact, 2 layers)."""
    cls = architecture("Compact").Compact
    model = randomise(cls(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2), 11)
    model = _calibrated(model, "body.6", (70, 90))
    path = save_pth(model.state_dict(), tmp_path / "compact.pth")
    _compare(model, path, 2, (70, 90), tile=32)


@pytest.mark.parametrize("conv", ["native", "direct"])
def test_backends_agree(tmp_path: Path, conv: str) -> None:
    """The native Winograd kernel and lax.conv both give the reference's output for ESRGAN."""
    from srd.nn.conv.native_backend import NATIVE

    if conv == "native" and NATIVE.unavailable_reason("cpu") is not None:
        pytest.skip("srd's native kernel is not built")
    model = _esrgan(seed=2, num_filters=16, num_blocks=1, scale=2)
    path = save_pth(model.state_dict(), tmp_path / "esrgan.pth")
    _compare(model, path, 2, conv=conv)


def test_unknown_state_dict_lists_known_architectures() -> None:
    """A state dict of no known architecture is a ModelError naming the ones srd knows."""
    state = {"encoder.0.weight": np.zeros((4, 3, 3, 3), np.float32)}
    with pytest.raises(ModelError, match=r"ESRGAN.*Compact") as err:
        detect_network(state)
    assert "encoder.0.weight" in str(err.value)


def test_mismatched_shapes_name_the_layer(tmp_path: Path) -> None:
    """A layer whose input channels do not fit the blob it reads is a ModelError naming that layer."""
    model = _esrgan(seed=1, num_filters=8, num_blocks=1, scale=2)
    state = dict(model.state_dict())
    state["model.1.sub.0.RDB2.conv3.0.weight"] = torch.zeros(32, 7, 3, 3)
    with pytest.raises(ModelError, match=r"RDB2\.conv3.*7 channels"):
        read_network(save_pth(state, tmp_path / "bad.pth"))


def test_keys_the_architecture_does_not_use_are_refused(tmp_path: Path) -> None:
    """Extra keys mean a variant srd does not know: refused, not silently run without them."""
    cls = architecture("Compact").Compact
    state = dict(randomise(cls(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2), 1).state_dict())
    state["attention.weight"] = torch.zeros(8)
    with pytest.raises(ModelError, match=r"attention\.weight"):
        read_network(save_pth(state, tmp_path / "extra.pth"))


def _wrapped(wrap: Callable[[dict[str, Any]], Any], tmp_path: Path) -> Path:
    cls = architecture("Compact").Compact
    state = randomise(cls(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2), 1).state_dict()
    return save_pth(wrap(dict(state)), tmp_path / "wrapped.pth")


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {"params": s},
        lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
        lambda s: {"model": s, "optimizer": {"lr": 1e-4}, "epoch": 3},
        lambda s: {f"netG.{k}": v for k, v in s.items()},
    ],
    ids=["params", "state_dict-module", "model", "netG"],
)
def test_training_wrappers_are_unwrapped(tmp_path: Path, wrap: Callable[[dict[str, Any]], Any]) -> None:
    """params / state_dict / model wrappers and module. / netG. prefixes are undone before detection."""
    assert read_network(_wrapped(wrap, tmp_path)).arch == "Compact"


def test_tta_averages_the_eight_transforms_of_the_reference(tmp_path: Path) -> None:
    """With TTA, srd's output is the mean of the reference forward over the eight flips and rotations."""
    model = _esrgan((24, 24), seed=4, num_filters=8, num_blocks=1, scale=2)
    path = save_pth(model.state_dict(), tmp_path / "esrgan.pth")
    image = textured_image(24, 24)
    x = image.astype(np.float32) / 255
    outs = []
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(x[:, ::-1] if flip else x, k)
            y = np.rot90(forward_reflect(model, np.ascontiguousarray(t), 2, clamp=False), -k)
            outs.append(y[:, ::-1] if flip else y)
    expected = np.floor(np.clip(np.mean(outs, axis=0), 0, 1) * 255 + 0.5).astype(np.int16)
    got = Upscaler(path, scale=2, tta=True).upscale(image).astype(np.int16)
    assert np.abs(got - expected).max() <= 1


def test_alpha_and_gray_images_run_through_a_community_model(tmp_path: Path) -> None:
    """An RGBA image keeps its alpha (bicubic, as for Real-ESRGAN) and a gray one stays gray."""
    model = _esrgan(seed=6, num_filters=8, num_blocks=1, scale=2)
    up = Upscaler(save_pth(model.state_dict(), tmp_path / "esrgan.pth"), scale=2)
    rgba = np.dstack([textured_image(20, 30), np.full((20, 30), 77, np.uint8)])
    out = up.upscale(rgba)
    assert out.shape == (40, 60, 4)
    assert np.abs(out[..., 3].astype(int) - 77).max() <= 1
    assert up.upscale(textured_image(20, 30)[..., 0]).shape == (40, 60)


def test_the_catalog_names_every_community_architecture() -> None:
    """`srd models` lists, without importing JAX, exactly the architectures detection tries."""
    from srd.models.catalog import COMMUNITY_ARCHITECTURES
    from srd.models.community import ARCHITECTURES

    assert sorted(COMMUNITY_ARCHITECTURES) == sorted(a.name for a in ARCHITECTURES)
