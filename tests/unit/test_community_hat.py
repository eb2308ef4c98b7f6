"""HAT community models against spandrel's own HAT: the hyperparameters spandrel detects, and the 8-bit
output against the reference forward on the same image, for several window and overlap sizes, scales and
residual connections; detection beside SwinIR, and the files srd refuses."""

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
from srd.models.community import ARCHITECTURES, detect_network, read_network
from srd.models.community.swinir import SwinIR

torch = pytest.importorskip("torch")
# spandrel's HAT builds its indices with torch.meshgrid and no `indexing`, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")


def _model(size: tuple[int, int], seed: int, **kwargs: Any) -> Any:
    """A random spandrel HAT, calibrated (unsaturated) on the textured image. Each block's channel attention
    branch is scaled up 100 times: HAT weighs it by conv_scale 0.01, which with random weights would leave
    it too small for a comparison to see."""
    model = randomise(architecture("HAT").HAT(**kwargs), seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".conv_block.cab.2." in name:
                p.mul_(100.0)
    return calibrate(model, "conv_last", textured_image(*size).astype(np.float32) / 255)


def _compare(model: Any, path: Path, scale: int, size: tuple[int, int]) -> None:
    """srd's output equals the reference forward on the 10-px-mirrored image within 1 of 255."""
    match_reference(model, path, scale, textured_image(*size))


def _spandrel_hyperparameters(state: dict[str, Any]) -> dict[str, Any]:
    """What spandrel's own HAT detection reads from the state dict."""
    return dict(architecture("HAT").HATArch().load(dict(state)).model.hyperparameters)


_SMALL = {
    "embed_dim": 24,
    "depths": [2, 2],
    "num_heads": [2, 3],
    "window_size": 4,
    "compress_ratio": 3,
    "squeeze_factor": 8,
    "overlap_ratio": 0.5,
    "mlp_ratio": 2.0,
    "num_feat": 16,
}

# (constructor arguments, scale, image size); with 20 px of context no image is a multiple of its window,
# so the mirror padding to it is exercised, and a bucketed edge tile's extent too.
_CASES = {
    "2x-window4": ({**_SMALL, "upscale": 2}, 2, (37, 45)),
    "4x-window8-overlap0.25": (
        {**_SMALL, "depths": [2], "num_heads": [3], "window_size": 8, "overlap_ratio": 0.25, "upscale": 4},
        4,
        (22, 26),
    ),
    "3x-identity-overlap1": (
        {**_SMALL, "embed_dim": 30, "overlap_ratio": 1.0, "resi_connection": "identity", "upscale": 3},
        3,
        (25, 21),
    ),
    # overlap 2 of window 6: no ratio from spandrel's list gives it, so its general formula does
    "1x-window6-overlap2": (
        {**_SMALL, "depths": [3], "num_heads": [3], "window_size": 6, "overlap_ratio": 1 / 3}
        | {"compress_ratio": 4, "squeeze_factor": 6, "upscale": 1},
        1,
        (33, 30),
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_hat_matches_spandrel(tmp_path: Path, case: str) -> None:
    """Each window and overlap size, scale and residual connection equals spandrel's forward, and srd
    detects what spandrel detects."""
    kwargs, scale, size = _CASES[case]
    model = _model(size, seed=len(case), **kwargs)
    state = dict(model.state_dict())
    safetensors = case.startswith("4x")
    save = save_safetensors if safetensors else save_pth
    path = save(state, tmp_path / ("m.safetensors" if safetensors else "m.pth"))
    net = read_network(path)
    assert (net.arch, net.scale, net.in_channels, net.out_channels) == ("HAT", scale, 3, 3)
    found = dict(net.hyperparameters)
    expected = _spandrel_hyperparameters(state)
    names = ("embed_dim", "depths", "num_heads", "window_size", "compress_ratio", "squeeze_factor")
    names += ("conv_scale", "overlap_ratio", "mlp_ratio", "upsampler", "resi_connection", "num_feat")
    for name in (*names, "img_range"):
        assert found[name] == str(expected[name]), name
    assert expected["upscale"] == scale
    _compare(model, path, scale, size)


def test_hat_is_not_mistaken_for_swinir() -> None:
    """A HAT state dict (conv_after_body, blocks with conv_block, overlap_attn) is HAT's, which is tried
    before SwinIR, whose matcher does not claim it either; a SwinIR state dict is not HAT's."""
    hat = {k: v.numpy() for k, v in randomise(architecture("HAT").HAT(**_SMALL), 0).state_dict().items()}
    assert "conv_after_body.weight" in hat
    assert not SwinIR().matches(hat)
    assert detect_network(hat).arch == "HAT"
    names = [a.name for a in ARCHITECTURES]
    assert names.index("HAT") < names.index("SwinIR")
    swinir_model = architecture("SwinIR").SwinIR(embed_dim=16, depths=[2], num_heads=[2], window_size=4)
    swinir = {k: v.numpy() for k, v in swinir_model.state_dict().items()}
    assert not ARCHITECTURES[names.index("HAT")].matches(swinir)
    assert detect_network(swinir).arch == "SwinIR"


def test_hat_image_of_several_tiles_keeps_its_size(tmp_path: Path) -> None:
    """An image cut into several tiles, a partial edge tile among them, comes out at scale times its size
    with every pixel computed (attention and channel attention see the whole tile, so each tile is its
    own reference image and only the whole is checked here)."""
    model = _model((40, 40), seed=9, **_SMALL, upscale=2)
    path = save_pth(model.state_dict(), tmp_path / "m.pth")
    got = Upscaler(path, scale=2, tile=32).upscale(textured_image(40, 70))
    assert got.shape == (80, 140, 3)
    assert 20 < float(got.mean()) < 235


def test_hat_odd_overlap_is_refused(tmp_path: Path) -> None:
    """An overlapping window an odd number of pixels larger than the window (which spandrel builds but
    whose forward cannot run: its unfold gives fewer key windows than query windows) is refused."""
    model = randomise(architecture("HAT").HAT(**{**_SMALL, "window_size": 6, "overlap_ratio": 0.5}), 1)
    with pytest.raises(ModelError, match=r"overlapping window of 9"):
        read_network(save_pth(dict(model.state_dict()), tmp_path / "m.pth"))


def test_hat_variant_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    """An absolute position embedding (ape) is a variant srd refuses rather than runs without it."""
    model = randomise(architecture("HAT").HAT(**_SMALL, ape=True), 1)
    with pytest.raises(ModelError, match=r"absolute_pos_embed"):
        read_network(save_pth(dict(model.state_dict()), tmp_path / "m.pth"))
