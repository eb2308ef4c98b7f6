"""Ops that rearrange channels: each channel repeated in place (torch.repeat_interleave along channels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class RepeatChannels(OneInputOp):
    """out[..., k] = in[..., k // repeats]: every channel `repeats` times in a row (RealPLKSR adds its
    input so repeated to the last convolution's output before the pixel shuffle or DySample)."""

    src: str
    dst: str
    repeats: int

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        return jnp.repeat(xs[0], self.repeats, axis=-1)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
