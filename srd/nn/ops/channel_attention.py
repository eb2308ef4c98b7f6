"""DAT's adaptive channel self-attention (Adaptive_Channel_Attention, after XCiT's cross-covariance
attention): per head, a softmax over channel-by-channel similarities of the L2-normalised queries and
keys, each channel a vector over all the tile's pixels, with a learnt temperature per head; beside it the
depthwise convolution branch of the values, the two mixed by the adaptive interaction
(srd.nn.ops.interaction), then projected.

The normalisation and the similarities sum over every pixel of the tile, so the output depends on the
tile: where extents are tracked, queries and keys count over each sample's valid area only, as the smaller
tile alone would have them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp, zero_outside
from srd.nn.ops.interaction import channel_gate, conv_branch, spatial_gate
from srd.nn.ops.spatial_attention import valid_or_shape

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend

_NORM_EPS = 1e-12  # torch.nn.functional.normalize's


def _normalised(x: jax.Array) -> jax.Array:
    """`x` (B, H, W, heads, d) divided by its L2 norm over the pixels (at least 1e-12)."""
    norm = jnp.sqrt(jnp.sum(x * x, axis=(1, 2), keepdims=True))
    return x / jnp.maximum(norm, jnp.asarray(_NORM_EPS, x.dtype))


@dataclass(frozen=True)
class ChannelSelfAttention(OneInputOp):
    """Adaptive channel self-attention of an NHWC blob of C channels in `heads` heads. Weights: qkv_w
    (C, 3C) and qkv_b, temperature (heads,), proj_w/_b and the interaction's."""

    name: str
    src: str
    dst: str
    heads: int

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
        b, h, w, c = x.shape
        valid = valid_or_shape(x, extents)
        qkv = x @ weights["qkv_w"]
        if "qkv_b" in weights:
            qkv = qkv + weights["qkv_b"]
        values = qkv[..., 2 * c :]
        qk = zero_outside(qkv[..., : 2 * c], valid).reshape(b, h, w, 2, self.heads, c // self.heads)
        q, k = _normalised(qk[..., 0, :, :]), _normalised(qk[..., 1, :, :])
        logits = jnp.einsum("bhwnd,bhwne->bnde", q, k) * weights["temperature"][:, None, None]
        attn = jax.nn.softmax(logits, axis=-1)
        v = values.reshape(b, h, w, self.heads, c // self.heads)
        attended = jnp.einsum("bnde,bhwne->bhwnd", attn, v).reshape(b, h, w, c)
        conv = conv_branch(values, weights, valid)
        mixed = attended * spatial_gate(conv, weights) + conv * channel_gate(attended, weights, valid)
        return mixed @ weights["proj_w"] + weights["proj_b"]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
