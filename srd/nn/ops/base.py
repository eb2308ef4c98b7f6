"""What every op of a network graph is: named input and output blobs, its JAX computation and the valid
extent of its output, so that running a graph and tracking its extents are plain loops over its ops."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend, PreparedKernels

Extent = jax.Array  # int32 (B, 2): each sample's valid rows and columns of a spatial blob
LayerWeights = Mapping[str, jax.Array]  # one layer's "w", "b" and the kernels its backend prepared
HostLayerWeights = Mapping[str, npt.NDArray[np.float32]]


class Activation(Enum):
    """Activations fused into convolution and dense layers."""

    NONE = "none"
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    SIGMOID = "sigmoid"
    SILU = "silu"  # x * sigmoid(x) (SPAN)
    MISH = "mish"  # x * tanh(softplus(x)) (RealPLKSR)
    GELU = "gelu"  # the exact, erf form (PyTorch's nn.GELU default: the transformers)


def _mish(x: jax.Array) -> jax.Array:
    """x * tanh(softplus(x)) as x * n / (n + 2) with n = e^x (e^x + 2), which is the same function: one
    exponential and a division, 5x faster on XLA's CPU than tanh of log1p(exp) (RealPLKSR's 28 Mish of 128
    channels were 12 ms a 148 px tile each) and as close to PyTorch's (4e-7 relative). Past x = 20 the
    fraction is 1 in float32; the exponent is clamped there so that it cannot overflow to inf / inf (in
    float32: n reaches 2e17, past float16's range)."""
    x32 = x.astype(jnp.float32)
    e = jnp.exp(jnp.minimum(x32, 20.0))
    n = e * (e + 2)
    return (x32 * (n / (n + 2))).astype(x.dtype)


_ACTIVATIONS: dict[Activation, Callable[[jax.Array], jax.Array]] = {
    Activation.NONE: lambda x: x,
    Activation.RELU: lambda x: jnp.maximum(x, 0),
    Activation.SIGMOID: jax.nn.sigmoid,
    Activation.SILU: lambda x: x * jax.nn.sigmoid(x),
    Activation.MISH: _mish,
    Activation.GELU: lambda x: jax.nn.gelu(x, approximate=False),
}


def activate(x: jax.Array, activation: Activation, slope: float) -> jax.Array:
    """Apply a fused activation."""
    if activation is Activation.LEAKY_RELU:
        # max(x, slope*x) equals leaky ReLU for 0 < slope < 1 and fuses into one cheap op.
        return jnp.maximum(x, x * jnp.asarray(slope, x.dtype))
    return _ACTIVATIONS[activation](x)


def zero_outside(x: jax.Array, extent: Extent) -> jax.Array:
    """NHWC `x` with everything beyond each sample's valid rows and columns set to zero."""
    rows = jnp.arange(x.shape[1])[None, :] < extent[:, :1]
    cols = jnp.arange(x.shape[2])[None, :] < extent[:, 1:]
    mask = (rows[:, :, None] & cols[:, None, :])[..., None]
    return jnp.where(mask, x, jnp.zeros((), x.dtype))


def common_extent(extents: Sequence[Extent | None]) -> Extent | None:
    """The extent of an element-wise combination: the smallest of its spatial inputs' extents (a vector
    input, such as a squeeze-excitation factor, has none); None when every input is a vector."""
    spatial = [e for e in extents if e is not None]
    if not spatial:
        return None
    acc = spatial[0]
    for e in spatial[1:]:
        acc = jnp.minimum(acc, e)
    return acc


def spatial_extent(extents: Sequence[Extent | None], what: str) -> Extent:
    """The first input's extent, which an op of an image blob needs (vectors have none)."""
    e = extents[0]
    if e is None:
        raise ValueError(f"{what} of a vector blob")
    return e


class Op(ABC):
    """One operation over named blobs. Subclasses are frozen dataclasses: static hyperparameters,
    hashable, so a `NetworkSpec` of them is a static argument under jit; weights stay a separate pytree.

    A new layer type is one subclass (and, to read it from ncnn files, one entry in srd.models.ncnn).
    """

    @property
    @abstractmethod
    def inputs(self) -> tuple[str, ...]:
        """The blobs this op reads, in the order `apply` and `extent` receive them."""

    @property
    @abstractmethod
    def output(self) -> str:
        """The blob this op writes."""

    @property
    def weight_name(self) -> str | None:
        """The key of this op's weights in the weights pytree; None for ops without weights."""
        return None

    @property
    def is_global(self) -> bool:
        """Whether the op reduces over its whole spatial input (then a tiled output depends on the tile,
        and partial edge tiles need their valid extents)."""
        return False

    @property
    def reads_extent(self) -> bool:
        """Whether `apply` needs its inputs' valid extents to compute what a smaller tile would (global
        ops, and convolutions that zero-pad, which must see zeros beyond the valid area); a network with
        any such op tracks extents for partial tiles."""
        return self.is_global

    def out_channels(self, weights: Mapping[str, HostLayerWeights]) -> int | None:
        """The output's channel count where this op sets it; None where it keeps its first input's."""
        return None

    def prepare(self, backend: ConvBackend, weights: HostLayerWeights) -> PreparedKernels:
        """What `backend` computes from this op's weights once, at load (convolutions' packed kernels)."""
        return {}

    @abstractmethod
    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        """The op's output from its inputs' arrays, its weights (empty without any) and the convolution
        backend; `extents` are the inputs' valid extents where the network tracks them, else None."""

    @abstractmethod
    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        """The valid extent of the output given its inputs' (None for vectors, which have none)."""


class OneInputOp(Op):
    """An op that reads the blob `src` and writes `dst` (its subclass declares both as dataclass fields)."""

    src: str
    dst: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)

    @property
    def output(self) -> str:
        return self.dst


class ManyInputOp(Op):
    """An op that combines the blobs `srcs`, in order, into `dst` (declared by its subclass as fields)."""

    srcs: tuple[str, ...]
    dst: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.srcs

    @property
    def output(self) -> str:
        return self.dst
