"""The "direct" backend: `lax.conv_general_dilated` as the layer is written; runs everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jax
from jax import lax

from srd.nn.conv.base import PreparedKernels, UnfusedOps, epilogue_for
from srd.nn.graph import ConvAlgorithm
from srd.nn.ops.base import HostLayerWeights, LayerWeights
from srd.nn.ops.conv import Conv

_DIMS = ("NHWC", "HWIO", "NHWC")


def direct_conv(x: jax.Array, w: jax.Array, op: Conv) -> jax.Array:
    """The layer's convolution (or transposed convolution) by lax.conv, without bias or activation."""
    top, bottom, left, right = op.pads
    if op.transposed:
        # Transposed conv = conv of the stride-dilated input with the spatially flipped kernel, padded by
        # k-1 and then cut by the layer's pad (w is stored HWIO with the flip already applied).
        kh, kw = op.kernel
        padding = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
        return lax.conv_general_dilated(
            x, w, window_strides=(1, 1), padding=padding, lhs_dilation=op.stride, dimension_numbers=_DIMS
        )
    return lax.conv_general_dilated(
        x, w, window_strides=op.stride, padding=((top, bottom), (left, right)), dimension_numbers=_DIMS
    )


@dataclass(frozen=True)
class DirectBackend(UnfusedOps):
    """lax.conv for every layer, nothing prepared."""

    name: ConvAlgorithm = "direct"

    def unavailable_reason(self, platform: str) -> str | None:
        return None

    def prepare(self, op: Conv, layer: HostLayerWeights) -> PreparedKernels:
        return {}

    def conv(self, x: jax.Array, op: Conv, layer: LayerWeights) -> jax.Array:
        return epilogue_for(op, layer.get("b"))(direct_conv(x, layer["w"], op))

    def compiler_options(self, platform: str) -> Mapping[str, str]:
        return {}


DIRECT = DirectBackend()
