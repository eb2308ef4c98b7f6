"""Global average pooling, which averages only over each tile's valid extent where one is tracked.

A fixed-shape tile at the image's right or bottom edge holds fewer real pixels than its shape. Networks
with global average pooling (cunet's squeeze-excitation) would then average over padding that
waifu2x-ncnn-vulkan never computes: it runs that tile at its own, smaller size. All convolutions are
unpadded and anchored at the top-left, so the features over the smaller tile's area are the same in the
larger one; averaging only over that area reproduces the smaller tile exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


def masked_mean(x: jax.Array, extent: Extent) -> jax.Array:
    """Mean of NHWC `x` over its first extent[b, 0] rows and extent[b, 1] columns, per sample b.

    Summed a row at a time, then the row sums: two small reductions XLA's CPU backend runs as fused
    loops, where one reduction over height and width became a 32 x 32 reduce-window plus a masked copy
    of the whole blob (measured on cunet's 270 x 270 x 128 blob: 18 ms against 8 ms; on a 256 px tile,
    15 ms of its 250). Summed and divided in float32 whatever x's dtype: a float16 pixel count overflows
    past 65504.
    """
    rows = jnp.arange(x.shape[1])[None, :] < extent[:, :1]
    cols = jnp.arange(x.shape[2])[None, :] < extent[:, 1:]
    row_sums = jnp.sum(jnp.where(cols[:, None, :, None], x, 0), axis=2, dtype=jnp.float32)  # N x H x C
    total = jnp.sum(jnp.where(rows[:, :, None], row_sums, 0), axis=1)
    count = (extent[:, 0] * extent[:, 1]).astype(jnp.float32)[:, None]
    return (total / count).astype(x.dtype)


def mean(x: jax.Array) -> jax.Array:
    """Mean of NHWC `x` over height and width (as masked_mean over the whole blob)."""
    n, h, w = x.shape[:3]
    return masked_mean(x, jnp.broadcast_to(jnp.array([h, w], jnp.int32), (n, 2)))


@dataclass(frozen=True)
class GlobalAvgPool(OneInputOp):
    """Mean over height and width: NHWC -> NC."""

    src: str
    dst: str

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
        extent = extents[0] if extents is not None else None
        if extent is not None:
            return masked_mean(xs[0], extent)
        return mean(xs[0])

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return None  # a vector
