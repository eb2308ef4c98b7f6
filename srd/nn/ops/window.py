"""Ops of the window-attention transformers (SwinIR, HAT; their LayerNorm is srd.nn.ops.norm's): padding
a tile to a multiple of the window size by mirroring, cropping the result back, a whole Swin transformer
block, and its two halves as ops of their own (HAT's hybrid block adds a convolution branch between them): the
(shifted) window attention of a normalised blob, and the residual MLP.

Partial edge tiles hold their real pixels in a larger fixed shape (srd.nn.extents), so these ops work from
each sample's valid extent: the mirror padding starts at the real edge, and a shifted block rolls, and masks
its attention, over the padded real size, as the reference network does on the smaller tile alone. Every
window lies wholly inside or wholly outside that padded size (both are multiples of the window), so what
lies beyond it never mixes into the real pixels; zero-padded convolutions read the padded size as their
extent, as the reference's see its padded tensor's edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from srd.nn.ops.base import Activation, Extent, LayerWeights, OneInputOp, Op, activate, spatial_extent
from srd.nn.ops.norm import layer_norm

if TYPE_CHECKING:
    from srd.nn.conv.base import ConvBackend


def _extent_or_shape(x: jax.Array, extents: Sequence[Extent | None] | None) -> jax.Array:
    """Each sample's valid (rows, columns): the tracked extent, or the whole blob where none is tracked."""
    if extents is not None and extents[0] is not None:
        return extents[0]
    return jnp.tile(jnp.asarray([[x.shape[1], x.shape[2]]], jnp.int32), (x.shape[0], 1))


def _round_up(e: jax.Array, multiple: int) -> jax.Array:
    return -(-e // multiple) * multiple


def _gather(x: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """x[b, rows[b], cols[b]] per sample of an NHWC blob (rows (B, H'), cols (B, W'))."""
    x = jnp.take_along_axis(x, rows[:, :, None, None], axis=1)
    return jnp.take_along_axis(x, cols[:, None, :, None], axis=2)


@dataclass(frozen=True)
class WindowPad(OneInputOp):
    """Mirror each sample's valid area out to the next multiple of `multiple` (the reference's
    check_image_size: reflect padding at the bottom and right); the blob grows to the multiple above
    its own size, and its extent becomes the padded size."""

    src: str
    dst: str
    multiple: int

    @property
    def reads_extent(self) -> bool:
        return True

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        valid = _extent_or_shape(x, extents)
        h, w = (-(-n // self.multiple) * self.multiple for n in x.shape[1:3])

        def index(size: int, v: jax.Array) -> jax.Array:
            i = jnp.arange(size)[None, :]
            mirrored = 2 * (v[:, None] - 1) - i  # torch's "reflect": the edge pixel is not repeated
            return jnp.clip(jnp.where(i < v[:, None], i, mirrored), 0, None)

        return _gather(x, index(h, valid[:, 0]), index(w, valid[:, 1]))

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return _round_up(spatial_extent(extents, "WindowPad"), self.multiple)


@dataclass(frozen=True)
class CropScaled(Op):
    """`src` cut to `scale` times the size of `like` from the top left (the reference's final crop of
    its window-padded result), with `scale` times like's extent."""

    src: str
    like: str
    dst: str
    scale: int

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src, self.like)

    @property
    def output(self) -> str:
        return self.dst

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        src, like = xs
        return src[:, : like.shape[1] * self.scale, : like.shape[2] * self.scale, :]

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return spatial_extent(extents[1:], "CropScaled") * self.scale


def window_partition(x: jax.Array, window: int) -> jax.Array:
    """(B, H, W, C) to (B, windows, window * window, C), windows row by row (the reference's order)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def window_reverse(x: jax.Array, window: int, h: int, w: int) -> jax.Array:
    b, _, _, c = x.shape
    x = x.reshape(b, h // window, w // window, window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def cyclic_shift(x: jax.Array, valid: jax.Array, shift: int) -> jax.Array:
    """torch.roll by `shift` (negative: towards the top left) over each sample's valid area; what lies
    beyond it stays where it is."""

    def index(size: int, v: jax.Array) -> jax.Array:
        i = jnp.arange(size)[None, :]
        j = i - shift
        j = jnp.where(j >= v[:, None], j - v[:, None], jnp.where(j < 0, j + v[:, None], j))
        return jnp.where(i < v[:, None], j, i)

    return _gather(x, index(x.shape[1], valid[:, 0]), index(x.shape[2], valid[:, 1]))


def shift_mask(valid: jax.Array, h: int, w: int, window: int, shift: int) -> jax.Array:
    """The shifted-window attention mask (B, windows, N, N): 0 between pixels of one region of the
    rolled image, -100 between regions (the reference's calculate_mask for each sample's padded size)."""

    def region(size: int, v: jax.Array) -> jax.Array:
        i = jnp.arange(size)[None, :]
        return (i >= v[:, None] - window).astype(jnp.int32) + (i >= v[:, None] - shift).astype(jnp.int32)

    ids = region(h, valid[:, 0])[:, :, None] * 3 + region(w, valid[:, 1])[:, None, :]
    windows = window_partition(ids[..., None], window)[..., 0]  # (B, nW, N)
    same = windows[:, :, :, None] == windows[:, :, None, :]
    return jnp.where(same, 0.0, -100.0).astype(jnp.float32)


def window_attention(
    windows: jax.Array, weights: Mapping[str, jax.Array], heads: int, mask: jax.Array | None, prefix: str = ""
) -> jax.Array:
    """Multi-head self-attention within each window (B, nW, N, C), with the relative position bias
    `{prefix}bias` (heads, N, N) and `mask` (B, nW, N, N) added to the logits. The query scale is folded
    into `{prefix}qkv_w` and its bias when the weights are read."""
    b, nw, n, c = windows.shape
    qkv = windows @ weights[f"{prefix}qkv_w"]
    if f"{prefix}qkv_b" in weights:
        qkv = qkv + weights[f"{prefix}qkv_b"]
    q, k, v = qkv.reshape(b, nw, n, 3, heads, c // heads).transpose(3, 0, 1, 4, 2, 5)
    out = attend(q, k, v, weights[f"{prefix}bias"], mask)
    return merge_heads(out) @ weights[f"{prefix}proj_w"] + weights[f"{prefix}proj_b"]


def attend(q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Multi-head attention of the queries (B, nW, heads, N, d) of each window on its keys and values
    (B, nW, heads, M, d), with the position bias (heads, N, M) and `mask` (B, nW, N, M) added to the
    logits; the result is shaped as the queries. Heads before positions, as batched matrix products:
    XLA's CPU dots ran 1.3x faster so than as einsums over the positions-first layout."""
    logits = q @ k.swapaxes(-1, -2) + bias
    if mask is not None:
        logits = logits + mask[:, :, None]
    return jax.nn.softmax(logits, axis=-1) @ v


def merge_heads(x: jax.Array) -> jax.Array:
    """(B, nW, heads, N, d) to (B, nW, N, heads * d)."""
    b, nw, heads, n, d = x.shape
    return x.transpose(0, 1, 3, 2, 4).reshape(b, nw, n, heads * d)


def shifted_window_attention(
    y: jax.Array,
    weights: Mapping[str, jax.Array],
    heads: int,
    window: int,
    shift: int,
    extents: Sequence[Extent | None] | None,
) -> jax.Array:
    """The attention half of a Swin block on the normalised NHWC `y`: window attention over windows
    rolled by `shift` (where it is not 0) within each sample's valid extent, masked between the rolled
    image's regions, rolled back."""
    _, h, w, _ = y.shape
    if h % window or w % window:
        raise ValueError(f"window attention of {h}x{w}, not a multiple of {window}")
    mask = None
    if shift:
        valid = _extent_or_shape(y, extents)
        y = cyclic_shift(y, valid, -shift)
        mask = shift_mask(valid, h, w, window, shift).astype(y.dtype)
    out = window_reverse(window_attention(window_partition(y, window), weights, heads, mask), window, h, w)
    return cyclic_shift(out, valid, shift) if shift else out


def mlp(x: jax.Array, weights: Mapping[str, jax.Array], prefix: str = "") -> jax.Array:
    """fc1, exact GELU, fc2."""
    y = activate(x @ weights[f"{prefix}fc1_w"] + weights[f"{prefix}fc1_b"], Activation.GELU, 0.0)
    return y @ weights[f"{prefix}fc2_w"] + weights[f"{prefix}fc2_b"]


@dataclass(frozen=True)
class SwinBlock(OneInputOp):
    """One Swin transformer block on an NHWC blob whose size is a multiple of `window`:
    x + attention(norm1(x)) over (shifted) windows, then + mlp(norm2(.)). Weights: norm1_w/_b, qkv_w/_b
    (HWIO-like: in x out), bias (heads, N, N), proj_w/_b, norm2_w/_b, fc1_w/_b, fc2_w/_b."""

    name: str
    src: str
    dst: str
    heads: int
    window: int
    shift: int = 0
    eps: float = 1e-5

    @property
    def weight_name(self) -> str:
        return self.name

    @property
    def reads_extent(self) -> bool:
        return self.shift > 0  # the roll and its mask follow each sample's padded size

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        y = layer_norm(x, weights["norm1_w"], weights["norm1_b"], self.eps)
        x = x + shifted_window_attention(y, weights, self.heads, self.window, self.shift, extents)
        return x + mlp(layer_norm(x, weights["norm2_w"], weights["norm2_b"], self.eps), weights)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]


@dataclass(frozen=True)
class WindowAttention(OneInputOp):
    """The attention half of a Swin block, on its normalised input and without the residual (HAT's
    hybrid block adds it and its convolution branch to the block's input). Weights: qkv_w/_b, bias
    (heads, N, N), proj_w/_b, as SwinBlock's."""

    name: str
    src: str
    dst: str
    heads: int
    window: int
    shift: int = 0

    @property
    def weight_name(self) -> str:
        return self.name

    @property
    def reads_extent(self) -> bool:
        return self.shift > 0

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        return shifted_window_attention(xs[0], weights, self.heads, self.window, self.shift, extents)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]


@dataclass(frozen=True)
class ResidualMLP(OneInputOp):
    """The MLP half of a transformer block: x + fc2(GELU(fc1(LayerNorm(x)))). Weights: norm_w/_b,
    fc1_w/_b, fc2_w/_b."""

    name: str
    src: str
    dst: str
    eps: float = 1e-5

    @property
    def weight_name(self) -> str:
        return self.name

    def apply(
        self,
        xs: Sequence[jax.Array],
        weights: LayerWeights,
        backend: ConvBackend,
        extents: Sequence[Extent | None] | None,
    ) -> jax.Array:
        x = xs[0]
        return x + mlp(layer_norm(x, weights["norm_w"], weights["norm_b"], self.eps), weights)

    def extent(self, extents: Sequence[Extent | None]) -> Extent | None:
        return extents[0]
