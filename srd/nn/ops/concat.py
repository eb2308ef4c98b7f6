"""ncnn's Concat along channels (the RRDB dense blocks' growing inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, ManyInputOp, common_extent

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class Concat(ManyInputOp):
    """Stack blobs of one spatial size along channels, in `srcs` order (ncnn axis 0 of CHW)."""

    srcs: tuple[str, ...]
    dst: str

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        if len({x.shape[:-1] for x in xs}) != 1:
            raise ValueError(f"Concat of blobs shaped {[x.shape for x in xs]}")
        return jnp.concatenate(xs, axis=-1)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return common_extent(extents)
