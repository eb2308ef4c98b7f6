"""HAT (Chen et al. 2023, "Activating More Pixels in Image Super-Resolution Transformer"), as spandrel
runs it.

The input is normalised as (x - mean) * img_range (the mean of DIV2K for RGB, 0 otherwise; img_range 1,
which spandrel assumes as the state dict cannot tell), mirrored out to a multiple of the window size and
embedded by conv_first. The body is residual hybrid attention groups (RHAG): hybrid attention blocks
(HAB: a Swin block whose attention, every second block over shifted windows, is joined by a channel
attention branch CAB on the same normalised input, scaled by conv_scale 0.01, which spandrel assumes
too), then an overlapping cross-attention block (OCAB: window queries on larger, overlapping windows of
keys and values), then a convolution ('1conv', or none for 'identity'), plus the group's input; a
LayerNorm and conv_after_body, added to the embedding. The upsampler is spandrel's only one for HAT,
'pixelshuffle' (conv + LeakyReLU 0.01, conv + pixel shuffle steps, conv_last); none of those steps for a
1x model. The result is de-normalised and cropped to scale times the input.

The relative position indices of both attentions are computed here from the window sizes, and the files'
own (the buffers relative_position_index_SA and _OCA) must equal them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.models.community.base import INPUT, Architecture, CommunityNet, GraphBuilder, require
from srd.models.community.swinir import (
    add_crop,
    add_window_pad,
    gathered_bias,
    layer_norm_op,
    mlp_weights,
    norm_weights,
    pixelshuffle_steps,
    qkv_proj_weights,
    seq_len,
)
from srd.models.statedict import StateDict
from srd.nn.ops import (
    Activation,
    ChannelScale,
    Dense,
    GlobalAvgPool,
    OverlapCrossAttention,
    ResidualMLP,
    WindowAttention,
)

_MEAN = (0.4488, 0.4371, 0.4040)
_EPS = 1e-5  # nn.LayerNorm's default
_CONV_SCALE = 0.01  # HAB's weight of its convolution branch: not in the state dict; spandrel's value
_IMG_RANGE = 1.0  # not in the state dict either; spandrel's value
_IMG_SIZE = 64  # the training size spandrel assumes: blocks of a window this large do not shift
_GROUP = "layers.0.residual_group"
_BLOCK = f"{_GROUP}.blocks.0"
Array = npt.NDArray[np.float32]
Index = npt.NDArray[np.int64]


def _coords(size: int) -> Index:
    """The (row, column) of each position of a size x size window, row by row: (2, size^2)."""
    return np.asarray(np.indices((size, size)).reshape(2, -1), np.int64)


def self_attention_index(window: int) -> Index:
    """HAT's calculate_rpi_sa (SwinIR's per-block index): (window^2, window^2) into the bias table of
    (2 window - 1)^2 relative positions, query minus key."""
    coords = _coords(window)
    rel = coords[:, :, None] - coords[:, None, :] + window - 1
    return np.asarray(rel[0] * (2 * window - 1) + rel[1], np.int64)


def overlap_attention_index(window: int, overlap: int) -> Index:
    """HAT's calculate_rpi_oca: (window^2, overlap^2) into the bias table of (window + overlap - 1)^2
    relative positions, key (of the overlapping window) minus query."""
    rel = _coords(overlap)[:, None, :] - _coords(window)[:, :, None] + window - overlap + 1
    return np.asarray(rel[0] * (window + overlap - 1) + rel[1], np.int64)


def overlap_ratio(window: int, overlap: int) -> float:
    """spandrel's _get_overlap_ratio: a "nice" ratio r with int(window + window * r) == overlap, else the
    general formula plus 0.01 for rounding."""
    for ratio in (0, 1, 0.5, 0.25, 0.75, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9):
        if int(window + window * ratio) == overlap:
            return ratio
    return (overlap - window) / window + 0.01


def inverse_floor_div(a: int, c: int) -> float:
    """spandrel's _inv_int_div: a number b with a // b == c (compress_ratio and squeeze_factor from the
    channel counts they give)."""
    b = a / c
    if b.is_integer():
        return int(b)
    for candidate in (math.ceil(b), math.floor(b), b, b - 0.01, b + 0.01):
        if c == a // candidate:
            return candidate
    raise ModelError(f"HAT: no ratio divides {a} channels into {c}")


@dataclass(frozen=True)
class _Config:
    """What spandrel's HAT detection reads from the key names and shapes."""

    in_nc: int
    embed_dim: int
    window: int
    overlap: int  # the overlapping window's size: window + int(window * overlap_ratio)
    resi: str  # '1conv' or 'identity'

    @property
    def mean(self) -> tuple[float, ...]:
        return _MEAN if self.in_nc == 3 else (0.0,) * self.in_nc

    @property
    def shift(self) -> int:
        return self.window // 2 if self.window < _IMG_SIZE else 0


def _detect(state: StateDict) -> _Config:
    first = require(state, "conv_first.weight", "HAT")
    if first.ndim != 4:
        raise ModelError("HAT: conv_first is not a 2-D convolution")
    window = math.isqrt(int(require(state, "relative_position_index_SA", "HAT").shape[0]))
    oca = require(state, "relative_position_index_OCA", "HAT")
    overlap = math.isqrt(int(oca.shape[1])) if oca.ndim == 2 else 0
    if window > _IMG_SIZE:
        raise ModelError(f"HAT: a window of {window} is larger than the {_IMG_SIZE} px HAT is built for")
    if overlap < window or (overlap - window) % 2:
        # An odd overlap gives the reference's unfold fewer key windows than query windows: it cannot run.
        raise ModelError(f"HAT: an overlapping window of {overlap} does not fit windows of {window}")
    resi = "1conv" if "conv_after_body.weight" in state else "identity"
    return _Config(int(first.shape[1]), int(first.shape[0]), window, overlap, resi)


def _checked_index(g: GraphBuilder, key: str, expected: Index) -> Index:
    """The file's relative position index `key`, which must be the one HAT computes."""
    found = g.tensor(key)
    if found.shape != expected.shape or not np.array_equal(found.astype(np.int64), expected):
        raise ModelError(f"HAT: {key} is not the relative position index of its window sizes")
    return expected


def _bias_table(g: GraphBuilder, key: str, positions: int, dim: int) -> tuple[Array, int]:
    table = g.tensor(f"{key}.relative_position_bias_table")
    heads = int(table.shape[1]) if table.ndim == 2 else 0
    if not heads or dim % heads or table.shape[0] != positions:
        raise ModelError(f"HAT: {key}'s relative position bias table does not fit its windows")
    return table, heads


def channel_attention_block(g: GraphBuilder, key: str, src: str) -> str:
    """HAT's CAB `key` (RCAN's channel attention after two convolutions): 3x3 conv `key`.0 to fewer
    channels, GELU, 3x3 conv `key`.2 back, times sigmoid(conv .3.attention.3(ReLU(conv .3.attention.1(
    the mean over the blob))))."""
    y = g.conv(f"{key}.0", src, Activation.GELU)
    y = g.conv(f"{key}.2", y)
    factors = f"{key}.pool#{len(g.ops)}"
    g.ops.append(GlobalAvgPool(y, factors))
    g.channels[factors] = g.channels[y]
    for layer, activation in (("3.attention.1", Activation.RELU), ("3.attention.3", Activation.SIGMOID)):
        name = f"{key}.{layer}"
        w, b = g.tensor(f"{name}.weight"), g.tensor(f"{name}.bias")
        if w.shape[1:] != (g.channels[factors], 1, 1) or b.shape != w.shape[:1]:
            raise ModelError(f"HAT: {name} is shaped {w.shape} for {g.channels[factors]} channels")
        dst = f"{name}#{len(g.ops)}"
        g.ops.append(Dense(name, factors, dst, activation))
        kernel = np.ascontiguousarray(w[:, :, 0, 0].T, np.float32)
        g.weights[name] = {"w": kernel, "b": np.asarray(b, np.float32)}
        g.channels[dst] = int(w.shape[0])
        factors = dst
    if g.channels[factors] != g.channels[y]:
        raise ModelError(f"HAT: {key}'s channel attention gives {g.channels[factors]} factors")
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(ChannelScale(y, factors, dst))
    g.channels[dst] = g.channels[y]
    return dst


def _residual_mlp(g: GraphBuilder, key: str, norm: str, src: str) -> str:
    """src + `key`.mlp(`key`.`norm`(src)) as a ResidualMLP op."""
    dim = g.channels[src]
    dst = f"{key}.mlp#{len(g.ops)}"
    g.ops.append(ResidualMLP(f"{key}.mlp", src, dst, _EPS))
    weights = norm_weights(g, f"{key}.{norm}", dim, "norm") | mlp_weights(g, f"{key}.mlp", dim)
    g.weights[f"{key}.mlp"] = weights
    g.channels[dst] = dim
    return dst


def hybrid_attention_block(g: GraphBuilder, key: str, src: str, c: _Config, shift: int, index: Index) -> str:
    """One HAB `key`: x + attention(norm1(x)) + conv_scale * CAB(norm1(x)), then the residual MLP."""
    dim = g.channels[src]
    normed = layer_norm_op(g, f"{key}.norm1", src)
    branch = channel_attention_block(g, f"{key}.conv_block.cab", normed)
    table, heads = _bias_table(g, f"{key}.attn", (2 * c.window - 1) ** 2, dim)
    attn = f"{key}.attn#{len(g.ops)}"
    g.ops.append(WindowAttention(f"{key}.attn", normed, attn, heads, c.window, shift))
    g.weights[f"{key}.attn"] = qkv_proj_weights(g, f"{key}.attn", dim, heads) | {
        "bias": gathered_bias(table, index)
    }
    g.channels[attn] = dim
    x = g.add(src, attn, branch, coeffs=(1.0, 1.0, _CONV_SCALE))
    return _residual_mlp(g, key, "norm2", x)


def overlap_attention_block(g: GraphBuilder, key: str, src: str, c: _Config, index: Index) -> str:
    """The OCAB `key` (norm1, qkv, relative position bias, proj, norm2, mlp) as one op."""
    dim = g.channels[src]
    table, heads = _bias_table(g, key, (c.window + c.overlap - 1) ** 2, dim)
    weights = qkv_proj_weights(g, key, dim, heads) | {"bias": gathered_bias(table, index)}
    weights |= norm_weights(g, f"{key}.norm1", dim, "norm1") | norm_weights(g, f"{key}.norm2", dim, "norm2")
    weights |= mlp_weights(g, f"{key}.mlp", dim)
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(OverlapCrossAttention(key, src, dst, heads, c.window, c.overlap, _EPS))
    g.weights[key] = weights
    g.channels[dst] = dim
    return dst


def _body(g: GraphBuilder, c: _Config, feat: str) -> tuple[str, list[int], list[int]]:
    """The deep features added to `feat`: patch norm, the RHAG groups, norm, conv_after_body; with the
    groups' depths and head counts."""
    sa = _checked_index(g, "relative_position_index_SA", self_attention_index(c.window))
    oca = _checked_index(g, "relative_position_index_OCA", overlap_attention_index(c.window, c.overlap))
    body = layer_norm_op(g, "patch_embed.norm", feat) if "patch_embed.norm.weight" in g.state else feat
    depths, heads = [], []
    for i in range(seq_len(g.state, "layers")):
        group = f"layers.{i}.residual_group"
        depth = seq_len(g.state, f"{group}.blocks")
        if not depth:
            raise ModelError(f"HAT: layer {i} has no blocks")
        y = body
        for j in range(depth):
            y = hybrid_attention_block(g, f"{group}.blocks.{j}", y, c, c.shift if j % 2 else 0, sa)
        y = overlap_attention_block(g, f"{group}.overlap_attn", y, c, oca)
        depths.append(depth)
        heads.append(int(g.state[f"{group}.overlap_attn.relative_position_bias_table"].shape[1]))
        body = g.add(g.conv(f"layers.{i}.conv", y) if c.resi == "1conv" else y, body)
    body = layer_norm_op(g, "norm", body)
    after = g.conv("conv_after_body", body) if c.resi == "1conv" else body
    return g.add(after, feat), depths, heads


# spandrel's detection: the keys every HAT state dict has (SwinIR's lack the convolution branch and OCAB).
_KEYS = (
    "relative_position_index_SA",
    "conv_first.weight",
    f"{_BLOCK}.norm1.weight",
    f"{_BLOCK}.conv_block.cab.0.weight",
    f"{_BLOCK}.conv_block.cab.2.weight",
    f"{_BLOCK}.conv_block.cab.3.attention.1.weight",
    f"{_BLOCK}.conv_block.cab.3.attention.3.weight",
    f"{_BLOCK}.mlp.fc1.bias",
    f"{_BLOCK}.mlp.fc2.weight",
    f"{_GROUP}.overlap_attn.relative_position_bias_table",
    f"{_GROUP}.overlap_attn.qkv.weight",
    f"{_GROUP}.overlap_attn.proj.weight",
    f"{_GROUP}.overlap_attn.mlp.fc1.weight",
    f"{_GROUP}.overlap_attn.mlp.fc2.weight",
    "conv_last.weight",
)


class HAT(Architecture):
    name = "HAT"

    def matches(self, state: StateDict) -> bool:
        return all(key in state for key in _KEYS)

    def build(self, state: StateDict) -> CommunityNet:
        c = _detect(state)
        g = GraphBuilder(state, "HAT", c.in_nc)
        normalised = g.affine(INPUT, (-m for m in c.mean), (_IMG_RANGE,) * c.in_nc)
        feat = g.conv("conv_first", add_window_pad(g, normalised, c.window))  # check_image_size
        x, depths, heads = _body(g, c, feat)
        x = g.conv("conv_before_upsample.0", x, Activation.LEAKY_RELU, 0.01)  # nn.LeakyReLU's default
        num_feat = g.channels[x]
        x, scale = pixelshuffle_steps(g, "upsample", x)
        x = g.conv("conv_last", x)
        if g.channels[x] != c.in_nc:
            raise ModelError(f"HAT: {g.channels[x]} output channels for {c.in_nc} input channels")
        x = g.affine(x, (m * _IMG_RANGE for m in c.mean), (1.0 / _IMG_RANGE,) * c.in_nc)
        cab = state[f"{_BLOCK}.conv_block.cab.0.weight"].shape[0]
        squeezed = state[f"{_BLOCK}.conv_block.cab.3.attention.1.weight"].shape[0]
        params: list[tuple[str, object]] = [
            ("embed_dim", c.embed_dim),
            ("depths", depths),
            ("num_heads", heads),
            ("window_size", c.window),
            ("compress_ratio", inverse_floor_div(c.embed_dim, int(cab))),
            ("squeeze_factor", inverse_floor_div(c.embed_dim, int(squeezed))),
            ("conv_scale", _CONV_SCALE),
            ("overlap_ratio", overlap_ratio(c.window, c.overlap)),
            ("mlp_ratio", state[f"{_BLOCK}.mlp.fc1.bias"].shape[0] / c.embed_dim),
            ("upsampler", "pixelshuffle"),
            ("resi_connection", c.resi),
            ("num_feat", num_feat),
            ("img_range", _IMG_RANGE),
        ]
        return g.finish(add_crop(g, x, INPUT, scale), scale, params)
