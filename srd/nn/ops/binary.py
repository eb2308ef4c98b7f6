"""ncnn's BinaryOp: two blobs (or a blob and a scalar) combined element by element, with ncnn's
broadcasting of a per-channel vector over an image blob."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Extent, LayerWeights, ManyInputOp, common_extent

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


class BinaryKind(Enum):
    """ncnn's BinaryOp op_type codes (binaryop.h) srd runs."""

    ADD = 0
    SUB = 1
    MUL = 2
    DIV = 3
    MAX = 4
    MIN = 5
    POW = 6
    RSUB = 7
    RDIV = 8


_FUNCTIONS: dict[BinaryKind, Callable[[jax.Array, jax.Array], jax.Array]] = {
    BinaryKind.ADD: jnp.add,
    BinaryKind.SUB: jnp.subtract,
    BinaryKind.MUL: jnp.multiply,
    BinaryKind.DIV: jnp.divide,
    BinaryKind.MAX: jnp.maximum,
    BinaryKind.MIN: jnp.minimum,
    BinaryKind.POW: jnp.power,
    BinaryKind.RSUB: lambda a, b: b - a,
    BinaryKind.RDIV: lambda a, b: b / a,
}


def _broadcastable(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """ncnn's rule for the shapes srd meets: equal shapes, or an image (B, H, W, C) with a (B, C) vector
    of its channel count, which then applies per channel."""
    if a.ndim == 4 and b.ndim == 2:
        b = b[:, None, None, :]
    elif a.ndim == 2 and b.ndim == 4:
        a = a[:, None, None, :]
    if a.shape[1:] != b.shape[1:] and not (a.shape[1:3] == (1, 1) or b.shape[1:3] == (1, 1)):
        raise ValueError(f"BinaryOp of blobs shaped {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"BinaryOp of blobs with {a.shape[-1]} and {b.shape[-1]} channels")
    return a, b


@dataclass(frozen=True)
class BinaryOp(ManyInputOp):
    """`kind` of two blobs, or of one blob and `scalar` when `srcs` has one name (ncnn's with_scalar)."""

    srcs: tuple[str, ...]
    dst: str
    kind: BinaryKind = BinaryKind.ADD
    scalar: float = 0.0

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        if len(xs) == 1:
            return _FUNCTIONS[self.kind](xs[0], jnp.asarray(self.scalar, xs[0].dtype))
        a, b = _broadcastable(xs[0], xs[1])
        y = _FUNCTIONS[self.kind](a, b)
        if a.shape != b.shape:
            # An image blob with a per-channel vector (a squeeze-excitation's scale) keeps the image's type:
            # bfloat16 activations ("native-bf16") stay bfloat16 rather than widening to the vector's.
            y = y.astype((a if a.size >= b.size else b).dtype)
        return y

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return common_extent(extents)
