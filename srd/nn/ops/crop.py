"""Cropping: one blob to another's spatial size (U-Net skip connections), or by numpy-style slices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, OneInputOp, Op

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class CropLike(Op):
    """Cut `src` to the spatial size of `like`, starting at (top, left) offsets."""

    src: str
    like: str
    dst: str
    top: int
    left: int

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src, self.like)

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
        src, like = xs
        h, w = like.shape[1], like.shape[2]
        # U-Net skips crop symmetrically; anything else means the tile size is misaligned for this network.
        if src.shape[1] - h != 2 * self.top or src.shape[2] - w != 2 * self.left:
            raise ValueError(
                f"crop of {src.shape[1:3]} to {(h, w)} at ({self.top}, {self.left}) is not centred"
            )
        return src[:, self.top : self.top + h, self.left : self.left + w, :]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[1]


@dataclass(frozen=True)
class Crop(OneInputOp):
    """numpy-style slicing of one blob (ncnn's Crop with starts, ends and axes): per (NHWC axis, start,
    end), keep [start, end) where end > 0 counts from the start, end <= 0 from the end (0: to the end).

    The tile's content is anchored at the top left, so a valid extent e becomes what the smaller tile
    alone would give: min(e, end) - start, or e + end - start for end <= 0.
    """

    src: str
    dst: str
    slices: tuple[tuple[int, int, int], ...]

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        index = [slice(None)] * x.ndim
        for axis, start, end in self.slices:
            dim = x.shape[axis]
            stop = min(dim, end) if end > 0 else dim + end
            if stop <= start:
                raise ValueError(f"Crop [{start}, {end}) of an axis of size {dim}")
            index[axis] = slice(start, stop)
        return x[tuple(index)]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        e = extents[0]
        if e is None:
            return None  # a vector
        for axis, start, end in self.slices:
            if axis in (1, 2):
                column = e[:, axis - 1]
                cut = jnp.minimum(column, end) if end > 0 else column + end
                e = e.at[:, axis - 1].set(cut - start)
        return e
