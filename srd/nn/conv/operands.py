"""What srd's native custom calls share in their operands: the activation codes their kernels fuse, the
element types of the activations they read and write (float32 or bfloat16), and for the 3x3 ones
(srd_winograd_f63[_bf16], srd_conv3x3_direct) the bias buffer with PReLU slopes after the biases, and
the valid extents."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.ops.base import Activation

ACTIVATIONS = (Activation.NONE, Activation.RELU, Activation.LEAKY_RELU)  # the kernels' codes 0, 1, 2
PRELU_CODE = 3  # the 3x3 kernels' per-channel leaky ReLU, its slopes after the biases
# The activations' element types every native kernel reads and writes (bfloat16: srd/_native/wino_layer.h,
# rounded to nearest even on write; "native-bf16" keeps the big layers' activations in it).
FLOAT32: np.dtype[Any] = np.dtype(np.float32)
BFLOAT16: np.dtype[Any] = np.dtype(jnp.bfloat16)
ACTIVATION_DTYPES = (FLOAT32, BFLOAT16)


def activation_operand(x: jax.Array) -> jax.Array:
    """`x` as a native kernel reads it: float32 or bfloat16 as it is, any other type as float32."""
    return x if x.dtype in ACTIVATION_DTYPES else x.astype(jnp.float32)


def output_dtype(dtype: npt.DTypeLike, name: str) -> np.dtype[Any]:
    """A native kernel's output type, checked: float32 or bfloat16."""
    out = np.dtype(dtype)
    if out not in ACTIVATION_DTYPES:
        raise ValueError(f"{name}: outputs are float32 or bfloat16, not {out}")
    return out


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
