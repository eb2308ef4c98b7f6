"""Static description of a waifu2x-family network: ops (srd.nn.ops) over named blobs, and its geometry.

A network is `NetworkSpec` (hashable, static under jit) plus a weights pytree
`{layer_name: {"w": array, "b": array}}`. Convolution weights are stored HWIO, ready for
`lax.conv_general_dilated` with NHWC activations. This module imports no JAX: the settings schema reads
the convolution algorithms' names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

if TYPE_CHECKING:  # numpy only names the weights' types here: the settings schema imports this module
    import numpy as np
    import numpy.typing as npt

    from srd.nn.ops.base import Op

Weights: TypeAlias = "dict[str, dict[str, npt.NDArray[np.float32]]]"
# Weights plus each layer's prepared kernels: float32, except bfloat16 ones packed as uint16 bits.
PreparedWeights: TypeAlias = "dict[str, dict[str, npt.NDArray[np.float32] | npt.NDArray[np.uint16]]]"
ConvAlgorithm = Literal["auto", "direct", "native", "native-bf16", "winograd"]
# The names of the convolution backends (srd.nn.conv), plus "auto": "native" on the CPU when srd's
# extension is built, else "direct". See srd.nn.conv's modules for what each one does.
DEFAULT_CONV_ALGORITHM: ConvAlgorithm = "auto"
CONV_ALGORITHMS: tuple[ConvAlgorithm, ...] = get_args(ConvAlgorithm)


class Border(Enum):
    """What a tile reads beyond the image's edge (srd.nn.tiling)."""

    REPLICATE = "replicate"  # the edge pixel, repeated (waifu2x)
    REFLECT = "reflect"  # mirrored about the edge pixel, which is not repeated (ncnn border type 2)


@dataclass(frozen=True)
class NetworkSpec:
    """Everything about a network that is not a weight: ops in execution order and its geometry.

    `context` is the replicate padding (input pixels) each side needs so that the output covers exactly
    `scale` times the unpadded input; `align` is the multiple the unpadded tile size must be.
    """

    arch: str
    ops: tuple[Op, ...]
    input: str
    output: str
    in_channels: int
    out_channels: int
    scale: int
    context: int
    align: int = 1

    @property
    def tile_dependent(self) -> bool:
        """Whether the output depends on the tile size: some op (global pooling) sees the whole tile."""
        return any(op.is_global for op in self.ops)

    @property
    def keeps_size(self) -> bool:
        """Whether it pads its own convolutions with zeros (the ESRGAN family) rather than consuming a
        context of real pixels: tiles then need an overlap read and cropped (srd.nn.tiling)."""
        return any(op.reads_extent and not op.is_global for op in self.ops)

    @property
    def tracks_extents(self) -> bool:
        """Whether partial tiles need their valid extents: some op (global pooling, a zero-padded
        convolution) computes something else over a larger fixed shape than over the real pixels."""
        return any(op.reads_extent for op in self.ops)
