"""The pure numerical core: network graphs (ops over named blobs) plus weight pytrees, run with JAX by a
convolution backend, in tiles of fixed shapes. Nothing here touches files, images or logging.

The JAX-free names (the graph's types and the convolution algorithms' names, which the settings schema
reads) load eagerly; the rest on first use, so importing `srd.nn.graph` does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from srd.nn.graph import (
    CONV_ALGORITHMS,
    DEFAULT_CONV_ALGORITHM,
    ConvAlgorithm,
    NetworkSpec,
    PreparedWeights,
    Weights,
)

if TYPE_CHECKING:
    from srd.nn.conv import BACKENDS, ConvBackend, backend_named, resolve
    from srd.nn.geometry import infer_geometry
    from srd.nn.network import apply_network, conv2d, prepare_weights
    from srd.nn.ops import (
        Activation,
        BinaryOp,
        ChannelScale,
        Concat,
        Conv,
        Crop,
        CropLike,
        Dense,
        Eltwise,
        EltwiseOp,
        GlobalAvgPool,
        Interp,
        Op,
        PixelShuffle,
        PReLU,
        activate,
    )
    from srd.nn.tile_plan import round_tile
    from srd.nn.tiling import TileRunner, upscale_untiled

_LAZY = {
    "BACKENDS": "srd.nn.conv",
    "ConvBackend": "srd.nn.conv",
    "backend_named": "srd.nn.conv",
    "resolve": "srd.nn.conv",
    "infer_geometry": "srd.nn.geometry",
    "apply_network": "srd.nn.network",
    "conv2d": "srd.nn.network",
    "prepare_weights": "srd.nn.network",
    **dict.fromkeys(
        [
            "Activation",
            "BinaryOp",
            "ChannelScale",
            "Concat",
            "Conv",
            "Crop",
            "CropLike",
            "Dense",
            "Eltwise",
            "EltwiseOp",
            "GlobalAvgPool",
            "Interp",
            "Op",
            "PReLU",
            "PixelShuffle",
            "activate",
        ],
        "srd.nn.ops",
    ),
    "TileRunner": "srd.nn.tiling",
    "round_tile": "srd.nn.tile_plan",
    "upscale_untiled": "srd.nn.tiling",
}

__all__ = [
    "BACKENDS",
    "CONV_ALGORITHMS",
    "DEFAULT_CONV_ALGORITHM",
    "Activation",
    "BinaryOp",
    "ChannelScale",
    "Concat",
    "Conv",
    "ConvAlgorithm",
    "ConvBackend",
    "Crop",
    "CropLike",
    "Dense",
    "Eltwise",
    "EltwiseOp",
    "GlobalAvgPool",
    "Interp",
    "NetworkSpec",
    "Op",
    "PReLU",
    "PixelShuffle",
    "PreparedWeights",
    "TileRunner",
    "Weights",
    "activate",
    "apply_network",
    "backend_named",
    "conv2d",
    "infer_geometry",
    "prepare_weights",
    "resolve",
    "round_tile",
    "upscale_untiled",
]


def __getattr__(name: str) -> object:
    """Load the JAX-dependent names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srd.nn' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
