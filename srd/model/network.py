"""Run a `NetworkSpec` on NHWC input with `lax.conv_general_dilated`: a pure function of (weights, x)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jax import lax

from srd.model.graph import (
    Activation,
    ChannelScale,
    Conv,
    CropLike,
    Dense,
    Eltwise,
    EltwiseOp,
    GlobalAvgPool,
    NetworkSpec,
    Op,
)

JaxWeights = Mapping[str, Mapping[str, jax.Array]]
_DIMS = ("NHWC", "HWIO", "NHWC")


def activate(x: jax.Array, activation: Activation, slope: float) -> jax.Array:
    """Apply a fused activation."""
    if activation is Activation.NONE:
        return x
    if activation is Activation.RELU:
        return jnp.maximum(x, 0)
    if activation is Activation.LEAKY_RELU:
        # max(x, slope*x) equals leaky ReLU for 0 < slope < 1 and fuses into one cheap op.
        return jnp.maximum(x, x * jnp.asarray(slope, x.dtype))
    if activation is Activation.SIGMOID:
        return jax.nn.sigmoid(x)
    raise AssertionError(activation)


def conv2d(x: jax.Array, w: jax.Array, b: jax.Array | None, op: Conv) -> jax.Array:
    """A convolution or transposed convolution with bias and activation, NHWC in and out."""
    top, bottom, left, right = op.pads
    if op.transposed:
        # Transposed conv = conv of the stride-dilated input with the spatially flipped kernel, padded by
        # k-1 and then cut by the layer's pad (w is stored HWIO with the flip already applied).
        kh, kw = op.kernel
        padding = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
        y = lax.conv_general_dilated(
            x, w, window_strides=(1, 1), padding=padding, lhs_dilation=op.stride, dimension_numbers=_DIMS
        )
    else:
        y = lax.conv_general_dilated(
            x, w, window_strides=op.stride, padding=((top, bottom), (left, right)), dimension_numbers=_DIMS
        )
    if b is not None:
        y = y + b
    return activate(y, op.activation, op.slope)


def _run_op(op: Op, blobs: dict[str, jax.Array], weights: JaxWeights) -> jax.Array:
    if isinstance(op, Conv):
        layer = weights[op.name]
        return conv2d(blobs[op.src], layer["w"], layer.get("b"), op)
    if isinstance(op, GlobalAvgPool):
        return jnp.mean(blobs[op.src], axis=(1, 2))
    if isinstance(op, Dense):
        layer = weights[op.name]
        y = blobs[op.src] @ layer["w"]
        if "b" in layer:
            y = y + layer["b"]
        return activate(y, op.activation, op.slope)
    if isinstance(op, ChannelScale):
        return blobs[op.src] * blobs[op.factors][:, None, None, :]
    if isinstance(op, CropLike):
        src, like = blobs[op.src], blobs[op.like]
        h, w = like.shape[1], like.shape[2]
        # U-Net skips crop symmetrically; anything else means the tile size is misaligned for this network.
        if src.shape[1] - h != 2 * op.top or src.shape[2] - w != 2 * op.left:
            raise ValueError(f"crop of {src.shape[1:3]} to {(h, w)} at ({op.top}, {op.left}) is not centred")
        return src[:, op.top : op.top + h, op.left : op.left + w, :]
    if isinstance(op, Eltwise):
        return _eltwise(op, [blobs[s] for s in op.srcs])
    raise AssertionError(op)


def _eltwise(op: Eltwise, xs: list[jax.Array]) -> jax.Array:
    if op.op is EltwiseOp.SUM:
        coeffs = op.coeffs or (1.0,) * len(xs)
        acc = xs[0] if coeffs[0] == 1.0 else xs[0] * coeffs[0]
        for x, c in zip(xs[1:], coeffs[1:], strict=True):
            acc = acc + (x if c == 1.0 else x * c)
        return acc
    acc = xs[0]
    for x in xs[1:]:
        acc = acc * x if op.op is EltwiseOp.PROD else jnp.maximum(acc, x)
    return acc


def apply_network(spec: NetworkSpec, weights: JaxWeights, x: jax.Array) -> jax.Array:
    """Run the network on a batch of padded tiles (B, H, W, C_in) and return (B, H', W', C_out).

    The output is not clamped: callers clamp to 0..1 after any averaging (TTA) as waifu2x does.
    """
    blobs: dict[str, jax.Array] = {spec.input: x}
    for op in spec.ops:
        blobs[op.dst] = _run_op(op, blobs, weights)
    return blobs[spec.output]
