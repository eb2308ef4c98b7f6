"""Convolution and transposed convolution layers; the arithmetic is the conv backend's (srd.nn.conv)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from srd.nn.ops.base import (
    Activation,
    Extent,
    HostLayerWeights,
    LayerWeights,
    OneInputOp,
    spatial_extent,
    zero_outside,
)

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend, PreparedKernels


@dataclass(frozen=True)
class Conv(OneInputOp):
    """A 2-D convolution (or, with `transposed`, a stride-s transposed convolution) plus activation.

    `pads` is (top, bottom, left, right): zero padding for a convolution, the rows and columns cut from
    the full output for a transposed convolution (Torch's and ncnn's meaning of `pad` there).
    """

    name: str
    src: str
    dst: str
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: Activation = Activation.NONE
    slope: float = 0.0
    transposed: bool = False

    @property
    def weight_name(self) -> str:
        return self.name

    @property
    def zero_pads(self) -> bool:
        """Whether this is a convolution that pads its input with zeros."""
        return any(self.pads) and not self.transposed

    @property
    def reads_extent(self) -> bool:
        return self.zero_pads

    def out_channels(self, weights: Mapping[str, HostLayerWeights]) -> int | None:
        return int(np.shape(weights[self.name]["w"])[-1]) if self.name in weights else None

    def prepare(self, backend: ConvBackend, weights: HostLayerWeights) -> PreparedKernels:
        return backend.prepare(self, weights)

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        extent = None
        if extents is not None and self.zero_pads:  # only zero-padded convolutions read their extent
            extent = spatial_extent(extents, f"convolution {self.name!r}")
        return self.apply_parts(xs[:1], weights, backend, extent)

    def apply_parts(
        self, parts: Sequence[jax.Array], weights: LayerWeights, backend: ConvBackend, extent: Extent | None
    ) -> jax.Array:
        """The layer on the channel concatenation of `parts` (its input, or the inputs of the Concat that
        made it), whose valid extent is `extent` (None where extents are not tracked)."""
        # A smaller tile run alone is zero-padded right past its real pixels: so is the padded tile.
        mask = extent if self.zero_pads else None
        y = backend.conv_parts(parts, self, weights, mask)
        if y is not None:
            return y
        x = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
        if mask is not None:
            x = zero_outside(x, mask)
        return backend.conv(x, self, weights)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        e = extents[0]
        if e is None:
            raise ValueError(f"convolution {self.name!r} of a vector blob")
        kernel = jnp.asarray(self.kernel, jnp.int32)
        stride = jnp.asarray(self.stride, jnp.int32)
        pads = jnp.asarray((self.pads[0] + self.pads[1], self.pads[2] + self.pads[3]), jnp.int32)
        if self.transposed:
            return (e - 1) * stride + kernel - pads
        return (e + pads - kernel) // stride + 1
