"""ncnn's bicubic resampling (src/layer/interp.cpp, resize_type 3) as dense per-axis matrices.

Cubic convolution with A = -0.75 and half-pixel centres, the taps beyond an edge folded onto the edge
pixels as ncnn folds them, no antialiasing when shrinking. An image resamples as `Rows @ plane @ Cols.T`;
ncnn computes the horizontal pass first, which changes nothing but the float rounding order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

A = -0.75
Matrix = npt.NDArray[np.float32]


def _coefficients(fx: float) -> tuple[float, float, float, float]:
    """ncnn's interpolate_cubic weights for a fractional position fx (float32 arithmetic)."""
    a = np.float32(A)
    fx0, fx1, fx2 = np.float32(fx + 1), np.float32(fx), np.float32(1 - fx)
    c0 = a * fx0 * fx0 * fx0 - 5 * a * fx0 * fx0 + 8 * a * fx0 - 4 * a
    c1 = (a + 2) * fx1 * fx1 * fx1 - (a + 3) * fx1 * fx1 + 1
    c2 = (a + 2) * fx2 * fx2 * fx2 - (a + 3) * fx2 * fx2 + 1
    c3 = np.float32(1) - c0 - c1 - c2
    return float(c0), float(c1), float(c2), float(c3)


def bicubic_matrix(in_size: int, out_size: int) -> Matrix:
    """The out_size x in_size matrix of ncnn's bicubic resampling along one axis (in_size >= 4)."""
    if in_size < 4:
        raise ValueError(f"ncnn's bicubic needs at least 4 pixels along an axis, got {in_size}")
    scale = in_size / out_size  # a double in ncnn
    matrix = np.zeros((out_size, in_size), np.float32)
    for dx in range(out_size):
        fx = float(np.float32((dx + 0.5) * scale - 0.5))
        sx = int(np.floor(fx))
        fx = float(np.float32(fx - sx))
        a0, a1, a2, a3 = _coefficients(fx)
        if sx <= -1:
            sx, (a0, a1, a2, a3) = 1, (1 - a3, a3, 0.0, 0.0)
        if sx == 0:
            sx, (a0, a1, a2, a3) = 1, (a0 + a1, a2, a3, 0.0)
        if sx == in_size - 2:
            sx, (a0, a1, a2, a3) = in_size - 3, (0.0, a0, a1, a2 + a3)
        if sx >= in_size - 1:
            sx, (a0, a1, a2, a3) = in_size - 3, (0.0, 0.0, a0, 1 - a0)
        for tap, weight in zip(range(sx - 1, sx + 3), (a0, a1, a2, a3), strict=True):
            matrix[dx, tap] += weight
    return matrix


def resize_bicubic(plane: Matrix, out_h: int, out_w: int) -> Matrix:
    """An H x W plane resampled to out_h x out_w as ncnn's Interp resize_type 3 does."""
    rows = bicubic_matrix(plane.shape[0], out_h)
    cols = bicubic_matrix(plane.shape[1], out_w)
    result: Matrix = (rows @ (plane.astype(np.float32) @ cols.T)).astype(np.float32)
    return result
