"""ncnn's Interp: nearest-neighbour resizing by integer factors and bicubic resizing by any factor, with
ncnn's own cubic kernel (A = -0.75, half-pixel centres, edge taps folded in, no antialiasing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp, spatial_extent
from srd.nn.resample import bicubic_matrix

RESAMPLE_SCOPE = "resample"  # the name scope of the bicubic matrix products

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


class ResizeKind(Enum):
    """ncnn's Interp resize_type codes srd runs."""

    NEAREST = 1
    BICUBIC = 3


def scaled_size(size: int, scale: float) -> int:
    """ncnn's output size: (int)(size * scale), the product in float32."""
    return int(np.float32(size) * np.float32(scale))


def _clamp_to_extent(x: jax.Array, extent: Extent) -> jax.Array:
    """NHWC `x` with the pixels beyond each sample's valid area replaced by the nearest valid one, so
    taps past the edge read what a smaller tile's edge clamp reads."""
    rows = jnp.minimum(jnp.arange(x.shape[1])[None, :], extent[:, :1] - 1)
    cols = jnp.minimum(jnp.arange(x.shape[2])[None, :], extent[:, 1:] - 1)
    x = jnp.take_along_axis(x, rows[:, :, None, None], axis=1)
    return jnp.take_along_axis(x, cols[:, None, :, None], axis=2)


@dataclass(frozen=True)
class Interp(OneInputOp):
    """Resize height and width by (scale_h, scale_w) to (int)(size * scale); nearest needs integer scales.

    With extents, bicubic clamps its taps at the valid area's edge, as the smaller tile alone does (both
    sample at the same positions, which depend on the scale only).
    """

    src: str
    dst: str
    kind: ResizeKind
    scale_h: float
    scale_w: float

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
        rows = jnp.asarray(bicubic_matrix(h, scaled_size(h, self.scale_h), self.scale_h), x.dtype)
        cols = jnp.asarray(bicubic_matrix(w, scaled_size(w, self.scale_w), self.scale_w), x.dtype)
        highest = jax.lax.Precision.HIGHEST
        with jax.named_scope(RESAMPLE_SCOPE):  # srd.nn.cost leaves resampling out of its count
            y = jnp.einsum("pw,bhwc->bhpc", cols, x, precision=highest)
            return jnp.einsum("oh,bhpc->bopc", rows, y, precision=highest)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        e = spatial_extent(extents, "Interp").astype(jnp.float32)
        scales = jnp.asarray((self.scale_h, self.scale_w), jnp.float32)
        return (e * scales).astype(jnp.int32)
