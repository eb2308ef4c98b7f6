"""An independent float64 numpy implementation of waifu2x's sequential networks, from the published
algorithm (valid 3x3 convolutions, leaky ReLU 0.1 between layers, Torch's SpatialFullConvolution),
reading the JSON layer list directly. Used only by the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def conv_valid(x: F64, w: F64, b: F64) -> F64:
    """Cross-correlation, no padding: x (C_in, H, W), w (C_out, C_in, kh, kw)."""
    kh, kw = w.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # C,H',W',kh,kw
    return np.einsum("chwij,ocij->ohw", windows, w) + b[:, None, None]


def full_conv(x: F64, w: F64, b: F64, stride: int, pad: int) -> F64:
    """Torch SpatialFullConvolution: scatter each input pixel times the kernel; w (C_in, C_out, kh, kw)."""
    _, h, wd = x.shape
    kh, kw = w.shape[2:]
    out = np.zeros((w.shape[1], (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for i in range(kh):
        for j in range(kw):
            out[:, i : i + stride * h : stride, j : j + stride * wd : stride] += np.einsum(
                "chw,co->ohw", x, w[:, :, i, j]
            )
    out = out[:, pad : out.shape[1] - pad, pad : out.shape[2] - pad]
    return out + b[:, None, None]


def run_json_layers(layers: list[dict[str, Any]], x: F64) -> F64:
    """Run the layer list of a waifu2x JSON model on x (C, H, W) in float64."""
    for index, layer in enumerate(layers):
        n_in, n_out = layer["nInputPlane"], layer["nOutputPlane"]
        kh, kw = layer["kH"], layer["kW"]
        b = np.asarray(layer["bias"], np.float64)
        if layer["class_name"] == "nn.SpatialFullConvolution":
            w = np.asarray(layer["weight"], np.float64).reshape(n_in, n_out, kh, kw)
            x = full_conv(x, w, b, layer["dW"], layer["padW"])
        else:
            w = np.asarray(layer["weight"], np.float64).reshape(n_out, n_in, kh, kw)
            x = conv_valid(x, w, b)
        if index < len(layers) - 1:
            x = np.where(x > 0, x, 0.1 * x)
    return x
