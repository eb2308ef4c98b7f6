"""The ops of a network graph, each applying itself and reporting its output's valid extent."""

from srd.nn.ops.base import Activation, Extent, LayerWeights, Op, activate
from srd.nn.ops.conv import Conv
from srd.nn.ops.crop import CropLike
from srd.nn.ops.dense import Dense
from srd.nn.ops.elementwise import ChannelScale, Eltwise, EltwiseOp
from srd.nn.ops.pooling import GlobalAvgPool, masked_mean

__all__ = [
    "Activation",
    "ChannelScale",
    "Conv",
    "CropLike",
    "Dense",
    "Eltwise",
    "EltwiseOp",
    "Extent",
    "GlobalAvgPool",
    "LayerWeights",
    "Op",
    "activate",
    "masked_mean",
]
