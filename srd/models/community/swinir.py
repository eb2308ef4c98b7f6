"""SwinIR (Liang et al. 2021, "Image Restoration Using Swin Transformer"), as spandrel runs it.

The input is mirrored out to a multiple of the window size (check_image_size), normalised as
(x - mean) * img_range (the mean of DIV2K for RGB, 0 otherwise; img_range 255 for the window-7 JPEG models,
as spandrel assumes), optionally pixel-unshuffled, embedded by conv_first; the body is residual Swin
transformer groups (RSTB: Swin blocks, every second one with shifted windows, then a convolution, plus the
group's input), a LayerNorm and conv_after_body, added to the embedding; then one of the upsamplers:
'pixelshuffle' (conv + LeakyReLU 0.01, conv + pixel shuffle steps, conv_last), 'pixelshuffledirect' (one
conv + pixel shuffle), 'nearest+conv' (nearest 2x + conv + LeakyReLU 0.2 steps, conv_hr, conv_last) or none
(1x restoration: conv_last added to the normalised input). The result is de-normalised and cropped to
scale times the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.models.community.base import INPUT, Architecture, CommunityNet, GraphBuilder, require
from srd.models.statedict import StateDict
from srd.nn.ops import Activation
from srd.nn.ops.norm import LayerNorm
from srd.nn.ops.window import CropScaled, SwinBlock, WindowPad

_MEAN = (0.4488, 0.4371, 0.4040)
_EPS = 1e-5  # nn.LayerNorm's default
_BLOCK = "layers.0.residual_group.blocks.0"
Array = npt.NDArray[np.float32]


def seq_len(state: StateDict, prefix: str) -> int:
    """spandrel's get_seq_len: one more than the highest `i` of the keys `prefix.i.*`."""
    found = {int(k[len(prefix) + 1 :].split(".", 1)[0]) for k in state if k.startswith(f"{prefix}.")}
    return max(found) + 1 if found else 0


def layer_norm_op(g: GraphBuilder, key: str, src: str) -> str:
    """A LayerNorm with the weights `key`.weight/.bias over the channels of `src`."""
    w, b = g.tensor(f"{key}.weight"), g.tensor(f"{key}.bias")
    if w.shape != (g.channels[src],) or b.shape != w.shape:
        raise ModelError(f"{g.arch}: LayerNorm {key} is shaped {w.shape} for {g.channels[src]} channels")
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(LayerNorm(key, src, dst, _EPS))
    g.weights[key] = {"w": np.asarray(w, np.float32), "b": np.asarray(b, np.float32)}
    g.channels[dst] = g.channels[src]
    return dst


def linear(g: GraphBuilder, key: str, cin: int, bias: bool = True) -> tuple[Array, Array | None]:
    """An nn.Linear's weight as (in, out), and its bias where it has one."""
    w = g.tensor(f"{key}.weight")
    if w.ndim != 2 or w.shape[1] != cin:
        raise ModelError(f"{g.arch}: {key}.weight is shaped {w.shape}, not a Linear from {cin} channels")
    b = g.tensor(f"{key}.bias") if bias or f"{key}.bias" in g.state else None
    return np.ascontiguousarray(w.T, np.float32), None if b is None else np.asarray(b, np.float32)


def qkv_proj_weights(g: GraphBuilder, key: str, dim: int, heads: int) -> dict[str, Array]:
    """An attention's `key`.qkv (bias optional) and `key`.proj as qkv_w/_b and proj_w/_b, the query scale
    head_dim^-0.5 folded into the query's weights and bias (in float64)."""
    qkv_w, qkv_b = linear(g, f"{key}.qkv", dim, bias=False)
    if qkv_w.shape[1] != 3 * dim:
        raise ModelError(f"{g.arch}: {key}.qkv has {qkv_w.shape[1]} outputs for {dim} channels")
    scale = np.ones(3 * dim)
    scale[:dim] = (dim // heads) ** -0.5
    proj_w, proj_b = linear(g, f"{key}.proj", dim)
    assert proj_b is not None
    out = {"qkv_w": (qkv_w.astype(np.float64) * scale).astype(np.float32), "proj_w": proj_w, "proj_b": proj_b}
    if qkv_b is not None:
        out["qkv_b"] = (qkv_b.astype(np.float64) * scale).astype(np.float32)
    return out


def gathered_bias(table: Array, index: npt.NDArray[np.int64]) -> Array:
    """A relative position bias table (positions, heads) gathered by its index (queries, keys) into the
    (heads, queries, keys) bias the attention adds to its logits."""
    n, m = index.shape
    bias = table[index.reshape(-1)].reshape(n, m, table.shape[1]).transpose(2, 0, 1)
    return np.ascontiguousarray(bias, np.float32)


def attention_weights(g: GraphBuilder, key: str, dim: int, window: int) -> tuple[dict[str, Array], int]:
    """A WindowAttention's weights for srd.nn.ops.window.window_attention, and its head count: the
    relative position bias gathered by the file's own index, the query scale folded in."""
    table = g.tensor(f"{key}.relative_position_bias_table")
    index = g.tensor(f"{key}.relative_position_index").astype(np.int64)
    n = window * window
    heads = int(table.shape[1]) if table.ndim == 2 else 0
    if not heads or dim % heads or table.shape[0] != (2 * window - 1) ** 2 or index.shape != (n, n):
        raise ModelError(f"{g.arch}: {key}'s relative position tables do not fit a window of {window}")
    return qkv_proj_weights(g, key, dim, heads) | {"bias": gathered_bias(table, index)}, heads


def norm_weights(g: GraphBuilder, key: str, dim: int, name: str) -> dict[str, Array]:
    """The LayerNorm `key` over `dim` channels as {name}_w and {name}_b."""
    w, b = g.tensor(f"{key}.weight"), g.tensor(f"{key}.bias")
    if w.shape != (dim,) or b.shape != (dim,):
        raise ModelError(f"{g.arch}: {key} is shaped {w.shape} for {dim} channels")
    return {f"{name}_w": np.asarray(w, np.float32), f"{name}_b": np.asarray(b, np.float32)}


def mlp_weights(g: GraphBuilder, key: str, dim: int) -> dict[str, Array]:
    """The Mlp `key` (fc1, GELU, fc2 back to `dim` channels) as fc1_w/_b and fc2_w/_b."""
    fc1_w, fc1_b = linear(g, f"{key}.fc1", dim)
    fc2_w, fc2_b = linear(g, f"{key}.fc2", fc1_w.shape[1])
    assert fc1_b is not None and fc2_b is not None
    if fc2_w.shape[1] != dim:
        raise ModelError(f"{g.arch}: {key}.fc2 gives {fc2_w.shape[1]} channels, not {dim}")
    return {"fc1_w": fc1_w, "fc1_b": fc1_b, "fc2_w": fc2_w, "fc2_b": fc2_b}


def swin_block(g: GraphBuilder, key: str, src: str, window: int, shift: int) -> str:
    """One SwinTransformerBlock `key` (norm1, attn, norm2, mlp.fc1, mlp.fc2) as a SwinBlock op."""
    dim = g.channels[src]
    weights, heads = attention_weights(g, f"{key}.attn", dim, window)
    weights |= norm_weights(g, f"{key}.norm1", dim, "norm1") | norm_weights(g, f"{key}.norm2", dim, "norm2")
    weights |= mlp_weights(g, f"{key}.mlp", dim)
    dst = f"{key}#{len(g.ops)}"
    g.ops.append(SwinBlock(key, src, dst, heads, window, shift, _EPS))
    g.weights[key] = weights
    g.channels[dst] = dim
    return dst


def residual_conv(g: GraphBuilder, key: str, src: str) -> str:
    """'1conv' (one 3x3 convolution `key`) or '3conv' (`key`.0, .2, .4: 3x3 to a quarter of the
    channels, 1x1, 3x3 back, LeakyReLU 0.2 between)."""
    if f"{key}.weight" in g.state:
        return g.conv(key, src)
    y = g.conv(f"{key}.0", src, Activation.LEAKY_RELU, 0.2)
    y = g.conv(f"{key}.2", y, Activation.LEAKY_RELU, 0.2)
    return g.conv(f"{key}.4", y)


def add_crop(g: GraphBuilder, src: str, like: str, scale: int) -> str:
    """`src` cropped to `scale` times the size of `like` (the reference's final crop)."""
    dst = f"crop#{len(g.ops)}"
    g.ops.append(CropScaled(src, like, dst, scale))
    g.channels[dst] = g.channels[src]
    return dst


def add_window_pad(g: GraphBuilder, src: str, multiple: int) -> str:
    dst = f"pad#{len(g.ops)}"
    g.ops.append(WindowPad(src, dst, multiple))
    g.channels[dst] = g.channels[src]
    return dst


def pixelshuffle_steps(g: GraphBuilder, prefix: str, src: str) -> tuple[str, int]:
    """BasicSR's Upsample: convolutions `prefix`.0, .2, ... each followed by a pixel shuffle by the square
    root of its channel growth (2, or 3 for a 3x model); the output and the total scale."""
    x, scale, i = src, 1, 0
    while f"{prefix}.{i}.weight" in g.state:
        x = g.conv(f"{prefix}.{i}", x)
        factor = math.isqrt(g.channels[x] // max(1, g.channels[src]))
        if factor < 2:
            raise ModelError(f"{g.arch}: {prefix}.{i} does not grow its channels for a pixel shuffle")
        x = g.pixel_shuffle(x, factor)
        scale *= factor
        i += 2
    return x, scale


@dataclass(frozen=True)
class _Config:
    """What spandrel's SwinIR detection reads from the key names and shapes."""

    first: str  # conv_first, or conv_first.1 after a pixel unshuffle
    unshuffle: int
    in_nc: int
    embed_dim: int
    window: int
    img_size: int
    upsampler: str
    resi: str

    @property
    def img_range(self) -> float:
        # spandrel's assumption: the window-7 models are the JPEG ones, trained on 0..255.
        return 255.0 if self.window == 7 else 1.0

    @property
    def mean(self) -> tuple[float, ...]:
        return _MEAN if self.in_nc == 3 else (0.0,) * self.in_nc

    @property
    def shift(self) -> int:
        # A block whose training input was no larger than the window neither shifts nor partitions.
        return self.window // 2 if self.img_size > self.window else 0


def _detect(state: StateDict) -> _Config:
    first = "conv_first.1" if "conv_first.1.weight" in state else "conv_first"
    first_w = require(state, f"{first}.weight", "SwinIR")
    if first_w.ndim != 4:
        raise ModelError("SwinIR: conv_first is not a 2-D convolution")
    unshuffle = round(math.sqrt(first_w.shape[1] // 3)) if first == "conv_first.1" else 1
    window = math.isqrt(int(state[f"{_BLOCK}.attn.relative_position_index"].shape[0]))
    img_size = 64
    if (mask := state.get("layers.0.residual_group.blocks.1.attn_mask")) is not None:
        img_size = int(math.sqrt(mask.shape[0]) * window)
    if "conv_before_upsample.0.weight" in state:
        upsampler = "nearest+conv" if "conv_up1.weight" in state else "pixelshuffle"
    else:
        upsampler = "pixelshuffledirect" if "upsample.0.weight" in state else ""
    resi = "1conv" if "conv_after_body.weight" in state else "3conv"
    in_nc = int(first_w.shape[1]) // (unshuffle * unshuffle)
    return _Config(first, unshuffle, in_nc, int(first_w.shape[0]), window, img_size, upsampler, resi)


def _body(g: GraphBuilder, c: _Config, feat: str) -> tuple[str, list[int], list[int]]:
    """The deep features added to `feat`: patch norm, the RSTB groups, norm, conv_after_body; with the
    groups' depths and head counts."""
    body = layer_norm_op(g, "patch_embed.norm", feat) if "patch_embed.norm.weight" in g.state else feat
    depths, heads = [], []
    for i in range(seq_len(g.state, "layers")):
        group = f"layers.{i}.residual_group.blocks"
        depth = seq_len(g.state, group)
        if not depth:
            raise ModelError(f"SwinIR: layer {i} has no blocks")
        y = body
        for j in range(depth):
            y = swin_block(g, f"{group}.{j}", y, c.window, c.shift if j % 2 else 0)
        depths.append(depth)
        heads.append(int(g.state[f"{group}.0.attn.relative_position_bias_table"].shape[1]))
        body = g.add(residual_conv(g, f"layers.{i}.conv", y), body)
    body = layer_norm_op(g, "norm", body)
    return g.add(residual_conv(g, "conv_after_body", body), feat), depths, heads


def _upsample(g: GraphBuilder, c: _Config, x: str, normalised: str) -> tuple[str, int, int]:
    """The reconstruction after the body: its output, the upscale and the upsampler's features."""
    if c.upsampler == "pixelshuffledirect":
        x = g.conv("upsample.0", x)
        upscale = math.isqrt(g.channels[x] // c.in_nc)
        if upscale < 1 or g.channels[x] != c.in_nc * upscale * upscale:
            raise ModelError(f"SwinIR: upsample.0's {g.channels[x]} channels are no pixel shuffle's")
        return (g.pixel_shuffle(x, upscale) if upscale > 1 else x), upscale, c.embed_dim
    if not c.upsampler:
        return g.add(normalised, g.conv("conv_last", x)), 1, c.embed_dim
    x = g.conv("conv_before_upsample.0", x, Activation.LEAKY_RELU, 0.01)  # nn.LeakyReLU's default slope
    num_feat = g.channels[x]
    if c.upsampler == "pixelshuffle":
        x, upscale = pixelshuffle_steps(g, "upsample", x)
        return g.conv("conv_last", x), upscale, num_feat
    upscale = 1
    while f"conv_up{upscale.bit_length()}.weight" in g.state:  # conv_up1, conv_up2, ...: 2x each
        x = g.conv(f"conv_up{upscale.bit_length()}", g.nearest(x, 2), Activation.LEAKY_RELU, 0.2)
        upscale *= 2
    return g.conv("conv_last", g.conv("conv_hr", x, Activation.LEAKY_RELU, 0.2)), upscale, num_feat


class SwinIR(Architecture):
    name = "SwinIR"
    # Buffers the network recomputes: shifted blocks' masks follow the actual input size.
    ignored_suffixes = (".attn_mask",)

    def matches(self, state: StateDict) -> bool:
        return (
            f"{_BLOCK}.norm1.weight" in state
            and ("conv_first.weight" in state or "conv_first.1.weight" in state)
            and f"{_BLOCK}.mlp.fc1.bias" in state
            and f"{_BLOCK}.attn.relative_position_index" in state
            and "patch_embed.proj.weight" not in state  # Swin2SR's (spandrel tries it first)
        )

    def build(self, state: StateDict) -> CommunityNet:
        c = _detect(state)
        g = GraphBuilder(state, "SwinIR", c.in_nc)
        x = add_window_pad(g, INPUT, c.window * c.unshuffle)  # check_image_size
        normalised = g.affine(x, (-m for m in c.mean), (c.img_range,) * c.in_nc)
        x = g.pixel_unshuffle(normalised, c.unshuffle) if c.unshuffle > 1 else normalised
        feat = g.conv(c.first, x)
        x, depths, heads = _body(g, c, feat)
        x, upscale, num_feat = _upsample(g, c, x, normalised)
        if g.channels[x] != c.in_nc:
            raise ModelError(f"SwinIR: {g.channels[x]} output channels for {c.in_nc} input channels")
        if upscale % c.unshuffle:
            raise ModelError(f"SwinIR: a {upscale}x upsampler cannot undo a pixel unshuffle by {c.unshuffle}")
        scale = upscale // c.unshuffle
        x = g.affine(x, (m * c.img_range for m in c.mean), (1.0 / c.img_range,) * c.in_nc)
        params: list[tuple[str, object]] = [
            ("embed_dim", c.embed_dim),
            ("depths", depths),
            ("num_heads", heads),
            ("window_size", c.window),
            ("img_size", c.img_size),
            ("mlp_ratio", state[f"{_BLOCK}.mlp.fc1.bias"].shape[0] / c.embed_dim),
            ("upsampler", c.upsampler or "none"),
            ("resi_connection", c.resi),
            ("num_feat", num_feat),
            ("img_range", c.img_range),
        ]
        if c.unshuffle > 1:
            params.append(("start_unshuffle", c.unshuffle))
        return g.finish(add_crop(g, x, INPUT, scale), scale, params, self.ignored_suffixes)
