"""ncnn's bicubic resampling (src/layer/interp.cpp, resize_type 3) as dense per-axis matrices: the Interp
op (srd.nn.ops.interp) and the reference programs' alpha upscale (`bicubic_per_tile`) both use them.

Cubic convolution with A = -0.75 and half-pixel centres, the taps beyond an edge folded onto the edge
pixels as ncnn folds them, no antialiasing when shrinking. A plane resamples as `Rows @ plane @ Cols.T`;
ncnn computes the horizontal pass first, which changes nothing but the float rounding order.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

_A = np.float32(-0.75)
Matrix = npt.NDArray[np.float32]


def _cubic_coeffs(fx: np.float32) -> list[np.float32]:
    """interp.cpp's cubic_coeffs, in float32 as ncnn computes them."""
    one = np.float32(1)
    fx0, fx1, fx2 = fx + one, fx, one - fx
    a0 = _A * fx0 * fx0 * fx0 - 5 * _A * fx0 * fx0 + 8 * _A * fx0 - 4 * _A
    a1 = (_A + 2) * fx1 * fx1 * fx1 - (_A + 3) * fx1 * fx1 + one
    a2 = (_A + 2) * fx2 * fx2 * fx2 - (_A + 3) * fx2 * fx2 + one
    return [np.float32(a0), np.float32(a1), np.float32(a2), np.float32(one - a0 - a1 - a2)]


def _position(dx: int, step: float) -> tuple[int, np.float32]:
    """The first tap and the fraction of output pixel dx, sampled at (dx + 0.5) * step - 0.5."""
    fx = np.float32((dx + 0.5) * step - 0.5)
    sx = int(np.floor(fx))
    return sx, np.float32(fx - np.float32(sx))


@cache
def bicubic_matrix(in_size: int, out_size: int, scale: float) -> Matrix:
    """The (out, in) weights of ncnn's bicubic resize by `scale` along one axis (interp.cpp, align_corner
    0). Output pixel dx samples at (dx + 0.5) / scale - 0.5: ncnn steps by the layer's 1 / scale, not
    by in_size / out_size, when the scale is given. The matrix is shared: do not modify it."""
    if in_size < 4:
        raise ValueError(f"bicubic Interp needs at least 4 pixels along an axis, got {in_size}")
    matrix = np.zeros((out_size, in_size), np.float32)
    for dx in range(out_size):
        sx, fx = _position(dx, 1.0 / scale)
        a = _cubic_coeffs(fx)
        if sx <= -1:
            sx, a = 1, [np.float32(1) - a[3], a[3], np.float32(0), np.float32(0)]
        if sx == 0:
            sx, a = 1, [a[0] + a[1], a[2], a[3], np.float32(0)]
        if sx == in_size - 2:
            sx, a = in_size - 3, [np.float32(0), a[0], a[1], a[2] + a[3]]
        if sx >= in_size - 1:
            sx, a = in_size - 3, [np.float32(0), np.float32(0), a[0], np.float32(1) - a[0]]
        for k in range(4):
            matrix[dx, sx - 1 + k] += a[k]
    return matrix


def _clamped_bicubic_matrix(in_size: int, scale: int) -> Matrix:
    """ncnn reads past the ends of axes shorter than 4 pixels; here their taps are clamped to the edge."""
    matrix = np.zeros((in_size * scale, in_size), np.float32)
    for dx in range(in_size * scale):
        sx, fx = _position(dx, 1.0 / scale)
        for tap, weight in zip(range(sx - 1, sx + 3), _cubic_coeffs(fx), strict=True):
            matrix[dx, min(max(tap, 0), in_size - 1)] += weight
    return matrix


def _upscale_matrix(in_size: int, scale: int) -> Matrix:
    if in_size < 4:
        return _clamped_bicubic_matrix(in_size, scale)
    return bicubic_matrix(in_size, in_size * scale, float(scale))


def bicubic_per_tile(plane: Matrix, scale: int, tile: int) -> Matrix:
    """`plane` upscaled `scale` times by ncnn's bicubic, each tile x tile block on its own (its edges
    folded at the block's border), as realcugan- and realesrgan-ncnn-vulkan upscale alpha."""
    h, w = plane.shape
    out = np.empty((h * scale, w * scale), np.float32)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = plane[y : y + tile, x : x + tile].astype(np.float32)
            bh, bw = block.shape
            rows, cols = _upscale_matrix(bh, scale), _upscale_matrix(bw, scale)
            out[y * scale : (y + bh) * scale, x * scale : (x + bw) * scale] = rows @ block @ cols.T
    return out
