"""The "winograd" backend: stride-1 3x3 layers as Winograd F(4x4, 3x3) in jnp, transposed layers with
kernel = stride as one matmul, the rest by lax.conv. Exact, but memory-bound under XLA on the CPU (see
bench/winograd_micro.py); kept as the portable reference for the native kernel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from srd.nn.conv.base import PreparedKernels, UnfusedOps, epilogue_for
from srd.nn.conv.subpixel import prepare_subpixel_matmul, subpixel_or_direct
from srd.nn.conv.winograd_transforms import transform_kernel, transform_kernel_traced, winograd_conv3x3
from srd.nn.graph import ConvAlgorithm
from srd.nn.ops.base import HostLayerWeights, LayerWeights
from srd.nn.ops.conv import Conv

WINOGRAD_TILE = 4  # F(4x4, 3x3): 4x fewer multiplies than direct, float32 error ~1e-6 relative
WINOGRAD_MIN_CHANNELS = 8  # below this the transforms cost more than the matmul saves


def uses_winograd(op: Conv, in_channels: int) -> bool:
    """Whether "winograd" runs this layer as Winograd F(4x4, 3x3)."""
    square3 = op.kernel == (3, 3) and op.stride == (1, 1) and not op.transposed
    return square3 and in_channels >= WINOGRAD_MIN_CHANNELS


@dataclass(frozen=True)
class WinogradBackend(UnfusedOps):
    """F(4x4, 3x3) in jnp; `prepare` adds "wino" (36 x C x K) or "subpixel" kernels, else they are traced."""

    name: ConvAlgorithm = "winograd"

    def unavailable_reason(self, platform: str) -> str | None:
        return None

    def prepare(self, op: Conv, layer: HostLayerWeights) -> PreparedKernels:
        w = np.asarray(layer["w"], np.float32)
        if uses_winograd(op, w.shape[2]):
            return {"wino": transform_kernel(w, WINOGRAD_TILE)}
        return dict(prepare_subpixel_matmul(op, w))

    def conv(self, x: jax.Array, op: Conv, layer: LayerWeights) -> jax.Array:
        epilogue = epilogue_for(op, layer.get("b"))
        if uses_winograd(op, x.shape[-1]):
            top, bottom, left, right = op.pads
            x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))) if any(op.pads) else x
            u = layer.get("wino")
            if u is None:
                u = transform_kernel_traced(layer["w"], WINOGRAD_TILE)
            return winograd_conv3x3(x, u, WINOGRAD_TILE, epilogue)
        return subpixel_or_direct(x, op, layer, epilogue)

    def compiler_options(self, platform: str) -> Mapping[str, str]:
        if platform != "cpu":
            return {}
        # YNNPACK's "dot" fusion would pull the Winograd transforms into its matmul fusions and run them
        # slowly; individual dots keep the transforms as XLA's own fused loops.
        return {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


WINOGRAD = WinogradBackend()
