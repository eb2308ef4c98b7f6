"""ncnn's PReLU: leaky ReLU with learned slopes, one per channel or one shared."""

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
class PReLU(OneInputOp):
    """x where x > 0, else slope[c] * x; the slopes are the layer's weight "slope" (C or 1 values)."""

    name: str
    src: str
    dst: str

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
        x, slope = xs[0], weights["slope"].astype(xs[0].dtype)
        if slope.shape[0] not in (1, x.shape[-1]):
            raise ValueError(f"PReLU {self.name!r}: {slope.shape[0]} slopes for {x.shape[-1]} channels")
        return jnp.where(x > 0, x, x * slope)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
