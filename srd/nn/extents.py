"""Valid extents of partial tiles, so global pooling sees what it would see in a smaller tile.

A fixed-shape tile at the image's right or bottom edge holds fewer real pixels than its shape. Networks
with global average pooling (cunet's squeeze-excitation) would then average over padding that
waifu2x-ncnn-vulkan never computes: it runs that tile at its own, smaller size. All convolutions are
unpadded and anchored at the top-left, so the features over the smaller tile's area are the same in the
larger one; averaging only over that area reproduces the smaller tile exactly. This module tracks the
valid height and width of every blob, per batch element, as traced integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from srd.nn.graph import ChannelScale, Conv, CropLike, Dense, Eltwise, GlobalAvgPool, Op

Extent = jax.Array  # int32 (B, 2): valid rows and columns


def propagate_extents(ops: Sequence[Op], input_blob: str, valid: Extent) -> dict[str, Extent]:
    """The valid extent of each spatial blob, given the valid extent of the padded input."""
    extents: dict[str, Extent] = {input_blob: valid}
    for op in ops:
        if isinstance(op, Conv):
            e = extents[op.src]
            kernel = jnp.asarray(op.kernel, jnp.int32)
            stride = jnp.asarray(op.stride, jnp.int32)
            pads = jnp.asarray((op.pads[0] + op.pads[1], op.pads[2] + op.pads[3]), jnp.int32)
            if op.transposed:
                extents[op.dst] = (e - 1) * stride + kernel - pads
            else:
                extents[op.dst] = (e + pads - kernel) // stride + 1
        elif isinstance(op, CropLike):
            extents[op.dst] = extents[op.like]
        elif isinstance(op, Eltwise):
            acc = extents[op.srcs[0]]
            for src in op.srcs[1:]:
                acc = jnp.minimum(acc, extents[src])
            extents[op.dst] = acc
        elif isinstance(op, ChannelScale):
            extents[op.dst] = extents[op.src]
        elif isinstance(op, GlobalAvgPool | Dense):
            continue  # vectors: no spatial extent
    return extents


def masked_mean(x: jax.Array, extent: Extent) -> jax.Array:
    """Mean of NHWC `x` over its first extent[b, 0] rows and extent[b, 1] columns, per sample b."""
    rows = jnp.arange(x.shape[1])[None, :] < extent[:, :1]
    cols = jnp.arange(x.shape[2])[None, :] < extent[:, 1:]
    mask = (rows[:, :, None] & cols[:, None, :])[..., None]
    total = jnp.sum(jnp.where(mask, x, 0), axis=(1, 2))
    count = (extent[:, 0] * extent[:, 1]).astype(x.dtype)[:, None]
    return total / count
