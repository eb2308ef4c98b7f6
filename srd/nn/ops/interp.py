"""ncnn's Interp: nearest-neighbour resizing by integer factors and bicubic resizing by any factor, with
ncnn's own cubic kernel (A = -0.75, half-pixel centres, edge taps folded in, no antialiasing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.ops.base import Extent, LayerWeights, Op, spatial_extent

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend

_A = np.float32(-0.75)


class ResizeKind(Enum):
    """ncnn's Interp resize_type codes srd runs."""

    NEAREST = 1
    BICUBIC = 3


def scaled_size(size: int, scale: float) -> int:
    """ncnn's output size: (int)(size * scale), the product in float32."""
    return int(np.float32(size) * np.float32(scale))


def _cubic_coeffs(fx: np.float32) -> list[np.float32]:
    """interp.cpp's cubic_coeffs, in float32 as ncnn computes them."""
    one = np.float32(1)
    fx0, fx1, fx2 = fx + one, fx, one - fx
    a0 = _A * fx0 * fx0 * fx0 - 5 * _A * fx0 * fx0 + 8 * _A * fx0 - 4 * _A
    a1 = (_A + 2) * fx1 * fx1 * fx1 - (_A + 3) * fx1 * fx1 + one
    a2 = (_A + 2) * fx2 * fx2 * fx2 - (_A + 3) * fx2 * fx2 + one
    return [np.float32(a0), np.float32(a1), np.float32(a2), np.float32(one - a0 - a1 - a2)]


@cache
def bicubic_matrix(in_size: int, out_size: int, scale: float) -> npt.NDArray[np.float32]:
    """The (out, in) weights of ncnn's bicubic resize by `scale` along one axis (interp.cpp, align_corner
    0). Output pixel dx samples at (dx + 0.5) / scale - 0.5: ncnn steps by the layer's 1 / scale, not
    by in_size / out_size, when the scale is given."""
    if in_size < 4:
        raise ValueError(f"bicubic Interp needs at least 4 pixels along an axis, got {in_size}")
    step = 1.0 / scale
    matrix = np.zeros((out_size, in_size), np.float32)
    for dx in range(out_size):
        fx = np.float32((dx + 0.5) * step - 0.5)
        sx = int(np.floor(fx))
        a = _cubic_coeffs(np.float32(fx - np.float32(sx)))
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


def _clamp_to_extent(x: jax.Array, extent: Extent) -> jax.Array:
    """NHWC `x` with the pixels beyond each sample's valid area replaced by the nearest valid one, so
    taps past the edge read what a smaller tile's edge clamp reads."""
    rows = jnp.minimum(jnp.arange(x.shape[1])[None, :], extent[:, :1] - 1)
    cols = jnp.minimum(jnp.arange(x.shape[2])[None, :], extent[:, 1:] - 1)
    x = jnp.take_along_axis(x, rows[:, :, None, None], axis=1)
    return jnp.take_along_axis(x, cols[:, None, :, None], axis=2)


@dataclass(frozen=True)
class Interp(Op):
    """Resize height and width by (scale_h, scale_w) to (int)(size * scale); nearest needs integer scales.

    With extents, bicubic clamps its taps at the valid area's edge, as the smaller tile alone does (both
    sample at the same positions, which depend on the scale only).
    """

    src: str
    dst: str
    kind: ResizeKind
    scale_h: float
    scale_w: float

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)

    @property
    def output(self) -> str:
        return self.dst

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        if self.kind is ResizeKind.NEAREST:
            return jnp.repeat(jnp.repeat(x, int(self.scale_h), axis=1), int(self.scale_w), axis=2)
        if extents is not None:
            x = _clamp_to_extent(x, spatial_extent(extents, "Interp"))
        h, w = x.shape[1], x.shape[2]
        rows = jnp.asarray(bicubic_matrix(h, scaled_size(h, self.scale_h), self.scale_h))
        cols = jnp.asarray(bicubic_matrix(w, scaled_size(w, self.scale_w), self.scale_w))
        highest = jax.lax.Precision.HIGHEST
        y = jnp.einsum("pw,bhwc->bhpc", cols, x, precision=highest)
        return jnp.einsum("oh,bhpc->bopc", rows, y, precision=highest)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        e = spatial_extent(extents, "Interp").astype(jnp.float32)
        scales = jnp.asarray((self.scale_h, self.scale_w), jnp.float32)
        return (e * scales).astype(jnp.int32)
