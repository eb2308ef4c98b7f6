"""The ops of a network graph, each applying itself and reporting its output's valid extent."""

from srd.nn.ops.base import Activation, Extent, LayerWeights, Op, activate, zero_outside
from srd.nn.ops.binary import BinaryKind, BinaryOp
from srd.nn.ops.channel_attention import ChannelSelfAttention
from srd.nn.ops.channels import RepeatChannels
from srd.nn.ops.concat import Concat
from srd.nn.ops.conv import Conv
from srd.nn.ops.crop import Crop, CropLike
from srd.nn.ops.dense import Dense
from srd.nn.ops.depthwise import depthwise_conv
from srd.nn.ops.elementwise import ChannelScale, Eltwise, EltwiseOp
from srd.nn.ops.gated_ffn import SpatialGateFFN
from srd.nn.ops.interp import Interp, ResizeKind
from srd.nn.ops.norm import GroupNorm, LayerNorm
from srd.nn.ops.offset_sample import OffsetSample
from srd.nn.ops.overlap_attention import OverlapCrossAttention
from srd.nn.ops.pixelshuffle import PixelShuffle, PixelUnshuffle
from srd.nn.ops.pointwise import Activate, ChannelAffine
from srd.nn.ops.pooling import GlobalAvgPool, masked_mean
from srd.nn.ops.prelu import PReLU
from srd.nn.ops.spatial_attention import SpatialWindowAttention
from srd.nn.ops.window import (
    CropScaled,
    ResidualMLP,
    SwinBlock,
    WindowAttention,
    WindowPad,
)
from srd.nn.resample import bicubic_matrix

__all__ = [
    "Activate",
    "Activation",
    "BinaryKind",
    "BinaryOp",
    "ChannelAffine",
    "ChannelScale",
    "ChannelSelfAttention",
    "Concat",
    "Conv",
    "Crop",
    "CropLike",
    "CropScaled",
    "Dense",
    "Eltwise",
    "EltwiseOp",
    "Extent",
    "GlobalAvgPool",
    "GroupNorm",
    "Interp",
    "LayerNorm",
    "LayerWeights",
    "OffsetSample",
    "Op",
    "OverlapCrossAttention",
    "PReLU",
    "PixelShuffle",
    "PixelUnshuffle",
    "RepeatChannels",
    "ResidualMLP",
    "ResizeKind",
    "SpatialGateFFN",
    "SpatialWindowAttention",
    "SwinBlock",
    "WindowAttention",
    "WindowPad",
    "activate",
    "bicubic_matrix",
    "depthwise_conv",
    "masked_mean",
    "zero_outside",
]
