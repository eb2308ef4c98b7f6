"""The same networks as srd, in PyTorch: a small `torch.nn.Module` that runs one of srd's loaded graphs
(srd.models.load_step: the same ncnn weights, read by srd's own loader) with torch's own layers
(conv2d, conv_transpose2d, leaky_relu, linear, interpolate, cat), NCHW, so cuDNN runs it on a GPU.

It is the PyTorch side of bench/gpu_bench.py (srd against PyTorch on one GPU, same weights) and of
tests/unit/test_torch_reference.py, which checks on the CPU that it computes what srd's network computes.
It covers the ops of upconv7, cunet, Real-CUGAN and Real-ESRGAN (every op srd's graph can hold except
PReLU and bicubic Interp); the tiles it runs are whole (no partial edge extents), as a PyTorch upscaler's
are. torch is imported by this module only: srd never depends on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from srd.nn.graph import NetworkSpec, Weights
from srd.nn.ops import (
    Activation,
    BinaryKind,
    BinaryOp,
    ChannelScale,
    Concat,
    Conv,
    Crop,
    CropLike,
    Dense,
    Eltwise,
    EltwiseOp,
    GlobalAvgPool,
    Interp,
    Op,
    ResizeKind,
)

Tensors = Sequence[torch.Tensor]
_NHWC_TO_NCHW = {1: 2, 2: 3, 3: 1}  # srd's blob axes (NHWC) -> torch's (NCHW)


def _activation(kind: Activation, slope: float) -> Callable[[torch.Tensor], torch.Tensor]:
    if kind is Activation.NONE:
        return lambda x: x
    if kind is Activation.RELU:
        return functional.relu
    if kind is Activation.LEAKY_RELU:
        return lambda x: functional.leaky_relu(x, slope)
    if kind is Activation.SIGMOID:
        return torch.sigmoid
    raise AssertionError(kind)


class ConvLayer(nn.Module):
    """srd's Conv (HWIO weights; transposed ones stored flipped) as torch's conv2d or conv_transpose2d."""

    def __init__(self, op: Conv, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        w = np.asarray(weights["w"], np.float32)
        if op.transposed:
            # srd stores it flipped (a conv of the dilated input); torch takes it as written: (I, O, kh, kw).
            kernel = np.ascontiguousarray(w[::-1, ::-1].transpose(2, 3, 0, 1))
        else:
            kernel = np.ascontiguousarray(w.transpose(3, 2, 0, 1))  # (O, I, kh, kw)
        self.weight = nn.Parameter(torch.from_numpy(kernel), requires_grad=False)
        bias = weights.get("b")
        self.bias = None if bias is None else nn.Parameter(torch.from_numpy(np.asarray(bias)), False)
        self.op = op
        self.act = _activation(op.activation, op.slope)
        top, bottom, left, right = op.pads
        self.symmetric = top == bottom and left == right
        self.padding = (top, left) if self.symmetric else (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = self.op
        top, bottom, left, right = op.pads
        if op.transposed:
            y = functional.conv_transpose2d(x, self.weight, self.bias, op.stride, self.padding)
            if not self.symmetric:
                y = y[:, :, top : y.shape[2] - bottom, left : y.shape[3] - right]
        else:
            if not self.symmetric:
                x = functional.pad(x, (left, right, top, bottom))
            y = functional.conv2d(x, self.weight, self.bias, op.stride, self.padding)
        return self.act(y)


class DenseLayer(nn.Module):
    """srd's Dense ((in, out) weights, NC activations) as torch's linear."""

    def __init__(self, op: Dense, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        w = np.ascontiguousarray(np.asarray(weights["w"], np.float32).T)
        self.weight = nn.Parameter(torch.from_numpy(w), requires_grad=False)
        bias = weights.get("b")
        self.bias = None if bias is None else nn.Parameter(torch.from_numpy(np.asarray(bias)), False)
        self.act = _activation(op.activation, op.slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(functional.linear(x, self.weight, self.bias))


def _per_channel(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ncnn's broadcast of a (B, C) vector over a (B, C, H, W) image blob."""
    if a.ndim == 4 and b.ndim == 2:
        b = b[:, :, None, None]
    elif a.ndim == 2 and b.ndim == 4:
        a = a[:, :, None, None]
    return a, b


_BINARY: dict[BinaryKind, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    BinaryKind.ADD: torch.add,
    BinaryKind.SUB: torch.sub,
    BinaryKind.MUL: torch.mul,
    BinaryKind.DIV: torch.div,
    BinaryKind.MAX: torch.maximum,
    BinaryKind.MIN: torch.minimum,
    BinaryKind.POW: torch.pow,
    BinaryKind.RSUB: lambda a, b: b - a,
    BinaryKind.RDIV: lambda a, b: b / a,
}


def _binary(op: BinaryOp, xs: Tensors) -> torch.Tensor:
    if len(xs) == 1:
        return _BINARY[op.kind](xs[0], torch.tensor(op.scalar, dtype=xs[0].dtype, device=xs[0].device))
    return _BINARY[op.kind](*_per_channel(xs[0], xs[1]))


def _eltwise(op: Eltwise, xs: Tensors) -> torch.Tensor:
    if op.op is EltwiseOp.SUM:
        coeffs = op.coeffs or (1.0,) * len(xs)
        acc = xs[0] if coeffs[0] == 1.0 else xs[0] * coeffs[0]
        for x, c in zip(xs[1:], coeffs[1:], strict=True):
            acc = acc + (x if c == 1.0 else x * c)
        return acc
    acc = xs[0]
    for x in xs[1:]:
        acc = acc * x if op.op is EltwiseOp.PROD else torch.maximum(acc, x)
    return acc


def _crop(op: Crop, x: torch.Tensor) -> torch.Tensor:
    index = [slice(None)] * x.ndim
    for axis, start, end in op.slices:
        torch_axis = _NHWC_TO_NCHW.get(axis, axis) if x.ndim == 4 else axis
        dim = x.shape[torch_axis]
        index[torch_axis] = slice(start, min(dim, end) if end > 0 else dim + end)
    return x[tuple(index)]


def _crop_like(op: CropLike, xs: Tensors) -> torch.Tensor:
    src, like = xs
    h, w = like.shape[2], like.shape[3]
    return src[:, :, op.top : op.top + h, op.left : op.left + w]


def _interp(op: Interp, x: torch.Tensor) -> torch.Tensor:
    if op.kind is not ResizeKind.NEAREST:
        raise NotImplementedError("bicubic Interp (no model of the GPU comparison has one)")
    return functional.interpolate(x, scale_factor=(op.scale_h, op.scale_w), mode="nearest")


_STATELESS: dict[type[Op], Callable[[Any, Tensors], torch.Tensor]] = {
    GlobalAvgPool: lambda op, xs: xs[0].mean(dim=(2, 3)),
    ChannelScale: lambda op, xs: xs[0] * xs[1][:, :, None, None],
    Eltwise: _eltwise,
    BinaryOp: _binary,
    Concat: lambda op, xs: torch.cat(list(xs), dim=1),
    Crop: lambda op, xs: _crop(op, xs[0]),
    CropLike: _crop_like,
    Interp: lambda op, xs: _interp(op, xs[0]),
}


def _stateless(op: Op) -> Callable[[Tensors], torch.Tensor]:
    """The torch computation of an op without weights."""
    compute = _STATELESS.get(type(op))
    if compute is None:
        raise NotImplementedError(f"{type(op).__name__} has no torch counterpart here")
    return lambda xs: compute(op, xs)


class TorchNetwork(nn.Module):
    """One of srd's networks in torch: NCHW padded tiles in, NCHW output out (unclamped, as srd's)."""

    def __init__(self, spec: NetworkSpec, weights: Weights) -> None:
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleDict()
        self._steps: list[tuple[Op, Callable[[Tensors], torch.Tensor] | None]] = []
        for op in spec.ops:
            if isinstance(op, Conv):
                self.layers[op.name] = ConvLayer(op, weights[op.name])
                self._steps.append((op, None))
            elif isinstance(op, Dense):
                self.layers[op.name] = DenseLayer(op, weights[op.name])
                self._steps.append((op, None))
            else:
                self._steps.append((op, _stateless(op)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs = {self.spec.input: x}
        for op, step in self._steps:
            xs = [blobs[name] for name in op.inputs]
            if step is None:
                assert op.weight_name is not None
                blobs[op.output] = self.layers[op.weight_name](xs[0])
            else:
                blobs[op.output] = step(xs)
        return blobs[self.spec.output]
