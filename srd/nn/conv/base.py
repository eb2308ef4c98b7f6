"""What a convolution backend is: one algorithm for running `Conv` layers, with its kernels prepared once
at load and its bias-plus-activation epilogue fused in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import jax
import numpy as np
import numpy.typing as npt

from srd.nn.graph import ConvAlgorithm
from srd.nn.ops.base import Extent, HostLayerWeights, LayerWeights, activate
from srd.nn.ops.conv import Conv

EpilogueFn = Callable[[jax.Array], jax.Array]
PreparedKernels = dict[str, npt.NDArray[np.float32] | npt.NDArray[np.uint16]]


class ConvBackend(Protocol):
    """One convolution algorithm: its settings name, where it runs, its load-time kernel preparation and
    its traced convolution."""

    @property
    def name(self) -> ConvAlgorithm:
        """The settings' name for it (`engine.conv`)."""
        ...

    def unavailable_reason(self, platform: str) -> str | None:
        """Why it cannot run on a JAX platform ("cpu", "gpu", ...), as an error message; None if it can."""
        ...

    def prepare(self, op: Conv, layer: HostLayerWeights) -> PreparedKernels:
        """The layer's transformed or packed kernels, computed once at load and added to its weights."""
        ...

    def conv(self, x: jax.Array, op: Conv, layer: LayerWeights) -> jax.Array:
        """act(conv(x) + bias), NHWC; `layer` holds "w", "b" (if any) and what `prepare` added."""
        ...

    def conv_parts(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, extent: Extent | None
    ) -> jax.Array | None:
        """act(conv(x) + bias) of x = the channel concatenation of `xs` (one blob, or a Concat's inputs),
        zero past `extent` (each image's valid rows and columns; None: no masking), where this backend
        does that without making x; None where it does not (the caller joins, masks and calls `conv`)."""
        ...

    def conv_prelu(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, slopes: jax.Array, extent: Extent | None
    ) -> jax.Array | None:
        """prelu(conv(x) + bias, slopes) in one pass, for a layer without its own activation whose output
        only a PReLU reads (x and `extent` as for `conv_parts`); None where this backend does not fuse
        them (the caller runs the two ops)."""
        ...

    def conv_sum(
        self,
        x: jax.Array,
        addend: tuple[jax.Array, int, int],
        op: Conv,
        layer: LayerWeights,
        extent: Extent | None,
    ) -> jax.Array | None:
        """act(conv(x + addend) + bias), `addend` = (blob, top, left): the blob's pixels from (top, left)
        on (a U-Net's skip connection, cropped), zero past `extent`, in one pass where this backend reads
        the two blobs without making their sum; None where it does not (the caller runs the sum)."""
        ...

    def compiler_options(self, platform: str) -> Mapping[str, str]:
        """XLA compiler options the programs using this backend want on that platform."""
        ...


def epilogue_for(op: Conv, bias: jax.Array | None) -> EpilogueFn:
    """The bias-plus-activation step a convolution's output goes through."""

    def epilogue(y: jax.Array) -> jax.Array:
        return activate(y if bias is None else y + bias, op.activation, op.slope)

    return epilogue


class UnfusedOps:
    """The ConvBackend hooks of a backend that fuses nothing itself (lax.conv and the jnp Winograd): a
    Concat is joined and masked by the caller, and XLA fuses PReLUs and skip sums into its own loops."""

    def conv_parts(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, extent: Extent | None
    ) -> jax.Array | None:
        return None

    def conv_prelu(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, slopes: jax.Array, extent: Extent | None
    ) -> jax.Array | None:
        return None

    def conv_sum(
        self,
        x: jax.Array,
        addend: tuple[jax.Array, int, int],
        op: Conv,
        layer: LayerWeights,
        extent: Extent | None,
    ) -> jax.Array | None:
        return None
