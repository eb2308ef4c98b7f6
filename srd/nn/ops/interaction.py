"""DAT's adaptive interaction between an attention's output and its convolution branch (Chen et al. 2023,
"Dual Aggregation Transformer for Image Super-Resolution"): the depthwise convolution branch of the
values, a channel gate (global average, two 1x1 layers) and a spatial gate (two 1x1 layers to one map),
each a sigmoid of what the other branch computed.

The channel gate averages over the whole tile, so a network with it depends on the tile; where extents are
tracked it averages over each sample's valid area only, as the smaller tile alone would (srd.nn.extents).
BatchNorm layers are folded into the convolutions before them when the weights are read; the 1x1 layers
are (in, out) matrices: "dw_w" (3, 3, C) and "dw_b", "ci1_w"/"ci1_b", "ci2_w"/"ci2_b" (the channel gate),
"si1_w"/"si1_b", "si2_w"/"si2_b" (the spatial gate).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax

from srd.nn.ops.base import Activation, Extent, activate
from srd.nn.ops.depthwise import depthwise_conv
from srd.nn.ops.pooling import masked_mean


def _gelu(x: jax.Array) -> jax.Array:
    return activate(x, Activation.GELU, 0.0)


def conv_branch(v: jax.Array, weights: Mapping[str, jax.Array], extent: Extent) -> jax.Array:
    """GELU of the depthwise 3x3 convolution (its BatchNorm folded in) of the values `v` (B, H, W, C),
    zero-padded past each sample's valid area."""
    return _gelu(depthwise_conv(v, weights["dw_w"], weights["dw_b"], extent))


def channel_gate(x: jax.Array, weights: Mapping[str, jax.Array], extent: Extent) -> jax.Array:
    """sigmoid of the channel interaction of `x`: its mean over each sample's valid area, C -> C/8, GELU,
    C/8 -> C; shaped (B, 1, 1, C)."""
    pooled = masked_mean(x, extent)
    hidden = _gelu(pooled @ weights["ci1_w"] + weights["ci1_b"])
    return jax.nn.sigmoid(hidden @ weights["ci2_w"] + weights["ci2_b"])[:, None, None, :]


def spatial_gate(x: jax.Array, weights: Mapping[str, jax.Array]) -> jax.Array:
    """sigmoid of the spatial interaction of `x`: C -> C/16, GELU, C/16 -> 1 per pixel; (B, H, W, 1)."""
    hidden = _gelu(x @ weights["si1_w"] + weights["si1_b"])
    return jax.nn.sigmoid(hidden @ weights["si2_w"] + weights["si2_b"])
