"""spandrel's own architecture classes and PyTorch as the reference for srd's community models.

`import spandrel` imports every architecture it knows, two of which import torchvision; PyPI's torchvision
wheels are built against PyPI's CUDA torch and fail to import beside the CPU build the tests install. The
architecture modules srd compares against need neither, so this module imports them without running
spandrel's package __init__ (a package module whose search path is spandrel's own folder): the classes,
their detection code and their forward passes are spandrel's, unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

torch = pytest.importorskip("torch")


def _spandrel_root() -> Path:
    spec = importlib.util.find_spec("spandrel")
    if spec is None or spec.submodule_search_locations is None:
        pytest.skip("spandrel is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def architecture(name: str) -> Any:
    """spandrel.architectures.<name>, imported without spandrel's registry of every architecture."""
    if "spandrel" not in sys.modules:
        package = types.ModuleType("spandrel")
        package.__path__ = [str(_spandrel_root())]
        sys.modules["spandrel"] = package
    return importlib.import_module(f"spandrel.architectures.{name}")


def randomise(model: Any, seed: int, scale: float = 0.5) -> Any:
    """`model` in eval mode with every parameter drawn at random (small enough that deep networks stay in
    a useful range), so a comparison exercises every weight."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = max(1, p[0].numel()) if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) * scale / np.sqrt(fan_in))
    return model.eval()


def calibrate(model: Any, last: str, image: npt.NDArray[np.float32], spread: float = 0.2) -> Any:
    """Rescale the convolution `last` (whose output the model's output depends on linearly: its last
    layer, before any pixel shuffle and skip addition) so that on `image` the output has mean 0.5 and its
    share from that layer a standard deviation of `spread`: random deep networks otherwise saturate, and
    a clipped comparison would not see the network."""
    layer = model.get_submodule(last)
    seen: dict[str, Any] = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("y", o))
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        z = model(x)
        handle.remove()
        y = seen["y"]
        a = spread / max(float(y.std()), 1e-6)
        # z is linear in y: z' = z + (a - 1) * y + c, where the shift c reaches every output equally.
        mean_after = float(z.mean()) + (a - 1) * float(y.mean())
        layer.weight.mul_(a)
        layer.bias.mul_(a).add_(0.5 - mean_after)
    return model


def forward_reflect(
    model: Any, image: npt.NDArray[np.float32], scale: int, pad: int = 10, *, clamp: bool = True
) -> npt.NDArray[np.float32]:
    """What srd computes for a community model on an image that fits one tile, written from the
    definition: the image (H x W x C, 0..1) mirrored by `pad` pixels a side (ncnn border type 2, numpy's
    "reflect"), the model's forward, the result cropped by pad * scale, clamped to 0..1."""
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
        y = model(x)[0].numpy().transpose(1, 2, 0)
    c = pad * scale
    y = y[c : y.shape[0] - c, c : y.shape[1] - c]
    return (np.clip(y, 0.0, 1.0) if clamp else y).astype(np.float32)


def save_pth(state: dict[str, Any], path: Path, *, legacy: bool = False) -> Path:
    """torch.save of a state dict (the zip format, or the pre-1.6 one with `legacy`)."""
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def save_safetensors(state: dict[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def textured_image(height: int, width: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A smooth image with texture (gradients plus noise), so the networks see structure, not only noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, 0.5 + 0.4 * np.sin((xx + yy) / 5.0)], axis=-1)
    return np.clip((base + rng.normal(0, 0.08, base.shape)) * 255 + 0.5, 0, 255).astype(np.uint8)


def match_reference(
    model: Any, path: Path, scale: int, image: npt.NDArray[np.uint8], **options: Any
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """srd's output of the model file `path` against `model`'s forward on the image with srd's mirrored
    10 px context: the reference not saturated (so the comparison sees the network, not clipping), the
    same shape, every 8-bit pixel within 1. Returns (expected, got) for further checks."""
    from srd.api import Upscaler

    reference = forward_reflect(model, image.astype(np.float32) / 255, scale)
    inside = np.mean((reference > 0.01) & (reference < 0.99))
    assert inside > 0.5, f"the reference output is saturated ({inside:.0%} inside 0..1): pick other weights"
    expected = np.floor(reference * 255 + 0.5).astype(np.int16)
    got = Upscaler(path, scale=scale, **options).upscale(image).astype(np.int16)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1
    return expected, got
