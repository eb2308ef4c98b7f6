"""ncnn's PixelShuffle (mode 0, PyTorch's channel order): channels to an r x r block of pixels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp, spatial_extent

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class PixelShuffle(OneInputOp):
    """out[i*r + sh, j*r + sw, p] = in[i, j, p*r*r + sh*r + sw], NHWC."""

    src: str
    dst: str
    factor: int

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x, r = xs[0], self.factor
        n, h, w, c = x.shape
        if c % (r * r):
            raise ValueError(f"PixelShuffle by {r} of {c} channels")
        blocks = x.reshape(n, h, w, c // (r * r), r, r).transpose(0, 1, 4, 2, 5, 3)
        return blocks.reshape(n, h * r, w * r, c // (r * r))

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return spatial_extent(extents, "PixelShuffle") * self.factor


@dataclass(frozen=True)
class PixelUnshuffle(OneInputOp):
    """PyTorch's pixel_unshuffle, NHWC: out[i, j, p*r*r + sh*r + sw] = in[i*r + sh, j*r + sw, p]; the
    height and width must be multiples of r (the network's tile alignment)."""

    src: str
    dst: str
    factor: int

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x, r = xs[0], self.factor
        n, h, w, c = x.shape
        if h % r or w % r:
            raise ValueError(f"PixelUnshuffle by {r} of a {h}x{w} blob")
        blocks = x.reshape(n, h // r, r, w // r, r, c).transpose(0, 1, 3, 5, 2, 4)
        return blocks.reshape(n, h // r, w // r, c * r * r)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return -(-spatial_extent(extents, "PixelUnshuffle") // self.factor)
