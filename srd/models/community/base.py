"""What reading a community model yields, and the builder its architectures write their graphs with.

An architecture (one module each: esrgan, compact, span, ...) recognises its state dict by key names,
reads its hyperparameters from tensor shapes, and writes the network as srd ops (srd.nn.ops) over named
blobs with a `GraphBuilder`, which converts PyTorch's OIHW kernels to HWIO, checks every layer's input
channels against the blob it reads (a mismatched file is a ModelError naming the layer), and records
which keys were used, so a state dict with keys the architecture does not explain is refused rather
than run wrong.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.models.statedict import StateDict
from srd.nn.graph import Weights
from srd.nn.ops import (
    Activate,
    Activation,
    ChannelAffine,
    Concat,
    Conv,
    Eltwise,
    EltwiseOp,
    Interp,
    Op,
    PixelShuffle,
    PixelUnshuffle,
    PReLU,
    ResizeKind,
)

INPUT = "input"
_FUSED = (Activation.NONE, Activation.RELU, Activation.LEAKY_RELU)  # what a Conv op carries itself


@dataclass(frozen=True)
class CommunityNet:
    """A community model's network as srd runs it, and what was detected about it."""

    arch: str
    scale: int
    in_channels: int
    out_channels: int
    hyperparameters: tuple[tuple[str, str], ...]  # name and value, as `srd models --inspect` prints them
    ops: tuple[Op, ...]
    weights: Weights
    output: str

    def describe(self) -> str:
        """One line: the architecture, its scale and its hyperparameters."""
        params = ", ".join(f"{k} {v}" for k, v in self.hyperparameters)
        return f"{self.arch} {self.scale}x ({params})"


class Architecture(ABC):
    """One community architecture: how to recognise its state dict and how to build its network."""

    name: str
    # Keys of its state dicts that the network does not read (training-time copies, buffers).
    ignored_suffixes: tuple[str, ...] = ()

    @abstractmethod
    def matches(self, state: StateDict) -> bool:
        """Whether the state dict's keys are this architecture's."""

    @abstractmethod
    def build(self, state: StateDict) -> CommunityNet:
        """The network and its hyperparameters; ModelError where the shapes do not fit together."""


def require(state: StateDict, key: str, arch: str) -> npt.NDArray[np.float32]:
    """The tensor `key`, or a ModelError saying which key the architecture lacks."""
    if key not in state:
        raise ModelError(f"{arch}: the state dict has no {key!r}")
    return state[key]


def count_indexed(state: StateDict, prefix: str) -> int:
    """How many consecutive `prefix{i}.` groups exist from 0 (or from 1, where 0 is absent)."""
    start = 0 if any(k.startswith(f"{prefix}0.") for k in state) else 1
    n = start
    while any(k.startswith(f"{prefix}{n}.") for k in state):
        n += 1
    return n - start


class GraphBuilder:
    """Writes ops and weights from a state dict, tracking each blob's channel count and the keys used."""

    def __init__(self, state: StateDict, arch: str, in_channels: int, name: str | None = None) -> None:
        self.state = state
        self.arch = arch  # how errors name it (ESRGAN's key layout included)
        self.name = name or arch
        self.ops: list[Op] = []
        self.weights: Weights = {}
        self.channels: dict[str, int] = {INPUT: in_channels}
        self.used: set[str] = set()
        self._count = 0

    def _blob(self, hint: str) -> str:
        self._count += 1
        return f"{hint}#{self._count}"

    def tensor(self, key: str) -> npt.NDArray[np.float32]:
        self.used.add(key)
        return require(self.state, key, self.arch)

    def conv(
        self,
        key: str,
        src: str,
        activation: Activation = Activation.NONE,
        slope: float = 0.0,
        *,
        padding: int | None = None,
        kernel: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None] | None = None,
    ) -> str:
        """A Conv2d with the weights `key`.weight/.bias (or `kernel`, OIHW and bias, computed by the
        architecture), zero-padded by `padding` (default: half the kernel, PyTorch's "same")."""
        if kernel is None:
            w = self.tensor(f"{key}.weight")
            bias_key = f"{key}.bias"
            b = self.tensor(bias_key) if bias_key in self.state else None
        else:
            w, b = kernel
        if w.ndim != 4:
            raise ModelError(f"{self.arch}: {key}.weight is shaped {w.shape}, not a 2-D convolution's")
        cout, cin, kh, kw = w.shape
        if cin != self.channels[src]:
            raise ModelError(
                f"{self.arch}: layer {key} takes {cin} channels but its input has {self.channels[src]}"
            )
        if b is not None and b.shape != (cout,):
            raise ModelError(f"{self.arch}: {key}.bias is shaped {b.shape}, expected ({cout},)")
        ph, pw = (kh // 2, kw // 2) if padding is None else (padding, padding)
        dst = self._blob(key)
        fused = activation if activation in _FUSED else Activation.NONE
        self.ops.append(Conv(key, src, dst, (kh, kw), (1, 1), (ph, ph, pw, pw), fused, slope))
        layer = {"w": np.ascontiguousarray(w.transpose(2, 3, 1, 0), np.float32)}
        if b is not None:
            layer["b"] = np.asarray(b, np.float32)
        self.weights[key] = layer
        self.channels[dst] = cout
        if fused is not activation:
            return self.activate(dst, activation, slope)
        return dst

    def prelu(self, key: str, src: str) -> str:
        slope = self.tensor(f"{key}.weight").reshape(-1)
        if slope.size not in (1, self.channels[src]):
            raise ModelError(f"{self.arch}: PReLU {key} has {slope.size} slopes for {self.channels[src]}")
        dst = self._blob(key)
        self.ops.append(PReLU(key, src, dst))
        self.weights[key] = {"slope": np.asarray(slope, np.float32)}
        self.channels[dst] = self.channels[src]
        return dst

    def activate(
        self, src: str, activation: Activation, slope: float = 0.0, scale: float = 1.0, shift: float = 0.0
    ) -> str:
        dst = self._blob(activation.value)
        self.ops.append(Activate(src, dst, activation, slope, scale, shift))
        self.channels[dst] = self.channels[src]
        return dst

    def affine(self, src: str, shift: Iterable[float], scale: Iterable[float]) -> str:
        dst = self._blob("affine")
        self.ops.append(ChannelAffine(src, dst, tuple(shift), tuple(scale)))
        self.channels[dst] = self.channels[src]
        return dst

    def _same_channels(self, srcs: tuple[str, ...], what: str) -> int:
        counts = {self.channels[s] for s in srcs}
        if len(counts) != 1:
            raise ModelError(f"{self.arch}: {what} of blobs with {sorted(counts)} channels")
        return counts.pop()

    def add(self, *srcs: str, coeffs: tuple[float, ...] = ()) -> str:
        """The sum of blobs of one shape, each times its coefficient where given."""
        dst = self._blob("sum")
        self.channels[dst] = self._same_channels(srcs, "a sum")
        self.ops.append(Eltwise(srcs, dst, EltwiseOp.SUM, coeffs))
        return dst

    def mul(self, a: str, b: str) -> str:
        dst = self._blob("prod")
        self.channels[dst] = self._same_channels((a, b), "a product")
        self.ops.append(Eltwise((a, b), dst, EltwiseOp.PROD))
        return dst

    def concat(self, *srcs: str) -> str:
        dst = self._blob("cat")
        self.ops.append(Concat(srcs, dst))
        self.channels[dst] = sum(self.channels[s] for s in srcs)
        return dst

    def nearest(self, src: str, factor: int) -> str:
        dst = self._blob("up")
        self.ops.append(Interp(src, dst, ResizeKind.NEAREST, float(factor), float(factor)))
        self.channels[dst] = self.channels[src]
        return dst

    def pixel_shuffle(self, src: str, factor: int) -> str:
        if self.channels[src] % (factor * factor):
            raise ModelError(f"{self.arch}: pixel shuffle by {factor} of {self.channels[src]} channels")
        dst = self._blob("shuffle")
        self.ops.append(PixelShuffle(src, dst, factor))
        self.channels[dst] = self.channels[src] // (factor * factor)
        return dst

    def pixel_unshuffle(self, src: str, factor: int) -> str:
        dst = self._blob("unshuffle")
        self.ops.append(PixelUnshuffle(src, dst, factor))
        self.channels[dst] = self.channels[src] * factor * factor
        return dst

    def finish(
        self,
        output: str,
        scale: int,
        hyperparameters: Iterable[tuple[str, object]],
        ignored_suffixes: tuple[str, ...] = (),
    ) -> CommunityNet:
        """The network, after checking that every key of the state dict was used (or is one the
        architecture ignores): a file with more is a variant srd does not know, and is refused."""
        unused = sorted(k for k in self.state if k not in self.used and not k.endswith(ignored_suffixes))
        if unused:
            shown = ", ".join(unused[:6]) + (f" and {len(unused) - 6} more" if len(unused) > 6 else "")
            raise ModelError(f"{self.arch}: the state dict has keys this architecture does not use: {shown}")
        return CommunityNet(
            self.name,
            scale,
            self.channels[INPUT],
            self.channels[output],
            tuple((k, str(v)) for k, v in hyperparameters),
            tuple(self.ops),
            self.weights,
            output,
        )
