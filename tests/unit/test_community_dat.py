"""DAT community models against spandrel's own DAT: both upsamplers and residual connections, square and
rectangular windows, the hyperparameters spandrel detects, and the 8-bit output against the reference
forward on the same image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
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

from srd.api import Upscaler
from srd.cli.inspect import inspect_command
from srd.errors import ModelError
from srd.models.community import ARCHITECTURES, detect_network, read_network
from srd.models.community.dat import DAT
from srd.models.community.swinir import SwinIR
from srd.nn.graph import NetworkSpec
from srd.nn.network import apply_network

torch = pytest.importorskip("torch")
# spandrel's Spatial_Attention builds its tables with torch.meshgrid and no `indexing`, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")


def _model(last: str, size: tuple[int, int], seed: int, **kwargs: Any) -> Any:
    """A random spandrel DAT with its last layer `last` calibrated (unsaturated) on the textured image."""
    model = randomise(architecture("DAT").DAT(**kwargs), seed)
    return calibrate(model, last, textured_image(*size).astype(np.float32) / 255)


def _compare(model: Any, path: Path, scale: int, size: tuple[int, int]) -> None:
    """srd's output equals the reference forward on the 10-px-mirrored image within 1 of 255."""
    match_reference(model, path, scale, textured_image(*size))


def _spandrel_hyperparameters(state: dict[str, Any]) -> dict[str, Any]:
    """What spandrel's own DAT detection reads from the state dict."""
    return dict(architecture("DAT").DATArch().load(dict(state)).model.hyperparameters)


# (constructor arguments, last layer, scale, image size). Each image plus 20 px of context is no multiple
# of the larger window side, so the attention's zero padding to it is exercised. Shifted blocks: the first
# block of odd groups, the third of even ones.
_CASES = {
    "pixelshuffle-2x": (
        {"embed_dim": 32, "depth": [2, 2], "num_heads": [2, 4], "split_size": [2, 4]}
        | {"expansion_factor": 2.0, "upscale": 2, "upsampler": "pixelshuffle"},
        "conv_last",
        2,
        (37, 45),
    ),
    "direct-4x-3conv-no-qkv-bias": (
        {"embed_dim": 64, "depth": [3], "num_heads": [4], "split_size": [4, 8], "expansion_factor": 1.5}
        | {"qkv_bias": False, "upscale": 4, "upsampler": "pixelshuffledirect", "resi_connection": "3conv"},
        "upsample.0",
        4,
        (30, 33),
    ),
    "pixelshuffle-3x-square-one-block-groups": (
        {"embed_dim": 48, "depth": [1, 1], "num_heads": [4, 2], "split_size": [4, 4]}
        | {"expansion_factor": 2.0, "upscale": 3, "upsampler": "pixelshuffle"},
        "conv_last",
        3,
        (26, 31),
    ),
    "direct-2x-3conv": (
        {"embed_dim": 32, "depth": [4, 1], "num_heads": [2, 2], "split_size": [2, 8], "img_size": 16}
        | {"expansion_factor": 2.0, "upscale": 2, "upsampler": "pixelshuffledirect"}
        | {"resi_connection": "3conv"},
        "upsample.0",
        2,
        (33, 29),
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_dat_matches_spandrel(tmp_path: Path, case: str) -> None:
    """Each upsampler and residual connection, square and rectangular windows, equals spandrel's forward,
    and srd detects what spandrel detects."""
    kwargs, last, scale, size = _CASES[case]
    model = _model(last, size, seed=len(case), **kwargs)
    state = dict(model.state_dict())
    safetensors = case.startswith("direct-4x")
    path = (save_safetensors if safetensors else save_pth)(
        state, tmp_path / ("m.safetensors" if safetensors else "m.pth")
    )
    net = read_network(path)
    assert (net.arch, net.scale, net.in_channels, net.out_channels) == ("DAT", scale, 3, 3)
    found = dict(net.hyperparameters)
    expected = _spandrel_hyperparameters(state)
    for name in ("embed_dim", "depth", "num_heads", "split_size", "expansion_factor", "qkv_bias"):
        assert found[name] == str(expected[name]), name
    for name in ("upsampler", "resi_connection", "img_size", "img_range"):
        assert found[name] == str(expected[name]), name
    assert expected["upscale"] == scale
    _compare(model, path, scale, size)


def test_dat_is_not_swinir() -> None:
    """A DAT state dict is DAT's alone (SwinIR's and HAT's matchers refuse it), and SwinIR's and HAT's
    are not DAT's."""
    dat = dict(architecture("DAT").DAT(embed_dim=32, depth=[2], num_heads=[2]).state_dict())
    window = {"embed_dim": 24, "depths": [2], "num_heads": [2], "window_size": 8, "img_size": 32}
    swinir = dict(architecture("SwinIR").SwinIR(**window).state_dict())
    hat = dict(architecture("HAT").HAT(**window, compress_ratio=3, squeeze_factor=8, upscale=2).state_dict())
    assert [a.name for a in ARCHITECTURES if a.matches(dat)] == ["DAT"]
    assert SwinIR().matches(swinir) and not DAT().matches(swinir) and not DAT().matches(hat)
    assert detect_network({k: v.numpy() for k, v in dat.items()}).arch == "DAT"


def test_dat_image_of_several_tiles_keeps_its_size(tmp_path: Path) -> None:
    """An image cut into several tiles, a partial edge tile among them, comes out at scale times its
    size with every pixel computed (the channel attention sees the whole tile, so each tile is its own
    reference image and only the whole is checked here)."""
    kwargs = {"embed_dim": 32, "depth": [2], "num_heads": [2], "split_size": [2, 4], "expansion_factor": 2.0}
    model = _model("upsample.0", (40, 40), seed=9, **kwargs, upscale=2, upsampler="pixelshuffledirect")
    path = save_pth(model.state_dict(), tmp_path / "m.pth")
    got = Upscaler(path, scale=2, tile=32).upscale(textured_image(40, 70))
    assert got.shape == (80, 140, 3)
    assert 20 < float(got.mean()) < 235


def test_dat_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    """A key DAT does not use (a variant srd does not know) is refused rather than run without it."""
    state = dict(randomise(architecture("DAT").DAT(embed_dim=32, depth=[2], num_heads=[2]), 0).state_dict())
    state["layers.0.blocks.0.attn.extra.weight"] = torch.zeros(4)
    with pytest.raises(ModelError, match=r"extra\.weight"):
        read_network(save_pth(state, tmp_path / "m.pth"))


def test_partial_tiles_compute_the_smaller_tiles() -> None:
    """Tiles padded to one larger shape (anything past their valid extents) give what each smaller tile
    alone gives over its area: the attention's padding, shifts and masks, the channel attention's sums,
    the gates' averages and the depthwise convolutions' borders follow each sample's extent."""
    kwargs = {"embed_dim": 32, "depth": [2, 1], "num_heads": [2, 2], "split_size": [2, 8]}
    model = randomise(architecture("DAT").DAT(**kwargs, upscale=2, upsampler="pixelshuffledirect"), 5)
    net = detect_network({k: v.numpy() for k, v in model.state_dict().items()})
    spec = NetworkSpec(net.arch, net.ops, "input", net.output, 3, 3, net.scale, 0)
    weights = {name: {k: jnp.asarray(a) for k, a in layer.items()} for name, layer in net.weights.items()}
    rng = np.random.default_rng(0)
    sizes = [(21, 26), (30, 17)]
    padded = rng.uniform(-50, 50, (2, 33, 35, 3)).astype(np.float32)
    smalls = [rng.uniform(0, 1, (1, h, w, 3)).astype(np.float32) for h, w in sizes]
    for i, (small, (h, w)) in enumerate(zip(smalls, sizes, strict=True)):
        padded[i, :h, :w] = small[0]
    run = jax.jit(lambda x, valid: apply_network(spec, weights, x, valid=valid))
    both = np.asarray(run(jnp.asarray(padded), jnp.asarray(sizes, jnp.int32)))
    for i, (small, (h, w)) in enumerate(zip(smalls, sizes, strict=True)):
        alone = np.asarray(run(jnp.asarray(small), jnp.asarray([[h, w]], jnp.int32)))[0]
        inside = both[i, : 2 * h, : 2 * w]
        assert np.abs(inside - alone).max() < 1e-4 * max(1.0, float(np.abs(alone).max())), (h, w)


def test_inspect_names_the_hyperparameters_and_counts_the_attention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`srd models --inspect` of a DAT file prints its hyperparameters in one column and a cost that
    counts the linear layers and attention products by hand: per input pixel, conv_first 9*3*32, the
    spatial block 32*96 + 32*32 (qkv, proj) + 2 * 2*8*16 (two branches of 8-pixel windows of 16
    channels) + 32*2 + 2 (spatial gate) + 32*64 + 32*32 (SGFN), the channel block the same linear
    layers + 2 * 2*16*16 (2 heads of 16 channels) + 66, the group's and conv_after_body's 9*32*32 each
    and upsample.0's 9*32*12 multiply-adds, over 4 output pixels."""
    kwargs = {"embed_dim": 32, "depth": [2], "num_heads": [2], "split_size": [2, 4], "expansion_factor": 2.0}
    model = randomise(architecture("DAT").DAT(**kwargs, upscale=2, upsampler="pixelshuffledirect"), 0)
    assert inspect_command(save_pth(model.state_dict(), tmp_path / "m.pth")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "architecture  DAT" in lines and "  expansion_factor 2.0" in lines
    assert "  resi_connection  1conv" in lines and "  split_size       [2, 4]" in lines
    spatial = 32 * 96 + 32 * 32 + 2 * 2 * 8 * 16 + 32 * 2 + 2 + 32 * 64 + 32 * 32
    channel = 32 * 96 + 32 * 32 + 2 * 2 * 16 * 16 + 32 * 2 + 2 + 32 * 64 + 32 * 32
    macs = 9 * 3 * 32 + spatial + channel + 2 * 9 * 32 * 32 + 9 * 32 * 12
    gflop = float(next(line for line in lines if line.startswith("GFLOP/Mpx")).split()[1])
    assert gflop == pytest.approx(2 * macs / 4 / 1e3, rel=0.01)
