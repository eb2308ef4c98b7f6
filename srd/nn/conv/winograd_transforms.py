"""Winograd F(m x m, 3 x 3) maths for stride-1 3x3 convolutions: the matrices, kernel and tile transforms.

A valid 3x3 convolution is cut into m x m output blocks. Each block's (m+2) x (m+2) input patch goes
through B^T d B, each weight through G g G^T (once, at load: `prepare_weights`), the (m+2)^2 transformed
positions become one batched matmul (one `dot_general`), and A^T M A brings the blocks back, with bias
and activation applied on the way. The transforms are written as sums of strided slices with the
matrices' constant coefficients so that XLA fuses each of them into one elementwise loop. Used by the
"winograd" backend (F(4x4, 3x3), srd.nn.conv.winograd) and to pack the native kernel's F(6x6, 3x3) weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax import lax

Matrix = npt.NDArray[np.float64]
EpilogueFn = Callable[[jax.Array], jax.Array]

# Interpolation points (plus the point at infinity) of Lavin & Gray's F(4,3) and the common F(6,3).
_POINTS: dict[int, tuple[Fraction, ...]] = {
    2: (Fraction(0), Fraction(1), Fraction(-1)),
    4: (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2)),
    6: (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2)),
}
TILE_SIZES = tuple(_POINTS)


@cache
def winograd_matrices(m: int, r: int = 3) -> tuple[Matrix, Matrix, Matrix]:
    """(A^T, G, B^T) of F(m, r) from Cook-Toom points: y = A^T [(G g) * (B^T d)] for 1-D correlation."""
    points = _POINTS[m]
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m},{r}) needs {n - 1} finite points")
    at = [[p**i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = []
    for j, p in enumerate(points):
        f = Fraction(1)
        for q_index, q in enumerate(points):
            if q_index != j:
                f *= p - q
        g.append([p**k / f for k in range(r)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    # B^T follows from A^T and G: sum_j A^T[i,j] G[j,k] B^T[j,l] = [l == i + k] for all i, k, l.
    at_f, g_f = np.array(at, np.float64), np.array(g, np.float64)
    system = np.einsum("ij,jk->ikj", at_f, g_f).reshape(m * r, n)
    target = np.zeros((m, r, n))
    for i in range(m):
        for k in range(r):
            target[i, k, i + k] = 1.0
    bt_t, *_ = np.linalg.lstsq(system, target.reshape(m * r, n), rcond=None)
    bt = np.round(bt_t * 64) / 64  # the exact solution has dyadic entries; rounding removes lstsq noise
    if not np.allclose(system @ bt, target.reshape(m * r, n), atol=1e-12):
        raise AssertionError(f"no B^T for F({m},{r}) with these points")
    return at_f, g_f, bt


def transform_kernel(w: npt.ArrayLike, m: int) -> npt.NDArray[np.float32]:
    """U = G g G^T for an HWIO 3x3 kernel, as (m+2)^2 x I x O float32 (computed in float64)."""
    _, g, _ = winograd_matrices(m)
    w64 = np.asarray(w, np.float64)
    u: npt.NDArray[np.float64] = np.einsum("ah,hwio,bw->abio", g, w64, g)
    return u.reshape(-1, *w64.shape[2:]).astype(np.float32)


def transform_kernel_traced(w: jax.Array, m: int) -> jax.Array:
    """`transform_kernel` inside jit, in float32, for weights that were not prepared at load."""
    _, g, _ = winograd_matrices(m)
    gj = jnp.asarray(g, w.dtype)
    u = jnp.einsum("ah,hwio,bw->abio", gj, w, gj, precision=lax.Precision.HIGHEST)
    return u.reshape(-1, *w.shape[2:])


def _combine(coeffs: npt.NDArray[np.float64], terms: Sequence[jax.Array]) -> jax.Array:
    """sum_i coeffs[i] * terms[i], skipping zeros and multiplying only where the coefficient is not +-1."""
    acc: jax.Array | None = None
    for c, t in zip(coeffs, terms, strict=True):
        if c == 0:
            continue
        if acc is None:
            acc = t if c == 1 else -t if c == -1 else t * np.float32(c)
        elif c == 1:
            acc = acc + t
        elif c == -1:
            acc = acc - t
        else:
            acc = acc + t * np.float32(c)
    if acc is None:
        return jnp.zeros_like(terms[0])
    return acc


@dataclass(frozen=True)
class Planes:
    """An NHWC image cut into m x m phase planes: plane r*m+s holds pixels (m*i + r, m*j + s) at (i, j).

    Consecutive Winograd layers read and write this layout directly, so no layer interleaves its blocks.
    `height` and `width` are the valid pixels; planes beyond them hold values nobody reads.
    """

    m: int
    planes: tuple[jax.Array, ...]
    height: int
    width: int


def to_planes(x: jax.Array, m: int) -> Planes:
    """Cut NHWC `x` into m x m phase planes (padding the bottom and right with zeros)."""
    batch, h, w, c = x.shape
    th, tw = -(-h // m), -(-w // m)
    x = jnp.pad(x, ((0, 0), (0, th * m - h), (0, tw * m - w), (0, 0))).reshape(batch, th, m, tw, m, c)
    return Planes(m, tuple(x[:, :, r, :, s] for r in range(m) for s in range(m)), h, w)


def from_planes(p: Planes) -> jax.Array:
    """Interleave phase planes back into NHWC, cut to the valid size."""
    m = p.m
    batch, th, tw, c = p.planes[0].shape
    rows = [jnp.stack(p.planes[r * m : (r + 1) * m], axis=3) for r in range(m)]
    y = jnp.stack(rows, axis=2).reshape(batch, th * m, tw * m, c)
    return y[:, : p.height, : p.width]


def _shift(plane: jax.Array, di: int, dj: int) -> jax.Array:
    """Plane values at block (i + di, j + dj), zero past the end."""
    if di == 0 and dj == 0:
        return plane
    return jnp.pad(plane, ((0, 0), (0, di), (0, dj), (0, 0)))[:, di:, dj:]


def winograd_layer(p: Planes, u: jax.Array, epilogue: EpilogueFn | None = None) -> Planes:
    """Valid stride-1 3x3 convolution with transformed kernel `u` ((m+2)^2, C, K), planes in and out."""
    m = p.m
    a = m + 2
    at, _, bt = winograd_matrices(m)
    # B^T d B, rows first: each (p, s) row mix reads the planes of column phase s, blocks i and i+1.
    mixed = {
        (i, s): _combine(bt[i], [_shift(p.planes[(r % m) * m + s], r // m, 0) for r in range(a)])
        for i in range(a)
        for s in range(m)
    }
    v = [
        _combine(bt[q], [_shift(mixed[i, c % m], 0, c // m) for c in range(a)])
        for i in range(a)
        for q in range(a)
    ]
    prods = [lax.dot_general(vi, u[k], (((3,), (0,)), ((), ()))) for k, vi in enumerate(v)]
    # A^T M A, rows first; bias and activation ride along in the last step's loop.
    rows = {(r, q): _combine(at[r], [prods[i * a + q] for i in range(a)]) for r in range(m) for q in range(a)}
    out = []
    for r in range(m):
        for s in range(m):
            y = _combine(at[s], [rows[r, q] for q in range(a)])
            out.append(y if epilogue is None else epilogue(y))
    return Planes(m, tuple(out), p.height - 2, p.width - 2)


def winograd_conv3x3(x: jax.Array, u: jax.Array, m: int, epilogue: EpilogueFn | None = None) -> jax.Array:
    """Valid stride-1 3x3 convolution of NHWC `x` with transformed kernel `u` ((m+2)^2, C, K)."""
    return from_planes(winograd_layer(to_planes(x, m), u, epilogue))
