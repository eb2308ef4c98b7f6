"""DAT's adaptive spatial self-attention (Adaptive_Spatial_Attention): attention within rectangular
windows in two branches of half the channels each, (rows, columns) windows in one and (columns, rows) in
the other, beside a depthwise convolution branch of the values, the two mixed by the adaptive
interaction (srd.nn.ops.interaction), then projected.

Query, key and value are zero-padded at the bottom and right to a multiple of the larger window side (the
reference's F.pad of its qkv, after the linear layer: padded tokens attend with zero keys); a shifted
block rolls each branch by half its window over that padded area and masks its regions. Partial tiles are
padded, rolled and masked from their valid extent, so a larger fixed-shape tile computes over the real
pixels what the smaller tile alone would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp, zero_outside
from srd.nn.ops.interaction import channel_gate, conv_branch, spatial_gate
from srd.nn.ops.rect_window import region_ids, roll_valid, round_up, window_attention

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


def valid_or_shape(x: jax.Array, extents: Sequence[Extent | None] | None) -> Extent:
    """Each sample's valid (rows, columns): the tracked extent, or the whole blob where none is tracked."""
    if extents is not None and extents[0] is not None:
        return extents[0]
    return jnp.broadcast_to(jnp.asarray(x.shape[1:3], jnp.int32), (x.shape[0], 2))


@dataclass(frozen=True)
class SpatialWindowAttention(OneInputOp):
    """Adaptive spatial self-attention of an NHWC blob of C channels. `split` is the (rows, columns)
    window of the first branch (the second's is transposed), `heads` the heads of each branch. Weights:
    qkv_w (C, 3C; the query's columns scaled by the head size^-0.5) and qkv_b, bias0 and bias1 (each
    branch's position table, srd.nn.ops.rect_window.window_attention), proj_w/_b and the interaction's
    (srd.nn.ops.interaction)."""

    name: str
    src: str
    dst: str
    heads: int
    split: tuple[int, int]
    shifted: bool = False

    @property
    def weight_name(self) -> str:
        return self.name

    @property
    def is_global(self) -> bool:
        return True  # the channel gate averages over the tile

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        b, h, w, c = x.shape
        valid = valid_or_shape(x, extents)
        qkv = x @ weights["qkv_w"]
        if "qkv_b" in weights:
            qkv = qkv + weights["qkv_b"]
        values = qkv[..., 2 * c :]
        side = max(self.split)
        hp, wp = -(-h // side) * side, -(-w // side) * side
        padded = jnp.pad(zero_outside(qkv, valid), ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
        padded = padded.reshape(b, hp, wp, 3, 2, c // 2)
        area = round_up(valid, side)  # each sample's padded size, which a shifted block rolls
        branches = []
        for i, window in enumerate((self.split, self.split[::-1])):
            part = padded[:, :, :, :, i]
            ids = None
            if self.shifted:
                shift = (window[0] // 2, window[1] // 2)
                part = roll_valid(part, area, (-shift[0], -shift[1]))
                ids = region_ids(area, hp, wp, window, shift)
            y = window_attention(part, weights[f"bias{i}"], self.heads, window, ids)
            if self.shifted:
                y = roll_valid(y, area, shift)
            branches.append(y[:, :h, :w])
        attended = jnp.concatenate(branches, axis=-1)
        conv = conv_branch(values, weights, valid)
        mixed = attended * channel_gate(conv, weights, valid) + spatial_gate(attended, weights) * conv
        return mixed @ weights["proj_w"] + weights["proj_b"]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
