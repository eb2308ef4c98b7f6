"""DAT's spatial-gate feed-forward network (SGFN): fc1 and GELU to a hidden width, whose second half,
layer-normed and convolved depthwise 3x3, gates the first half element by element; then fc2.

The depthwise convolution is zero-padded at each sample's valid extent where extents are tracked, as the
smaller tile alone would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax

from srd.nn.ops.base import Activation, Extent, LayerWeights, OneInputOp, activate
from srd.nn.ops.depthwise import depthwise_conv
from srd.nn.ops.norm import layer_norm

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class SpatialGateFFN(OneInputOp):
    """SGFN of an NHWC blob. Weights: fc1_w (C, hidden) and fc1_b, norm_w/_b (hidden/2,), conv_w (3, 3,
    hidden/2) and conv_b, fc2_w (hidden/2, C) and fc2_b."""

    name: str
    src: str
    dst: str
    eps: float = 1e-5

    @property
    def weight_name(self) -> str:
        return self.name

    @property
    def reads_extent(self) -> bool:
        return True  # the depthwise convolution's zero padding

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        hidden = activate(xs[0] @ weights["fc1_w"] + weights["fc1_b"], Activation.GELU, 0.0)
        half = hidden.shape[-1] // 2
        gate = layer_norm(hidden[..., half:], weights["norm_w"], weights["norm_b"], self.eps)
        extent = extents[0] if extents is not None else None
        gate = depthwise_conv(gate, weights["conv_w"], weights["conv_b"], extent)
        return (hidden[..., :half] * gate) @ weights["fc2_w"] + weights["fc2_b"]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
