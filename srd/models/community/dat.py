"""DAT (Chen et al. 2023, "Dual Aggregation Transformer for Image Super-Resolution"), as spandrel runs it:
the DAT, DAT-S, DAT-2 and DAT-light shapes, and files trained on them (4x-UltraSharpV2).

The input is normalised as (x - mean) * img_range (DIV2K's mean for RGB, 0 otherwise; img_range 1, as
spandrel assumes) and embedded by conv_first; the body is residual groups (`layers.i`: dual aggregation
blocks, then a convolution, plus the group's input) between a LayerNorm (before_RG.1) and `norm`, then
conv_after_body, added to the embedding. A block is x + attention(norm1(x)), then + SGFN(norm2(.)); even
blocks attend spatially (rectangular windows in two branches, srd.nn.ops.spatial_attention; shifted in
blocks 2, 6, 10, ... of even groups and 0, 4, 8, ... of odd ones), odd blocks across channels
(srd.nn.ops.channel_attention). The upsampler is 'pixelshuffle' (conv + LeakyReLU 0.01, conv + pixel
shuffle steps, conv_last) or 'pixelshuffledirect' (one conv + pixel shuffle); the result is
de-normalised. The dynamic position biases depend on the weights only and are computed here, once.

The channel attention and the interaction's channel gate see the whole tile, so the output depends on the
tile (as spandrel's on the image it is given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.models.community.base import INPUT, Architecture, CommunityNet, GraphBuilder, require
from srd.models.community.swinir import layer_norm_op, linear, pixelshuffle_steps, residual_conv, seq_len
from srd.models.statedict import StateDict
from srd.nn.ops import Activation
from srd.nn.ops.channel_attention import ChannelSelfAttention
from srd.nn.ops.gated_ffn import SpatialGateFFN
from srd.nn.ops.rect_window import relative_position_index
from srd.nn.ops.spatial_attention import SpatialWindowAttention

_NAME = "DAT"
_MEAN = (0.4488, 0.4371, 0.4040)
_EPS = 1e-5  # nn.LayerNorm's and nn.BatchNorm2d's default
_BLOCK = "layers.0.blocks.0"
Array = npt.NDArray[np.float32]
Weights = dict[str, Array]


def _layer_norm64(x: npt.NDArray[np.float64], w: Array, b: Array) -> npt.NDArray[np.float64]:
    centred = x - x.mean(axis=-1, keepdims=True)
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return np.asarray(centred / np.sqrt(var + _EPS) * w + b, np.float64)


def _position_bias(g: GraphBuilder, key: str, window: tuple[int, int]) -> tuple[Array, int]:
    """DynamicPosBias `key` evaluated on its own offsets (rpe_biases), in float64: the (offsets, heads)
    position table of a window of (rows, columns), which the attention gathers by the index the file
    holds (checked to be the reference's); with its head count."""
    offsets = g.tensor(f"{key}.rpe_biases").astype(np.float64)
    index = g.tensor(f"{key}.relative_position_index")
    if offsets.shape != ((2 * window[0] - 1) * (2 * window[1] - 1), 2) or not np.array_equal(
        index, relative_position_index(window)
    ):
        raise ModelError(f"{_NAME}: {key}'s position tables do not fit a {window[0]}x{window[1]} window")
    pos = offsets @ g.tensor(f"{key}.pos.pos_proj.weight").T + g.tensor(f"{key}.pos.pos_proj.bias")
    for stage in ("pos1", "pos2", "pos3"):  # LayerNorm, ReLU, Linear each
        norm_w, norm_b = g.tensor(f"{key}.pos.{stage}.0.weight"), g.tensor(f"{key}.pos.{stage}.0.bias")
        norm = _layer_norm64(pos, norm_w, norm_b)
        w, b = g.tensor(f"{key}.pos.{stage}.2.weight"), g.tensor(f"{key}.pos.{stage}.2.bias")
        if w.ndim != 2 or w.shape[1] != pos.shape[1]:
            raise ModelError(f"{_NAME}: {key}.pos.{stage}.2 is shaped {w.shape} for {pos.shape[1]} inputs")
        pos = np.asarray(np.maximum(norm, 0.0) @ w.T + b, np.float64)
    return np.ascontiguousarray(pos, np.float32), int(pos.shape[1])


def _bn_folded(g: GraphBuilder, conv: str, bn: str, cin: int) -> tuple[npt.NDArray[np.float64], Array]:
    """The convolution `conv` (OIHW, with bias) followed by the eval-mode BatchNorm `bn`, as one."""
    w, b = g.tensor(f"{conv}.weight").astype(np.float64), g.tensor(f"{conv}.bias")
    scale = g.tensor(f"{bn}.weight") / np.sqrt(g.tensor(f"{bn}.running_var").astype(np.float64) + _EPS)
    if w.ndim != 4 or w.shape[1] not in (1, cin) or scale.shape != (w.shape[0],):
        raise ModelError(f"{_NAME}: {conv} and {bn} are shaped {w.shape}, {scale.shape} for {cin} channels")
    folded_b = (b - g.tensor(f"{bn}.running_mean")) * scale + g.tensor(f"{bn}.bias")
    return w * scale[:, None, None, None], folded_b.astype(np.float32)


def _matrix(w: npt.NDArray[np.float64] | Array) -> Array:
    """A 1x1 convolution's OIHW kernel as an (in, out) matrix."""
    return np.ascontiguousarray(w[:, :, 0, 0].T, np.float32)


def _interaction(g: GraphBuilder, key: str, dim: int) -> Weights:
    """The weights srd.nn.ops.interaction reads: the depthwise branch `key`.dwconv and the channel and
    spatial interactions, each BatchNorm folded into the convolution before it."""
    dw_w, dw_b = _bn_folded(g, f"{key}.dwconv.0", f"{key}.dwconv.1", dim)
    if dw_w.shape != (dim, 1, 3, 3):
        raise ModelError(f"{_NAME}: {key}.dwconv.0 is shaped {dw_w.shape}, not a 3x3 depthwise of {dim}")
    ci1_w, ci1_b = _bn_folded(g, f"{key}.channel_interaction.1", f"{key}.channel_interaction.2", dim)
    si1_w, si1_b = _bn_folded(g, f"{key}.spatial_interaction.0", f"{key}.spatial_interaction.1", dim)
    ci2_w = g.tensor(f"{key}.channel_interaction.4.weight")
    si2_w = g.tensor(f"{key}.spatial_interaction.3.weight")
    if ci2_w.shape != (dim, ci1_w.shape[0], 1, 1) or si2_w.shape != (1, si1_w.shape[0], 1, 1):
        raise ModelError(f"{_NAME}: {key}'s interaction layers do not fit together")
    return {
        "dw_w": np.ascontiguousarray(dw_w[:, 0].transpose(1, 2, 0), np.float32),
        "dw_b": dw_b,
        "ci1_w": _matrix(ci1_w),
        "ci1_b": ci1_b,
        "ci2_w": _matrix(ci2_w),
        "ci2_b": g.tensor(f"{key}.channel_interaction.4.bias"),
        "si1_w": _matrix(si1_w),
        "si1_b": si1_b,
        "si2_w": _matrix(si2_w),
        "si2_b": g.tensor(f"{key}.spatial_interaction.3.bias"),
    }


def _qkv_proj(g: GraphBuilder, key: str, dim: int, query_scale: float) -> Weights:
    """qkv (its query columns and bias times `query_scale`, in float64) and proj of the attention `key`."""
    qkv_w, qkv_b = linear(g, f"{key}.qkv", dim, bias=False)
    if qkv_w.shape[1] != 3 * dim:
        raise ModelError(f"{_NAME}: {key}.qkv has {qkv_w.shape[1]} outputs for {dim} channels")
    scale = np.ones(3 * dim)
    scale[:dim] = query_scale
    proj_w, proj_b = linear(g, f"{key}.proj", dim)
    assert proj_b is not None
    out = {"qkv_w": (qkv_w * scale).astype(np.float32), "proj_w": proj_w, "proj_b": proj_b}
    if qkv_b is not None:
        out["qkv_b"] = (qkv_b * scale).astype(np.float32)
    return out


def _spatial_attention(g: GraphBuilder, key: str, src: str, split: tuple[int, int], shifted: bool) -> str:
    dim = g.channels[src]
    bias0, heads = _position_bias(g, f"{key}.attns.0", split)
    bias1, heads1 = _position_bias(g, f"{key}.attns.1", split[::-1])
    if heads != heads1 or dim % 2 or (dim // 2) % heads:
        raise ModelError(f"{_NAME}: {key}'s branches have {heads} and {heads1} heads for {dim} channels")
    weights = _qkv_proj(g, key, dim, ((dim // 2) // heads) ** -0.5)
    weights |= {"bias0": bias0, "bias1": bias1} | _interaction(g, key, dim)
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(SpatialWindowAttention(key, src, dst, heads, split, shifted))
    g.weights[key] = weights
    g.channels[dst] = dim
    return dst


def _channel_attention(g: GraphBuilder, key: str, src: str) -> str:
    dim = g.channels[src]
    temperature = g.tensor(f"{key}.temperature").reshape(-1)
    heads = temperature.size
    if not heads or dim % heads:
        raise ModelError(f"{_NAME}: {key} has {heads} heads for {dim} channels")
    weights = _qkv_proj(g, key, dim, 1.0) | {"temperature": temperature} | _interaction(g, key, dim)
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(ChannelSelfAttention(key, src, dst, heads))
    g.weights[key] = weights
    g.channels[dst] = dim
    return dst


def _sgfn(g: GraphBuilder, key: str, src: str) -> str:
    dim = g.channels[src]
    fc1_w, fc1_b = linear(g, f"{key}.fc1", dim)
    half = fc1_w.shape[1] // 2
    fc2_w, fc2_b = linear(g, f"{key}.fc2", half)
    conv_w, conv_b = g.tensor(f"{key}.sg.conv.weight"), g.tensor(f"{key}.sg.conv.bias")
    norm_w, norm_b = g.tensor(f"{key}.sg.norm.weight"), g.tensor(f"{key}.sg.norm.bias")
    if conv_w.shape != (half, 1, 3, 3) or norm_w.shape != (half,) or fc2_w.shape[1] != dim:
        raise ModelError(f"{_NAME}: {key}'s spatial gate does not fit a hidden width of {2 * half}")
    assert fc1_b is not None and fc2_b is not None
    g.weights[key] = {
        "fc1_w": fc1_w,
        "fc1_b": fc1_b,
        "norm_w": norm_w,
        "norm_b": norm_b,
        "conv_w": np.ascontiguousarray(conv_w[:, 0].transpose(1, 2, 0)),
        "conv_b": conv_b,
        "fc2_w": fc2_w,
        "fc2_b": fc2_b,
    }
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(SpatialGateFFN(key, src, dst, _EPS))
    g.channels[dst] = dim
    return dst


def is_shifted(group: int, block: int) -> bool:
    """Whether spatial block `block` of residual group `group` shifts its windows (the reference's rule:
    blocks 2, 6, 10, ... of even groups, 0, 4, 8, ... of odd ones)."""
    if group % 2 == 0:
        return block > 0 and (block - 2) % 4 == 0
    return block % 4 == 0


@dataclass(frozen=True)
class _Config:
    """What spandrel's DAT detection reads from the key names and shapes."""

    in_nc: int
    embed_dim: int
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    split: tuple[int, int]
    upsampler: str
    resi: str
    img_size: int

    @property
    def mean(self) -> tuple[float, ...]:
        return _MEAN if self.in_nc == 3 else (0.0,) * self.in_nc


def _detect(state: StateDict) -> _Config:
    first = require(state, "conv_first.weight", _NAME)
    if first.ndim != 4:
        raise ModelError(f"{_NAME}: conv_first is not a 2-D convolution")
    depths = tuple(seq_len(state, f"layers.{i}.blocks") for i in range(seq_len(state, "layers")))
    if not depths or not all(depths):
        raise ModelError(f"{_NAME}: residual groups without blocks ({list(depths)})")
    heads = tuple(  # a group of one block has no channel attention: its spatial branches have half each
        int(require(state, f"layers.{i}.blocks.1.attn.temperature", _NAME).size)
        if depth >= 2
        else 2 * int(require(state, f"layers.{i}.blocks.0.attn.attns.0.pos.pos3.2.weight", _NAME).shape[0])
        for i, depth in enumerate(depths)
    )
    last = require(state, f"{_BLOCK}.attn.attns.0.rpe_biases", _NAME)[-1]
    split = (round(float(last[0])) + 1, round(float(last[1])) + 1)
    if max(split) % min(split):  # the padding to the larger side would leave partial windows
        raise ModelError(f"{_NAME}: a split size of {list(split)} has no side dividing the other")
    # The training size, from a shifted block's stored mask (windows x pixels a window); spandrel reads
    # layers.0.blocks.2's and defaults to 64. It changes nothing: masks follow the actual input.
    masks = [v for k, v in state.items() if k.endswith(".attn.attn_mask_0") and v.ndim == 3]
    img_size = math.isqrt(int(masks[0].shape[0] * masks[0].shape[1])) if masks else 64
    upsampler = "pixelshuffle" if "conv_last.weight" in state else "pixelshuffledirect"
    resi = "1conv" if "conv_after_body.weight" in state else "3conv"
    return _Config(int(first.shape[1]), int(first.shape[0]), depths, heads, split, upsampler, resi, img_size)


def _body(g: GraphBuilder, c: _Config, feat: str) -> str:
    """The deep features added to `feat`: before_RG's LayerNorm, the residual groups, norm,
    conv_after_body."""
    x = layer_norm_op(g, "before_RG.1", feat)
    for i, depth in enumerate(c.depths):
        y = x
        for j in range(depth):
            key = f"layers.{i}.blocks.{j}"
            h = layer_norm_op(g, f"{key}.norm1", y)
            if j % 2 == 0:
                h = _spatial_attention(g, f"{key}.attn", h, c.split, is_shifted(i, j))
            else:
                h = _channel_attention(g, f"{key}.attn", h)
            y = g.add(y, h)
            y = g.add(y, _sgfn(g, f"{key}.ffn", layer_norm_op(g, f"{key}.norm2", y)))
        x = g.add(residual_conv(g, f"layers.{i}.conv", y), x)
    x = layer_norm_op(g, "norm", x)
    return g.add(residual_conv(g, "conv_after_body", x), feat)


def _upsample(g: GraphBuilder, c: _Config, x: str) -> tuple[str, int]:
    """The reconstruction after the body: its output and the upscale."""
    if c.upsampler == "pixelshuffledirect":
        x = g.conv("upsample.0", x)
        upscale = math.isqrt(g.channels[x] // c.in_nc)
        if upscale < 1 or g.channels[x] != c.in_nc * upscale * upscale:
            raise ModelError(f"{_NAME}: upsample.0's {g.channels[x]} channels are no pixel shuffle's")
        return (g.pixel_shuffle(x, upscale) if upscale > 1 else x), upscale
    x = g.conv("conv_before_upsample.0", x, Activation.LEAKY_RELU, 0.01)  # nn.LeakyReLU's default slope
    x, upscale = pixelshuffle_steps(g, "upsample", x)
    return g.conv("conv_last", x), upscale


class DAT(Architecture):
    name = _NAME
    # Buffers the network recomputes (shifted blocks' masks follow the actual input size) and BatchNorm's
    # training-time counter.
    ignored_suffixes = (".attn_mask_0", ".attn_mask_1", ".num_batches_tracked")

    def matches(self, state: StateDict) -> bool:
        return all(
            k in state
            for k in (
                "conv_first.weight",
                "before_RG.1.weight",
                f"{_BLOCK}.ffn.sg.conv.weight",
                f"{_BLOCK}.attn.attns.0.rpe_biases",
                f"{_BLOCK}.attn.attns.0.pos.pos_proj.weight",
                f"{_BLOCK}.attn.dwconv.1.running_mean",
                "norm.weight",
            )
        ) and ("conv_after_body.weight" in state or "conv_after_body.4.weight" in state)

    def build(self, state: StateDict) -> CommunityNet:
        c = _detect(state)
        g = GraphBuilder(state, _NAME, c.in_nc)
        normalised = g.affine(INPUT, (-m for m in c.mean), (1.0,) * c.in_nc)
        feat = g.conv("conv_first", normalised)
        x, upscale = _upsample(g, c, _body(g, c, feat))
        if g.channels[x] != c.in_nc:
            raise ModelError(f"{_NAME}: {g.channels[x]} output channels for {c.in_nc} input channels")
        x = g.affine(x, c.mean, (1.0,) * c.in_nc)
        params: list[tuple[str, object]] = [
            ("embed_dim", c.embed_dim),
            ("depth", list(c.depths)),
            ("num_heads", list(c.heads)),
            ("split_size", list(c.split)),
            ("expansion_factor", state[f"{_BLOCK}.ffn.fc1.weight"].shape[0] / c.embed_dim),
            ("qkv_bias", f"{_BLOCK}.attn.qkv.bias" in state),
            ("upsampler", c.upsampler),
            ("resi_connection", c.resi),
            ("img_size", c.img_size),
            ("img_range", 1.0),
        ]
        return g.finish(x, upscale, params, self.ignored_suffixes)
