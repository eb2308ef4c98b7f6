"""RealPLKSR community models (GroupNorm, layer-norm and DySample variants) against spandrel's own
PyTorch class: detection of the hyperparameters and the 8-bit output of srd's graph against the reference
forward on the same mirrored image; and the valid-extent handling of its tile-dependent ops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from support.spandrel_ref import (
    architecture,
    calibrate,
    match_reference,
    randomise,
    save_pth,
    save_safetensors,
    textured_image,
)

from srd.errors import ModelError
from srd.models.community import detect_network, read_network
from srd.nn.graph import NetworkSpec
from srd.nn.network import apply_network

torch = pytest.importorskip("torch")

_SIZE = (36, 44)  # one tile: srd pads it to a 48 px bucket, so the valid extents are exercised


def _model(seed: int = 0, **kwargs: Any) -> Any:
    """spandrel's RealPLKSR with random weights, calibrated on `textured_image(*_SIZE)` so the output is not
    saturated and the blocks' share of it is large: the last convolution (twice with DySample, whose
    offsets depend on it, to settle); with DySample's end convolution, the last convolution's output is
    made large beside the input added to it first, then the end convolution (which the output is linear
    in) brings the output into range."""
    model = randomise(architecture("PLKSR").RealPLKSR(**kwargs), seed, 0.5)
    image = textured_image(*_SIZE).astype(np.float32) / 255
    last = f"feats.{len(model.feats) - 1}"
    end_conv = kwargs.get("dysample") and kwargs.get("upscaling_factor", 4) != 1
    for _ in range(2 if kwargs.get("dysample") else 1):
        model = calibrate(model, last, image, spread=1.0 if end_conv else 0.2)
    return calibrate(model, "to_img.end_conv", image) if end_conv else model


def _compare(model: Any, path: Path, scale: int, **options: Any) -> None:
    """srd's output of the file equals the reference forward (mirrored 10 px context) within 1 of 255,
    almost everywhere exactly, and the reference is not saturated (so the comparison sees the network,
    not clipping)."""
    expected, got = match_reference(model, path, scale, textured_image(*_SIZE), **options)
    # Float rounding moves only values within about 1e-5 of a rounding boundary: a handful of pixels.
    # (An error such as GroupNorm's statistics over the whole padded tile moves a tenth of them.)
    assert np.mean(got != expected) < 1e-3


def _spandrel_detects(state: dict[str, Any]) -> tuple[int, list[str]]:
    """spandrel's own detection of a state dict: its scale and tags (dim, blocks, kernel, variants)."""
    descriptor = architecture("PLKSR").PLKSRArch().load(state)
    return int(descriptor.scale), list(descriptor.tags)


def _variant(id_: str, scale: int, **kwargs: Any) -> Any:
    """A test case: spandrel's RealPLKSR arguments for a small network (16 features, 2 blocks unless
    given) of `scale`."""
    return pytest.param({"dim": 16, "n_blocks": 2, "upscaling_factor": scale, **kwargs}, id=id_)


@pytest.mark.parametrize(
    "kwargs",
    [
        _variant("4x", 4),
        _variant("2x", 2, kernel_size=9),
        _variant("1x", 1, kernel_size=7),
        _variant("layer-norm-2x", 2, layer_norm=True),
        _variant("dysample-2x", 2, dysample=True, kernel_size=9),
        _variant("dysample-4x", 4, dysample=True),
        _variant("dysample-3x", 3, dysample=True, kernel_size=7),
        _variant("dysample-1x", 1, dysample=True, kernel_size=7),
        _variant("layer-norm-dysample-2x", 2, layer_norm=True, dysample=True),
        _variant("dim24-3blocks-k11-split0.5", 2, dim=24, n_blocks=3, kernel_size=11, split_ratio=0.5),
        _variant("no-attention-1block", 2, n_blocks=1, use_ea=False, kernel_size=5),
    ],
)
def test_realplksr_matches_spandrel(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    """Every RealPLKSR variant is detected with spandrel's hyperparameters and equals its forward."""
    scale = kwargs["upscaling_factor"]
    model = _model(seed=scale, **kwargs)
    state = dict(model.state_dict())
    path = save_pth(state, tmp_path / "realplksr.pth")
    net = read_network(path)
    params = dict(net.hyperparameters)
    dim, blocks = kwargs["dim"], kwargs["n_blocks"]
    kernel, split = kwargs.get("kernel_size", 17), kwargs.get("split_ratio", 0.25)
    assert (net.arch, net.scale, net.in_channels, net.out_channels) == ("RealPLKSR", scale, 3, 3)
    assert params == {
        "features": str(dim),
        "blocks": str(blocks),
        "kernel size": str(kernel),
        "split ratio": f"{int(dim * split) / dim:g}",
        "attention": str(kwargs.get("use_ea", True)),
        "layer norm": str(kwargs.get("layer_norm", False)),
        "DySample": str(kwargs.get("dysample", False)),
    }
    spandrel_scale, tags = _spandrel_detects(state)
    assert spandrel_scale == scale
    assert {f"{dim}dim", f"{blocks}nb", f"{kernel}ks"} <= set(tags)
    assert ("DySample" in tags) == kwargs.get("dysample", False)
    assert ("LayerNorm" in tags) == kwargs.get("layer_norm", False)
    _compare(model, path, scale)


def test_realplksr_safetensors(tmp_path: Path) -> None:
    """A .safetensors RealPLKSR (DySample's init_pos buffer included) loads and runs as the .pth does."""
    model = _model(seed=9, dim=16, n_blocks=2, upscaling_factor=2, dysample=True, kernel_size=7)
    path = save_safetensors(dict(model.state_dict()), tmp_path / "realplksr.safetensors")
    assert read_network(path).describe().startswith("RealPLKSR 2x (features 16, blocks 2")
    _compare(model, path, 2)


@pytest.mark.parametrize(
    ("kwargs", "tile_dependent"),
    [({}, True), ({"layer_norm": True}, False), ({"layer_norm": True, "dysample": True}, False)],
    ids=["group-norm", "layer-norm", "layer-norm-dysample"],
)
def test_group_norm_makes_the_network_tile_dependent(
    tmp_path: Path, kwargs: dict[str, Any], tile_dependent: bool
) -> None:
    """GroupNorm's statistics cover the whole tile (a global op); the layer-norm variant is per pixel."""
    model = randomise(architecture("PLKSR").RealPLKSR(dim=8, n_blocks=1, upscaling_factor=2, **kwargs), 1)
    net = read_network(save_pth(dict(model.state_dict()), tmp_path / "m.pth"))
    assert any(op.is_global for op in net.ops) == tile_dependent


@pytest.mark.parametrize("dysample", [False, True], ids=["pixel-shuffle", "dysample"])
def test_partial_tile_computes_the_smaller_tile(dysample: bool) -> None:
    """A tile padded to a larger shape (with anything past its valid extent) gives what the smaller tile
    alone gives over its area: GroupNorm's statistics and DySample's border follow the valid extent."""
    cls = architecture("PLKSR").RealPLKSR
    model = randomise(cls(dim=8, n_blocks=2, upscaling_factor=2, kernel_size=5, dysample=dysample), 4)
    net = detect_network({k: v.numpy() for k, v in model.state_dict().items()})
    spec = NetworkSpec(net.arch, net.ops, "input", net.output, 3, 3, net.scale, 0)
    weights = {name: {k: jnp.asarray(a) for k, a in layer.items()} for name, layer in net.weights.items()}
    rng = np.random.default_rng(0)
    small = rng.uniform(0, 1, (1, 21, 26, 3)).astype(np.float32)
    padded = rng.uniform(-50, 50, (1, 32, 32, 3)).astype(np.float32)
    padded[:, :21, :26] = small
    alone = np.asarray(apply_network(spec, weights, jnp.asarray(small)))
    valid = jnp.asarray([[21, 26]], jnp.int32)
    inside = np.asarray(apply_network(spec, weights, jnp.asarray(padded), valid=valid))[:, :42, :52]
    assert np.abs(inside - alone).max() < 1e-4 * max(1.0, float(np.abs(alone).max()))


def test_plain_plksr_is_not_taken_for_realplksr() -> None:
    """PLKSR (its "channe_mixer" keys and no norm) is another architecture: srd refuses it, naming RealPLKSR
    among those it knows, rather than reading it as one."""
    model = architecture("PLKSR").PLKSR(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=5)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    with pytest.raises(ModelError, match=r"not an architecture srd knows.*RealPLKSR"):
        detect_network(state)


def test_missing_norm_of_a_later_block_is_named(tmp_path: Path) -> None:
    """A block without the GroupNorm the first block has is a ModelError naming the missing key."""
    model = randomise(architecture("PLKSR").RealPLKSR(dim=8, n_blocks=2, upscaling_factor=2), 2)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("feats.2.norm.")}
    with pytest.raises(ModelError, match=r"feats\.2\.norm\.weight"):
        read_network(save_pth(state, tmp_path / "bad.pth"))
