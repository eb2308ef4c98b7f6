"""RealPLKSR (neosr's variant of PLKSR, Lee et al. 2024, "Partial Large Kernel CNNs for Efficient
Super-Resolution"), with its layer-norm and DySample options, as spandrel 0.4.2 detects and runs it.

`feats.0` is a 3x3 convolution to `dim` channels; blocks `feats.1` .. `feats.n` each compute, from x:
an optional per-pixel LayerNorm over channels (eps 1e-6), the channel mixer (3x3 convolution to 2 dim,
Mish, 3x3 convolution back), the large-kernel convolution of the first `pdim` channels only (the others
pass unchanged), the optional element-wise attention h * sigmoid(conv3x3(h)), a 1x1 refinement, GroupNorm
with 4 groups (eps 1e-5) where there is no LayerNorm, plus x. `feats.n+1` is a dropout (no keys, inert in
eval) and `feats.n+2` a 3x3 convolution to 3 * scale^2 channels, to which the input is added with each
channel repeated scale^2 times in a row (torch.repeat_interleave); then a pixel shuffle, or DySample
(`to_img`: offsets from two 1x1 convolutions, bilinear sampling, srd.nn.ops.offset_sample; then a 1x1
`end_conv` at scales other than 1), with 4 channel groups at even scales and 3 at odd ones.

GroupNorm's statistics cover the whole tile, so the output depends on the tile (as spandrel's on the
image it is given): srd's 10 px of mirrored context a side and the valid extent of an edge tile make a
one-tile image's result the reference forward on the mirrored image.
"""

from __future__ import annotations

import math

from srd.errors import ModelError
from srd.models.community.base import INPUT, Architecture, CommunityNet, GraphBuilder, require
from srd.models.statedict import StateDict
from srd.nn.ops import Activation, Crop
from srd.nn.ops.channels import RepeatChannels
from srd.nn.ops.norm import GroupNorm, LayerNorm
from srd.nn.ops.offset_sample import OffsetSample

_NAME = "RealPLKSR"
_NORM_GROUPS = 4  # spandrel's norm_groups: not detectable from the file, and always 4
_IMAGE_CHANNELS = 3  # spandrel's in_ch and out_ch, fixed


def _seq_len(state: StateDict, prefix: str) -> int:
    """spandrel's get_seq_len: one more than the largest index `i` of the keys `prefix.i.*`."""
    indices = {k[len(prefix) + 1 :].split(".", 1)[0] for k in state if k.startswith(f"{prefix}.")}
    return max((int(i) for i in indices if i.isdigit()), default=-1) + 1


def _layer_norm(g: GraphBuilder, key: str, src: str) -> str:
    weight, bias = g.tensor(f"{key}.weight"), g.tensor(f"{key}.bias")
    if weight.shape != (g.channels[src],) or bias.shape != weight.shape:
        raise ModelError(f"{_NAME}: {key} is shaped {weight.shape}, not ({g.channels[src]},)")
    dst = f"{key}#out"
    g.ops.append(LayerNorm(key, src, dst, 1e-6))
    g.weights[key] = {"w": weight, "b": bias}
    g.channels[dst] = g.channels[src]
    return dst


def _group_norm(g: GraphBuilder, key: str, src: str) -> str:
    weight, bias = g.tensor(f"{key}.weight"), g.tensor(f"{key}.bias")
    channels = g.channels[src]
    if weight.shape != (channels,) or bias.shape != weight.shape:
        raise ModelError(f"{_NAME}: {key} is shaped {weight.shape}, not ({channels},)")
    if channels % _NORM_GROUPS:
        raise ModelError(f"{_NAME}: GroupNorm {key} of {channels} channels in {_NORM_GROUPS} groups")
    dst = f"{key}#out"
    g.ops.append(GroupNorm(key, src, dst, _NORM_GROUPS))
    g.weights[key] = {"weight": weight, "bias": bias}
    g.channels[dst] = channels
    return dst


def _channels(g: GraphBuilder, src: str, start: int, end: int, dst: str) -> str:
    """Channels [start, end) of `src` (end 0: to the last)."""
    g.ops.append(Crop(src, dst, ((3, start, end),)))
    g.channels[dst] = (end or g.channels[src]) - start
    return dst


def _partial_conv(g: GraphBuilder, key: str, src: str) -> str:
    """PLKConv2d in eval: the convolution `key` of the first channels (as many as it takes), the others
    kept, in place."""
    pdim = int(require(g.state, f"{key}.weight", _NAME).shape[1])
    dim = g.channels[src]
    if not 0 < pdim <= dim:
        raise ModelError(f"{_NAME}: {key} takes {pdim} channels of {dim}")
    if pdim == dim:
        return g.conv(key, src)
    head = g.conv(key, _channels(g, src, 0, pdim, f"{key}#head"))
    return g.concat(head, _channels(g, src, pdim, 0, f"{key}#rest"))


def _block(g: GraphBuilder, key: str, x: str, layer_norm: bool, attention: bool) -> str:
    """One PLKBlock (its forward in eval, the identity layers left out)."""
    h = _layer_norm(g, f"{key}.layer_norm", x) if layer_norm else x
    h = g.conv(f"{key}.channel_mixer.0", h, Activation.MISH)
    h = g.conv(f"{key}.channel_mixer.2", h)
    h = _partial_conv(g, f"{key}.lk.conv", h)
    if attention:
        h = g.mul(h, g.conv(f"{key}.attn.f.0", h, Activation.SIGMOID))
    h = g.conv(f"{key}.refine", h)
    if not layer_norm:
        h = _group_norm(g, f"{key}.norm", h)
    return g.add(h, x)


def _dysample(g: GraphBuilder, src: str, scale: int) -> str:
    """spandrel's DySample of `src` (3 * scale^2 channels) into 3: offset(x) * sigmoid(scope(x)) * 0.5 +
    init_pos (the file's buffer) are the sampling offsets, then end_conv where the scale is not 1."""
    groups = _IMAGE_CHANNELS if scale % 2 else 4
    init = g.tensor("to_img.init_pos").reshape(-1)
    if init.size != 2 * groups * scale * scale or g.channels[src] % groups:
        raise ModelError(
            f"{_NAME}: to_img.init_pos has {init.size} positions, not 2 x {groups} groups x {scale}^2"
        )
    offset = g.conv("to_img.offset", src)
    scope = g.conv("to_img.scope", src, Activation.SIGMOID)
    if g.channels[offset] != init.size or g.channels[scope] != init.size:
        raise ModelError(f"{_NAME}: DySample's offset layers do not give {init.size} channels")
    half = g.activate(g.mul(offset, scope), Activation.NONE, scale=0.5)
    positions = g.affine(half, (float(v) for v in init), (1.0,) * init.size)
    dst = "to_img#sampled"
    g.ops.append(OffsetSample(src, positions, dst, scale, groups))
    g.channels[dst] = g.channels[src]
    return g.conv("to_img.end_conv", dst) if scale != 1 else dst


class RealPLKSR(Architecture):
    name = _NAME

    def matches(self, state: StateDict) -> bool:
        # The plain PLKSR spells its mixer "channe_mixer", which this does not match.
        return all(
            k in state
            for k in (
                "feats.0.weight",
                "feats.1.lk.conv.weight",
                "feats.1.refine.weight",
                "feats.1.channel_mixer.0.weight",
            )
        )

    def build(self, state: StateDict) -> CommunityNet:
        first = require(state, "feats.0.weight", _NAME)
        if first.ndim != 4 or first.shape[1] != _IMAGE_CHANNELS:
            raise ModelError(f"{_NAME}: feats.0 is shaped {first.shape}, not a convolution of RGB")
        dim = int(first.shape[0])
        layers = _seq_len(state, "feats")
        blocks = layers - 3  # the first and last convolutions and the dropout between blocks and last
        last = f"feats.{layers - 1}"
        if blocks < 1 or any(k.startswith(f"feats.{blocks + 1}.") for k in state):
            raise ModelError(f"{_NAME}: {layers} feats layers do not make blocks, a dropout and a last one")
        out_phases = int(require(state, f"{last}.weight", _NAME).shape[0])
        scale = math.isqrt(out_phases // _IMAGE_CHANNELS)
        if out_phases != _IMAGE_CHANNELS * scale * scale:
            raise ModelError(f"{_NAME}: the last layer's {out_phases} channels are not 3 x scale^2")
        layer_norm = "feats.1.layer_norm.bias" in state
        attention = "feats.1.attn.f.0.weight" in state
        dysample = "to_img.init_pos" in state
        lk = require(state, "feats.1.lk.conv.weight", _NAME)

        g = GraphBuilder(state, _NAME, _IMAGE_CHANNELS)
        x = g.conv("feats.0", INPUT)
        for n in range(1, blocks + 1):
            x = _block(g, f"feats.{n}", x, layer_norm, attention)
        x = g.conv(last, x)
        base = INPUT
        if scale > 1:
            base = f"{INPUT}#repeated"
            g.ops.append(RepeatChannels(INPUT, base, scale * scale))
            g.channels[base] = _IMAGE_CHANNELS * scale * scale
        x = g.add(x, base)
        if dysample:
            out = _dysample(g, x, scale)
        elif scale > 1:
            out = g.pixel_shuffle(x, scale)
        else:
            out = x
        params = [
            ("features", dim),
            ("blocks", blocks),
            ("kernel size", int(lk.shape[2])),
            ("split ratio", f"{lk.shape[0] / dim:g}"),
            ("attention", attention),
            ("layer norm", layer_norm),
            ("DySample", dysample),
        ]
        return g.finish(out, scale, params)
