"""Cropping one blob to another's spatial size (U-Net skip connections)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax

from srd.nn.ops.base import Extent, LayerWeights, Op

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
