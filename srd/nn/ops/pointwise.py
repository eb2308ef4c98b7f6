"""Ops that map each value of a blob on its own: an activation as a layer of its own (where it follows
something other than a convolution, or one the native kernels do not fuse: SiLU, Mish, GELU), and a fixed
per-channel affine map (a network's own input normalisation, such as SPAN's mean and range)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Activation, Extent, LayerWeights, OneInputOp, activate

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class Activate(OneInputOp):
    """`activation` of every value (`slope` for the leaky ReLU), then `scale` * y + `shift`."""

    src: str
    dst: str
    activation: Activation
    slope: float = 0.0
    scale: float = 1.0
    shift: float = 0.0

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        y = activate(xs[0], self.activation, self.slope)
        if self.scale != 1.0:
            y = y * jnp.asarray(self.scale, y.dtype)
        if self.shift != 0.0:
            y = y + jnp.asarray(self.shift, y.dtype)
        return y

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]


@dataclass(frozen=True)
class ChannelAffine(OneInputOp):
    """y[..., c] = (x[..., c] + shift[c]) * scale[c], constants of the graph (not weights)."""

    src: str
    dst: str
    shift: tuple[float, ...]
    scale: tuple[float, ...]

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        if x.shape[-1] != len(self.shift):
            raise ValueError(f"ChannelAffine of {len(self.shift)} channels on a blob of {x.shape[-1]}")
        return (x + jnp.asarray(self.shift, x.dtype)) * jnp.asarray(self.scale, x.dtype)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
