"""What srd's native custom calls share in their operands: the activation codes their kernels fuse, and
for the 3x3 ones (srd_winograd_f63[_bf16], srd_conv3x3_direct) the bias buffer with PReLU slopes after
the biases, and the valid extents."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Activation

ACTIVATIONS = (Activation.NONE, Activation.RELU, Activation.LEAKY_RELU)  # the kernels' codes 0, 1, 2
PRELU_CODE = 3  # the 3x3 kernels' per-channel leaky ReLU, its slopes after the biases


def epilogue_operand(
    bias: jax.Array | None, slopes: jax.Array | None, out_channels: int, code: int, name: str
) -> tuple[jax.Array, int]:
    """The kernel's bias buffer and activation code: the biases (empty for none) and `code`; with
    `slopes` (out_channels values) the biases (zeros for none), then the slopes, and PRELU_CODE."""
    b = jnp.zeros((0,), jnp.float32) if bias is None else bias.astype(jnp.float32)
    if slopes is None:
        return b, code
    if slopes.shape != (out_channels,):
        raise ValueError(f"{name}: {slopes.shape} PReLU slopes for {out_channels} outputs")
    b = b if bias is not None else jnp.zeros((out_channels,), jnp.float32)
    return jnp.concatenate([b, slopes.astype(jnp.float32)]), PRELU_CODE


def extent_operand(valid: jax.Array | None) -> jax.Array:
    """Each image's valid rows and columns (N x 2 int32), or the empty N x 2 the kernels read as none."""
    return jnp.zeros((0, 2), jnp.int32) if valid is None else valid.astype(jnp.int32)
