"""DySample's sampling step ("Learning to Upsample by Learning to Sample", Liu et al. 2023), as spandrel's
DySample computes it: each group of channels is sampled bilinearly at learned positions, `scale` x
`scale` output pixels per input pixel.

The network computes the offsets (a 1x1 convolution times the sigmoid of another, halved, plus the fixed
initial positions); this op turns them into sampling positions and samples. Following spandrel and
PyTorch's F.grid_sample exactly:

- offset channel c * (G * s * s) + g * s * s + i * s + j is coordinate c (0: x, 1: y) of output pixel
  (y * s + i, x * s + j) of channel group g (G groups of consecutive channels), which samples around
  input pixel (y, x): the pixel-shuffled layout spandrel builds its grid with;
- the grid is normalised as 2 * (p + 0.5 + offset) / size - 1 over the blob's width and height, and
  grid_sample (align_corners=False) maps it back to pixels as (g + 1) * size / 2 - 0.5, as PyTorch's
  vectorised CPU kernel does (a sample position of p + offset, to rounding);
- padding_mode="border": positions are clamped to [0, size - 1]; then bilinear interpolation, the
  neighbours right of or below the last pixel counting zero (their weight is zero at the clamp).

Where extents are tracked, `size` is each tile's valid width and height, so a partial edge tile samples
what the smaller tile run alone would: its border is the valid area's edge, not the padded shape's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, Op, spatial_extent

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


def _positions(offset: jax.Array, base: jax.Array, size: jax.Array) -> jax.Array:
    """Sample positions along one axis, in pixels and clamped to the border, from offsets (B, ...)
    broadcast against the pixel centres `base` and each sample's valid `size` (B,), both float32."""
    size = size.reshape((-1,) + (1,) * (offset.ndim - 1))
    grid = 2 * (base + offset) / size - 1  # spandrel's normalised grid
    pixel = (grid + 1) * (size * 0.5) - 0.5  # grid_sample's unnormalisation (align_corners=False)
    return jnp.clip(pixel, 0, size - 1)


@dataclass(frozen=True)
class OffsetSample(Op):
    """Bilinear sampling of `src` (B, H, W, C) at the positions `offsets` (B, H, W, 2 * groups * scale^2)
    give, into (B, scale * H, scale * W, C): DySample without its 1x1 convolutions."""

    src: str
    offsets: str
    dst: str
    scale: int
    groups: int

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src, self.offsets)

    @property
    def output(self) -> str:
        return self.dst

    @property
    def reads_extent(self) -> bool:
        return True  # its border is the valid area's edge

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x, offsets = xs
        B, H, W, C = x.shape
        s, G = self.scale, self.groups
        if C % G or offsets.shape != (B, H, W, 2 * G * s * s):
            raise ValueError(
                f"OffsetSample of {x.shape} by {s} in {G} groups with offsets shaped {offsets.shape}"
            )
        if extents is not None:
            valid = spatial_extent(extents, "OffsetSample")
        else:
            valid = jnp.broadcast_to(jnp.array([H, W], jnp.int32), (B, 2))
        vh, vw = valid[:, 0].astype(jnp.float32), valid[:, 1].astype(jnp.float32)
        # (B, y, x, coordinate, group, i, j) -> each coordinate as (B, y, i, x, j, group): output order.
        split = offsets.astype(jnp.float32).reshape(B, H, W, 2, G, s, s)
        off_x = split[:, :, :, 0].transpose(0, 1, 4, 2, 5, 3)
        off_y = split[:, :, :, 1].transpose(0, 1, 4, 2, 5, 3)
        centre_x = (jnp.arange(W, dtype=jnp.float32) + 0.5)[None, None, None, :, None, None]
        centre_y = (jnp.arange(H, dtype=jnp.float32) + 0.5)[None, :, None, None, None, None]
        px = _positions(off_x, centre_x, vw).reshape(B, s * H, s * W, G)
        py = _positions(off_y, centre_y, vh).reshape(B, s * H, s * W, G)
        x0, y0 = jnp.floor(px), jnp.floor(py)
        west, north = px - x0, py - y0  # distances to the west and north neighbours
        east, south = 1 - west, 1 - north
        col, row = x0.astype(jnp.int32), y0.astype(jnp.int32)
        # The east and south neighbours past the valid area count zero (PyTorch masks them).
        has_east = col + 1 < valid[:, 1, None, None, None]
        has_south = row + 1 < valid[:, 0, None, None, None]
        # Rows of one group's channels at one pixel, in NHWC order: row ((b * H + y) * W + x) * G + g, so
        # each neighbour is one gather of whole rows, straight into the output's layout.
        table = x.reshape(B * H * W * G, C // G)
        first = (jnp.arange(B, dtype=jnp.int32) * H)[:, None, None, None]
        group = jnp.arange(G, dtype=jnp.int32)

        def gather(r: jax.Array, c: jax.Array) -> jax.Array:
            # Clamped into the blob; a neighbour past the valid area is dropped below.
            index = ((first + jnp.minimum(r, H - 1)) * W + jnp.minimum(c, W - 1)) * G + group
            return jnp.take(table, index, axis=0, mode="clip").astype(jnp.float32)  # (B, sH, sW, G, C/G)

        def spread(a: jax.Array) -> jax.Array:
            return a[..., None]  # a weight or mask per group, over its channels

        # Where a neighbour is absent its value is dropped, not multiplied by zero (it may be anything).
        ne_val = jnp.where(spread(has_east), gather(row, col + 1), 0)
        sw_val = jnp.where(spread(has_south), gather(row + 1, col), 0)
        se_val = jnp.where(spread(has_east & has_south), gather(row + 1, col + 1), 0)
        out = (
            gather(row, col) * spread(south * east)
            + ne_val * spread(south * west)
            + sw_val * spread(north * east)
            + se_val * spread(north * west)
        )  # summed in PyTorch's order
        return out.reshape(B, s * H, s * W, C).astype(x.dtype)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return spatial_extent(extents, "OffsetSample") * self.scale
