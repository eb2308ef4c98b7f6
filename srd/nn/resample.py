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
    """The out_size x in_size matrix of ncnn's bicubic resampling along one axis. ncnn reads past the
    ends of axes shorter than 4 pixels; here their taps are clamped to the edge pixels instead."""
    if in_size < 4:
        return _clamped_bicubic_matrix(in_size, out_size)
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


def _clamped_bicubic_matrix(in_size: int, out_size: int) -> Matrix:
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size), np.float32)
    for dx in range(out_size):
        fx = float(np.float32((dx + 0.5) * scale - 0.5))
        sx = int(np.floor(fx))
        for tap, weight in zip(range(sx - 1, sx + 3), _coefficients(fx - sx), strict=True):
            matrix[dx, min(max(tap, 0), in_size - 1)] += weight
    return matrix


def bicubic_per_tile(plane: Matrix, scale: int, tile: int) -> Matrix:
    """`plane` upscaled `scale` times by ncnn's bicubic, each tile x tile block on its own (its edges
    folded at the block's border), as realcugan- and realesrgan-ncnn-vulkan upscale alpha."""
    h, w = plane.shape
    out = np.empty((h * scale, w * scale), np.float32)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = plane[y : y + tile, x : x + tile]
            bh, bw = block.shape
            out[y * scale : (y + bh) * scale, x * scale : (x + bw) * scale] = resize_bicubic(
                block, bh * scale, bw * scale
            )
    return out


def resize_bicubic(plane: Matrix, out_h: int, out_w: int) -> Matrix:
    """An H x W plane resampled to out_h x out_w as ncnn's Interp resize_type 3 does."""
    rows = bicubic_matrix(plane.shape[0], out_h)
    cols = bicubic_matrix(plane.shape[1], out_w)
    result: Matrix = (rows @ (plane.astype(np.float32) @ cols.T)).astype(np.float32)
    return result
