"""SwinIR community models against spandrel's own SwinIR: every upsampler and residual connection, the
hyperparameters spandrel detects, and the 8-bit output against the reference forward on the same image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from srd.errors import ModelError
from srd.models.community import read_network

torch = pytest.importorskip("torch")
# spandrel's WindowAttention builds its index with torch.meshgrid and no `indexing`, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")


def _model(last: str, size: tuple[int, int], seed: int, **kwargs: Any) -> Any:
    """A random spandrel SwinIR with its last layer `last` calibrated (unsaturated) on the textured image."""
    model = randomise(architecture("SwinIR").SwinIR(**kwargs), seed)
    return calibrate(model, last, textured_image(*size).astype(np.float32) / 255)


def _compare(model: Any, path: Path, scale: int, size: tuple[int, int]) -> None:
    """srd's output equals the reference forward on the 10-px-mirrored image within 1 of 255."""
    match_reference(model, path, scale, textured_image(*size))


def _spandrel_hyperparameters(state: dict[str, Any]) -> dict[str, Any]:
    """What spandrel's own SwinIR detection reads from the state dict."""
    return dict(architecture("SwinIR").SwinIRArch().load(dict(state)).model.hyperparameters)


_SMALL = {"embed_dim": 16, "depths": [2, 2], "num_heads": [2, 2], "window_size": 8, "img_size": 32}

# (constructor arguments, last linear layer, scale, image size); 37 x 45 + 20 px of context is no multiple
# of the window, so the mirror padding to it is exercised, and a bucketed edge tile's extent too.
_CASES = {
    "pixelshuffle-2x": ({**_SMALL, "upscale": 2, "upsampler": "pixelshuffle"}, "conv_last", 2, (37, 45)),
    "pixelshuffle-3x-window4": (
        {**_SMALL, "embed_dim": 12, "window_size": 4, "img_size": 16, "mlp_ratio": 2.0, "upscale": 3}
        | {"upsampler": "pixelshuffle"},
        "conv_last",
        3,
        (30, 26),
    ),
    "direct-3x": ({**_SMALL, "upscale": 3, "upsampler": "pixelshuffledirect"}, "upsample.0", 3, (37, 45)),
    "nearest-4x-3conv": (
        {**_SMALL, "upscale": 4, "upsampler": "nearest+conv", "resi_connection": "3conv"},
        "conv_last",
        4,
        (30, 33),
    ),
    "restoration-1x-window7": (
        {**_SMALL, "embed_dim": 12, "window_size": 7, "img_size": 28, "upscale": 1, "img_range": 255.0}
        | {"upsampler": ""},
        "conv_last",
        1,
        (37, 45),
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_swinir_matches_spandrel(tmp_path: Path, case: str) -> None:
    """Each upsampler and residual connection, any window size, equals spandrel's forward, and srd
    detects what spandrel detects."""
    kwargs, last, scale, size = _CASES[case]
    model = _model(last, size, seed=len(case), **kwargs)
    state = dict(model.state_dict())
    save = save_safetensors if case == "direct-3x" else save_pth
    path = save(state, tmp_path / ("m.safetensors" if case == "direct-3x" else "m.pth"))
    net = read_network(path)
    assert (net.arch, net.scale, net.in_channels, net.out_channels) == ("SwinIR", scale, 3, 3)
    found = dict(net.hyperparameters)
    expected = _spandrel_hyperparameters(state)
    for name in ("embed_dim", "depths", "num_heads", "window_size", "img_size", "mlp_ratio", "img_range"):
        assert found[name] == str(expected[name]), name
    assert found["upsampler"] == (expected["upsampler"] or "none")
    assert found["resi_connection"] == expected["resi_connection"]
    assert expected["upscale"] == scale
    _compare(model, path, scale, size)


def test_swinir_start_unshuffle(tmp_path: Path) -> None:
    """A pixel-unshuffled input (`conv_first.1`, spandrel's start_unshuffle) is detected and runs as
    spandrel's forward on an image whose padded size needs no padding to the window there."""
    kwargs = {**_SMALL, "depths": [2], "num_heads": [2], "upscale": 4, "upsampler": "pixelshuffle"}
    model = _model("conv_last", (28, 44), seed=3, start_unshuffle=2, **kwargs)
    state = {k.replace("conv_first.", "conv_first.1."): v for k, v in model.state_dict().items()}
    assert _spandrel_hyperparameters(state)["start_unshuffle"] == 2
    net = read_network(save_pth(state, tmp_path / "m.pth"))
    assert (net.scale, dict(net.hyperparameters)["start_unshuffle"]) == (2, "2")
    _compare(model, tmp_path / "m.pth", 2, (28, 44))


def test_swinir_image_of_several_tiles_keeps_its_size(tmp_path: Path) -> None:
    """An image cut into several tiles, a partial edge tile among them, comes out at scale times its
    size with every pixel computed (window attention depends on where a tile lies, so each tile is its
    own reference image and only the whole is checked here)."""
    model = _model("upsample.0", (40, 40), seed=9, **_SMALL, upscale=2, upsampler="pixelshuffledirect")
    path = save_pth(model.state_dict(), tmp_path / "m.pth")
    got = Upscaler(path, scale=2, tile=32).upscale(textured_image(40, 70))
    assert got.shape == (80, 140, 3)
    assert 20 < float(got.mean()) < 235


def test_swinir_variant_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    """An absolute position embedding (ape, which spandrel does not build) is a variant srd refuses
    rather than runs without it."""
    model = randomise(
        architecture("SwinIR").SwinIR(**_SMALL, ape=True, upscale=2, upsampler="pixelshuffle"), 1
    )
    with pytest.raises(ModelError, match=r"absolute_pos_embed"):
        read_network(save_pth(dict(model.state_dict()), tmp_path / "m.pth"))
