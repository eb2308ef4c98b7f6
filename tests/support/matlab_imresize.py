"""MATLAB's ``imresize(..., 'bicubic')`` in numpy, as the SR literature's bicubic baselines were made.

Follows MATLAB's imresize.m: the cubic kernel with a = -0.5 (width 4); when shrinking, the kernel is
stretched by 1/scale and scaled by scale (antialiasing); source coordinates
``u = x / scale + 0.5 * (1 - 1 / scale)`` for 1-based output index x; weights normalised to sum 1 per
output sample; indices out of range mirrored symmetrically (``[1:n, n:-1:1]``, period 2n). The output
size is ``ceil(scale * n)``. Dimensions are resized one at a time, the one shrinking most first (rows
first on a tie), and for uint8 input each pass's result is itself uint8 (``imresizemex`` returns the
input's class), i.e. rounded half away from zero and saturated to 0..255 after every pass.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]

KERNEL_WIDTH = 4.0


def cubic(x: F64Array) -> F64Array:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    result: F64Array = near + far
    return result


def contributions(in_length: int, out_length: int, scale: float) -> tuple[F64Array, I64Array]:
    """Per output sample, the weights and 0-based source indices MATLAB's ``contributions`` computes."""
    if scale < 1:
        width = KERNEL_WIDTH / scale

        def kernel(x: F64Array) -> F64Array:
            return scale * cubic(scale * x)

    else:
        width = KERNEL_WIDTH
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    indices = left + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    source = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero tap columns; harmless, kept for fidelity
    return weights[:, keep], source[:, keep].astype(np.int64)


def _resize_axis(values: F64Array, axis: int, scale: float, out_length: int) -> F64Array:
    weights, indices = contributions(values.shape[axis], out_length, scale)
    moved = np.moveaxis(values, axis, 0)
    gathered = moved[indices]  # out_length x taps x rest
    shape = weights.shape + (1,) * (moved.ndim - 1)
    result = np.einsum("ot...,ot...->o...", gathered, weights.reshape(shape))
    return np.moveaxis(result, 0, axis)


def _round_to_u8(values: F64Array) -> F64Array:
    # MATLAB converts to uint8 by rounding half away from zero and saturating; values below 0 go to 0
    # either way, so floor(x + 0.5) after clipping is the same thing.
    result: F64Array = np.floor(np.clip(values, 0.0, 255.0) + 0.5)
    return result


def imresize(image: npt.NDArray[np.generic], scale: float) -> npt.NDArray[np.generic]:
    """Resize an HxW or HxWxC image by ``scale`` like MATLAB's ``imresize(image, scale, 'bicubic')``.

    uint8 input gives uint8 output (rounded after each pass, as MATLAB does); float input stays float64.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    is_u8 = image.dtype == np.uint8
    if not is_u8 and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8 or floating-point pixels, got {image.dtype}")
    values = image.astype(np.float64)
    out_shape = [math.ceil(scale * n) for n in image.shape[:2]]
    # MATLAB sorts the per-dimension scales; with one scale for both the stable sort keeps rows first.
    for axis in (0, 1):
        values = _resize_axis(values, axis, scale, out_shape[axis])
        if is_u8:
            values = _round_to_u8(values)
    if is_u8:
        return values.astype(np.uint8)
    return values
