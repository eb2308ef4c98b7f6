"""The ops of a network graph, each applying itself and reporting its output's valid extent."""

from srd.nn.ops.base import Activation, Extent, LayerWeights, Op, activate, zero_outside
from srd.nn.ops.binary import BinaryKind, BinaryOp
from srd.nn.ops.concat import Concat
from srd.nn.ops.conv import Conv
from srd.nn.ops.crop import Crop, CropLike
from srd.nn.ops.dense import Dense
from srd.nn.ops.elementwise import ChannelScale, Eltwise, EltwiseOp
from srd.nn.ops.interp import Interp, ResizeKind
from srd.nn.ops.pixelshuffle import PixelShuffle, PixelUnshuffle
from srd.nn.ops.pointwise import Activate, ChannelAffine
from srd.nn.ops.pooling import GlobalAvgPool, masked_mean
from srd.nn.ops.prelu import PReLU
from srd.nn.resample import bicubic_matrix

__all__ = [
    "Activate",
    "Activation",
    "BinaryKind",
    "BinaryOp",
    "ChannelAffine",
    "ChannelScale",
    "Concat",
    "Conv",
    "Crop",
    "CropLike",
    "Dense",
    "Eltwise",
    "EltwiseOp",
    "Extent",
    "GlobalAvgPool",
    "Interp",
    "LayerWeights",
    "Op",
    "PReLU",
    "PixelShuffle",
    "PixelUnshuffle",
    "ResizeKind",
    "activate",
    "bicubic_matrix",
    "masked_mean",
    "zero_outside",
]
