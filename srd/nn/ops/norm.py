"""Normalisation layers: PyTorch's GroupNorm, whose statistics cover the whole spatial blob, and the layer
norm over the channels of each pixel (the transformers' LayerNorm, RealPLKSR's channels-first one).

GroupNorm's mean and variance are taken over each sample's group of channels and all its pixels, so its
result depends on the tile: it is a global op (`is_global`), and where extents are tracked the statistics
cover only the tile's valid area, as the smaller edge tile run alone would have them (the values past it
are left to the zero-padded convolutions after it to mask). The layer norm is per pixel and needs neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp, spatial_extent
from srd.nn.ops.pooling import masked_mean

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


def _whole(x: jax.Array) -> Extent:
    """The extent of every sample when none is tracked: the whole blob."""
    return jnp.broadcast_to(jnp.array(x.shape[1:3], jnp.int32), (x.shape[0], 2))


@dataclass(frozen=True)
class GroupNorm(OneInputOp):
    """torch.nn.GroupNorm: per sample and group of consecutive channels, (x - mean) / sqrt(var + eps)
    with the biased variance over the group's channels and pixels, then the per-channel "weight" and
    "bias" of the layer `name`."""

    name: str
    src: str
    dst: str
    groups: int
    eps: float = 1e-5

    @property
    def weight_name(self) -> str:
        return self.name

    @property
    def is_global(self) -> bool:
        return True

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        n, _, _, c = x.shape
        if c % self.groups:
            raise ValueError(f"GroupNorm {self.name!r} of {c} channels in {self.groups} groups")
        extent = spatial_extent(extents, f"GroupNorm {self.name!r}") if extents is not None else _whole(x)
        x32 = x.astype(jnp.float32)

        def group_mean(values: jax.Array) -> jax.Array:
            # Every channel counts the same pixels, so a group's mean is the mean of its channels' means.
            per_channel = masked_mean(values, extent).reshape(n, self.groups, c // self.groups)
            return jnp.repeat(jnp.mean(per_channel, axis=-1), c // self.groups, axis=-1)[:, None, None, :]

        # Two passes (the mean, then the mean squared deviation from it), as PyTorch's moments are exact
        # to rounding: E[x^2] - E[x]^2 would cancel catastrophically on features with a large mean.
        centred = x32 - group_mean(x32)
        rstd = jax.lax.rsqrt(group_mean(centred * centred) + jnp.float32(self.eps))
        gamma = weights["weight"].astype(jnp.float32)
        beta = weights["bias"].astype(jnp.float32)
        return (centred * rstd * gamma + beta).astype(x.dtype)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]


def layer_norm(x: jax.Array, w: jax.Array, b: jax.Array, eps: float) -> jax.Array:
    """PyTorch's LayerNorm over the last axis (biased variance), computed in float32: (x - mean) divided
    by sqrt(variance + eps), as RealPLKSR's channels-first norm writes it and within an ulp of
    nn.LayerNorm's rsqrt, times `w` plus `b`."""
    x32 = x.astype(jnp.float32)
    centred = x32 - jnp.mean(x32, axis=-1, keepdims=True)
    variance = jnp.mean(centred * centred, axis=-1, keepdims=True)
    y = centred / jnp.sqrt(variance + jnp.float32(eps))
    return (y * w.astype(jnp.float32) + b.astype(jnp.float32)).astype(x.dtype)


@dataclass(frozen=True)
class LayerNorm(OneInputOp):
    """A layer norm over each pixel's channels with the layer's "w" and "b": a transformer's norm on its
    token sequence (SwinIR, HAT, DAT: eps 1e-5) and RealPLKSR's channels-first one (eps 1e-6)."""

    name: str
    src: str
    dst: str
    eps: float = 1e-5

    @property
    def weight_name(self) -> str:
        return self.name

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        return layer_norm(xs[0], weights["w"], weights["b"], self.eps)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
