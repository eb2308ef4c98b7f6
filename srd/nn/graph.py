"""Static description of a waifu2x-family network: a list of typed operations over named blobs.

A network is `NetworkSpec` (hashable, static under jit) plus a weights pytree
`{layer_name: {"w": array, "b": array}}`. Convolution weights are stored HWIO, ready for
`lax.conv_general_dilated` with NHWC activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

Weights = dict[str, dict[str, npt.NDArray[np.float32]]]
# Weights plus each layer's prepared kernels: float32, except bfloat16 ones packed as uint16 bits.
PreparedWeights = dict[str, dict[str, npt.NDArray[np.float32] | npt.NDArray[np.uint16]]]
ConvAlgorithm = Literal["auto", "direct", "native", "native-bf16", "winograd"]
# "auto" is "native" (srd's own Winograd F(6x6, 3x3) kernel, an XLA custom call) on the CPU when the
# extension is built, else "direct" (lax.conv). "native-bf16" is the native kernel with its big layers'
# matmuls in bfloat16 on AMX tiles (Intel Sapphire Rapids and later): faster, slightly less exact, only on
# request. "winograd" is the same algorithm written in jnp: exact but memory-bound under XLA on the CPU
# (see bench/winograd_micro.py); kept as the portable reference.
DEFAULT_CONV_ALGORITHM: ConvAlgorithm = "auto"
CONV_ALGORITHMS: tuple[ConvAlgorithm, ...] = get_args(ConvAlgorithm)


class Activation(Enum):
    """Activations fused into convolution and dense layers."""

    NONE = "none"
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    SIGMOID = "sigmoid"


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution (or, with `transposed`, a stride-s transposed convolution) plus activation.

    `pads` is (top, bottom, left, right): zero padding for a convolution, the rows and columns cut from
    the full output for a transposed convolution (Torch's and ncnn's meaning of `pad` there).
    """

    name: str
    src: str
    dst: str
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: Activation = Activation.NONE
    slope: float = 0.0
    transposed: bool = False


@dataclass(frozen=True)
class GlobalAvgPool:
    """Mean over height and width: NHWC -> NC."""

    src: str
    dst: str


@dataclass(frozen=True)
class Dense:
    """A fully connected layer on NC activations (ncnn's InnerProduct)."""

    name: str
    src: str
    dst: str
    activation: Activation = Activation.NONE
    slope: float = 0.0


@dataclass(frozen=True)
class ChannelScale:
    """Multiply an NHWC blob by per-sample, per-channel factors from an NC blob (squeeze-excitation)."""

    src: str
    factors: str
    dst: str


@dataclass(frozen=True)
class CropLike:
    """Cut `src` to the spatial size of `like`, starting at (top, left) offsets."""

    src: str
    like: str
    dst: str
    top: int
    left: int


class EltwiseOp(Enum):
    """Element-wise combinations of blobs of one shape."""

    PROD = 0
    SUM = 1
    MAX = 2


@dataclass(frozen=True)
class Eltwise:
    """Combine several blobs of the same shape element by element."""

    srcs: tuple[str, ...]
    dst: str
    op: EltwiseOp = EltwiseOp.SUM
    coeffs: tuple[float, ...] = ()


Op = Conv | GlobalAvgPool | Dense | ChannelScale | CropLike | Eltwise


@dataclass(frozen=True)
class NetworkSpec:
    """Everything about a network that is not a weight: ops in execution order and its geometry.

    `context` is the replicate padding (input pixels) each side needs so that the output covers exactly
    `scale` times the unpadded input; `align` is the multiple the unpadded tile size must be.
    """

    arch: str
    ops: tuple[Op, ...]
    input: str
    output: str
    in_channels: int
    out_channels: int
    scale: int
    context: int
    align: int = 1
