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
    """Mean of NHWC `x` over its first extent[b, 0] rows and extent[b, 1] columns, per sample b."""
    rows = jnp.arange(x.shape[1])[None, :] < extent[:, :1]
    cols = jnp.arange(x.shape[2])[None, :] < extent[:, 1:]
    mask = (rows[:, :, None] & cols[:, None, :])[..., None]
    # Summed and divided in float32 whatever x's dtype: a float16 pixel count overflows past 65504.
    total = jnp.sum(jnp.where(mask, x, 0), axis=(1, 2), dtype=jnp.float32)
    count = (extent[:, 0] * extent[:, 1]).astype(jnp.float32)[:, None]
    return (total / count).astype(x.dtype)


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
        return jnp.mean(xs[0], axis=(1, 2), dtype=jnp.float32).astype(xs[0].dtype)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return None  # a vector
