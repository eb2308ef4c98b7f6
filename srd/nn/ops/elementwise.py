"""Ops that combine blobs element by element: sums, products and maxima of equal shapes, and per-channel
scaling of an image blob by a vector (squeeze-excitation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, ManyInputOp, Op, common_extent

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


class EltwiseOp(Enum):
    """Element-wise combinations of blobs of one shape."""

    PROD = 0
    SUM = 1
    MAX = 2


@dataclass(frozen=True)
class Eltwise(ManyInputOp):
    """Combine several blobs of the same shape element by element."""

    srcs: tuple[str, ...]
    dst: str
    op: EltwiseOp = EltwiseOp.SUM
    coeffs: tuple[float, ...] = ()

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        if self.op is EltwiseOp.SUM:
            coeffs = self.coeffs or (1.0,) * len(xs)
            acc = xs[0] if coeffs[0] == 1.0 else xs[0] * coeffs[0]
            for x, c in zip(xs[1:], coeffs[1:], strict=True):
                acc = acc + (x if c == 1.0 else x * c)
            return acc
        acc = xs[0]
        for x in xs[1:]:
            acc = acc * x if self.op is EltwiseOp.PROD else jnp.maximum(acc, x)
        return acc

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return common_extent(extents)


@dataclass(frozen=True)
class ChannelScale(Op):
    """Multiply an NHWC blob by per-sample, per-channel factors from an NC blob (squeeze-excitation)."""

    src: str
    factors: str
    dst: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src, self.factors)

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
        return xs[0] * xs[1][:, None, None, :]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
