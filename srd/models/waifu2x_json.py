"""Load waifu2x's own JSON export format (tools/export_model.lua) into ops and weights.

The file is a list of convolution layers; leaky ReLU 0.1 follows every layer but the last. Older files
have no `model_config`: the architecture is then inferred from the layer types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from srd.errors import ModelError
from srd.nn.graph import Weights
from srd.nn.ops import Activation, Conv, Op

_CONV = ("nn.SpatialConvolutionMM", "nn.SpatialConvolution", "cudnn.SpatialConvolution")
_DECONV = ("nn.SpatialFullConvolution", "cudnn.SpatialFullConvolution")
_LEAKY_SLOPE = 0.1


@dataclass(frozen=True)
class JsonModel:
    """Ops and weights of a JSON model plus the architecture its model_config (or its layers) name."""

    arch: str
    ops: tuple[Op, ...]
    weights: Weights
    in_channels: int


def _array(values: Any, shape: tuple[int, ...], what: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    arr = np.asarray(values, dtype=np.float32)
    if arr.size != int(np.prod(shape)):
        raise ModelError(f"{what}: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _layer_to_conv(index: int, layer: dict[str, Any], last: bool) -> tuple[Conv, dict[str, Any]]:
    cls = layer.get("class_name")
    name = f"layer{index}"
    try:
        kw, kh, dw, dh = int(layer["kW"]), int(layer["kH"]), int(layer["dW"]), int(layer["dH"])
        pw, ph = int(layer.get("padW", 0)), int(layer.get("padH", 0))
        n_in, n_out = int(layer["nInputPlane"]), int(layer["nOutputPlane"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"JSON layer {index}: missing or bad field {exc}") from exc
    if cls in _CONV:
        w = _array(layer["weight"], (n_out, n_in, kh, kw), f"JSON layer {index} weight")
        hwio = w.transpose(2, 3, 1, 0)
        transposed = False
    elif cls in _DECONV:
        if int(layer.get("adjW", 0)) or int(layer.get("adjH", 0)):
            raise ModelError(f"JSON layer {index}: SpatialFullConvolution with adjW/adjH is not supported")
        # Torch stores [in][out][kh][kw]; the transposed conv runs as a conv with the flipped kernel.
        w = _array(layer["weight"], (n_in, n_out, kh, kw), f"JSON layer {index} weight")
        hwio = w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)
        transposed = True
    else:
        raise ModelError(f"JSON layer {index}: unsupported layer class {cls!r}")
    bias = _array(layer["bias"], (n_out,), f"JSON layer {index} bias")
    activation = Activation.NONE if last else Activation.LEAKY_RELU
    slope = 0.0 if last else _LEAKY_SLOPE
    src = "input" if index == 0 else f"blob{index - 1}"
    op = Conv(name, src, f"blob{index}", (kh, kw), (dh, dw), (ph, ph, pw, pw), activation, slope, transposed)
    return op, {"w": np.ascontiguousarray(hwio), "b": bias}


def _infer_arch(layers: list[dict[str, Any]]) -> str:
    if layers[-1].get("class_name") in _DECONV:
        return "upconv_7" if len(layers) == 7 else f"upconv_{len(layers)}"
    return "vgg_7" if len(layers) == 7 else f"vgg_{len(layers)}"


def parse_json_model(text: str | bytes) -> JsonModel:
    """Parse the text of a waifu2x JSON model file."""
    try:
        layers = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"not a waifu2x JSON model: {exc}") from exc
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        raise ModelError("not a waifu2x JSON model: expected a non-empty list of layer objects")
    config = layers[0].get("model_config") or {}
    ops: list[Op] = []
    weights: Weights = {}
    for i, layer in enumerate(layers):
        op, entry = _layer_to_conv(i, layer, last=i == len(layers) - 1)
        ops.append(op)
        weights[op.name] = entry
    in_channels = int(layers[0]["nInputPlane"])
    if in_channels not in (1, 3):
        raise ModelError(f"JSON model takes {in_channels} channels; only 1 (Y) and 3 (RGB) are supported")
    arch = str(config.get("arch_name") or _infer_arch(layers))
    return JsonModel(arch, tuple(ops), weights, in_channels)
