"""Depthwise convolution (PyTorch's Conv2d with groups equal to its channels): each channel convolved with
its own small kernel, zero-padded by half the kernel as PyTorch's "same" padding.

Written as a sum of shifted, per-channel scaled copies of the input, which XLA fuses into one loop over the
output; the grouped convolution of lax.conv_general_dilated runs slower on the CPU for these few taps.
Where an extent is given, the input is zero past each sample's valid area first, so a larger fixed-shape
tile convolves as the smaller tile alone would.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, zero_outside


def depthwise_conv(x: jax.Array, w: jax.Array, b: jax.Array | None, extent: Extent | None) -> jax.Array:
    """NHWC `x` convolved channel by channel with `w` (kh, kw, C) plus the bias `b` (C,), zero-padded
    by half the (odd) kernel, the input zero past `extent` where one is given."""
    kh, kw, _ = w.shape
    if not kh % 2 or not kw % 2:
        raise ValueError(f"depthwise convolution with an even kernel {kh}x{kw}")
    if extent is not None:
        x = zero_outside(x, extent)
    _, h, width, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    w = w.astype(x.dtype)
    y = padded[:, :h, :width] * w[0, 0]
    for i in range(kh):
        for j in range(kw):
            if i or j:
                y = y + padded[:, i : i + h, j : j + width] * w[i, j]
    return y if b is None else y + b.astype(x.dtype)
