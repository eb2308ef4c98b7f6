"""Fully connected layers on vectors (ncnn's InnerProduct), as in squeeze-excitation blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import numpy as np

from srd.nn.ops.base import Activation, Extent, HostLayerWeights, LayerWeights, OneInputOp, activate

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


@dataclass(frozen=True)
class Dense(OneInputOp):
    """A fully connected layer on NC activations (ncnn's InnerProduct)."""

    name: str
    src: str
    dst: str
    activation: Activation = Activation.NONE
    slope: float = 0.0

    @property
    def weight_name(self) -> str:
        return self.name

    def out_channels(self, weights: Mapping[str, HostLayerWeights]) -> int | None:
        return int(np.shape(weights[self.name]["w"])[-1]) if self.name in weights else None

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        y = xs[0] @ weights["w"]
        if "b" in weights:
            y = y + weights["b"]
        return activate(y, self.activation, self.slope)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return None  # a vector
