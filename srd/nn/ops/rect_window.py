"""Attention within rectangular windows (DAT's spatial-window self-attention, CAT's rectangle windows):
the partition of a blob into windows of (rows, columns), the per-sample cyclic shift of a shifted block,
the region ids its mask follows, and the attention itself with a position bias per window offset.

A shifted block rolls each sample's padded valid area, not the whole fixed-shape blob (srd.nn.extents):
the reference rolls the smaller tile it is given. Its mask is -100 between pixels of different regions of
the rolled area (Swin's calculate_mask), written as a comparison of region ids inside the logits, so no
(windows, N, N) mask is made.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt


def round_up(e: jax.Array, multiple: int) -> jax.Array:
    """Each value rounded up to a multiple of `multiple`."""
    return -(-e // multiple) * multiple


def window_partition(x: jax.Array, window: tuple[int, int]) -> jax.Array:
    """(B, H, W, *rest) to (B, windows, rows * columns, *rest), windows row by row and the pixels of
    each row by row (the reference's img2windows order)."""
    b, h, w, *rest = x.shape
    wh, ww = window
    x = x.reshape(b, h // wh, wh, w // ww, ww, *rest)
    x = jnp.moveaxis(x, 3, 2)  # (B, H/wh, W/ww, wh, ww, *rest)
    return x.reshape(b, (h // wh) * (w // ww), wh * ww, *rest)


def window_reverse(x: jax.Array, window: tuple[int, int], h: int, w: int) -> jax.Array:
    """The inverse of `window_partition`: (B, windows, rows * columns, *rest) to (B, H, W, *rest)."""
    b, _, _, *rest = x.shape
    wh, ww = window
    x = x.reshape(b, h // wh, w // ww, wh, ww, *rest)
    x = jnp.moveaxis(x, 2, 3)
    return x.reshape(b, h, w, *rest)


def _roll_index(size: int, valid: jax.Array, shift: int) -> jax.Array:
    """Per sample, the source index of each position after torch.roll by `shift` over [0, valid); the
    positions from valid on stay."""
    i = jnp.arange(size)[None, :]
    v = valid[:, None]
    j = i - shift
    j = jnp.where(j >= v, j - v, jnp.where(j < 0, j + v, j))
    return jnp.where(i < v, j, i)


def roll_valid(x: jax.Array, valid: jax.Array, shift: tuple[int, int]) -> jax.Array:
    """torch.roll of NHW... `x` by (rows, columns) `shift` over each sample's valid area `valid` (B, 2)
    (negative: towards the top left)."""
    b, h, w = x.shape[:3]
    flat = x.reshape(b, h, w, -1)
    if shift[0]:
        rows = _roll_index(h, valid[:, 0], shift[0])
        flat = jnp.take_along_axis(flat, rows[:, :, None, None], axis=1)
    if shift[1]:
        cols = _roll_index(w, valid[:, 1], shift[1])
        flat = jnp.take_along_axis(flat, cols[:, None, :, None], axis=2)
    return flat.reshape(x.shape)


def _regions(size: int, valid: jax.Array, window: int, shift: int) -> jax.Array:
    """The region (0, 1, 2) of each position along one axis of the rolled area: before the last window,
    in it before the wrapped-around `shift` rows, and those rows. A shift of 0 (a window of 1) makes
    the reference's last slice, slice(-0, None), the whole axis: every position is region 2 there."""
    i = jnp.arange(size)[None, :]
    v = valid[:, None]
    if not shift:
        return jnp.full((valid.shape[0], size), 2, jnp.int32)
    return (i >= v - window).astype(jnp.int32) + (i >= v - shift).astype(jnp.int32)


def region_ids(
    valid: jax.Array, h: int, w: int, window: tuple[int, int], shift: tuple[int, int]
) -> jax.Array:
    """(B, windows, rows * columns) int32: the region of each pixel of each window of a shifted block
    over each sample's valid area (B, 2) in an (h, w) blob; pixels of different regions do not attend
    to each other."""
    rows = _regions(h, valid[:, 0], window[0], shift[0])
    cols = _regions(w, valid[:, 1], window[1], shift[1])
    ids = rows[:, :, None] * 3 + cols[:, None, :]
    return window_partition(ids, window)


@cache
def relative_position_index(window: tuple[int, int]) -> npt.NDArray[np.int32]:
    """(N, N): the row of the position table for each (query, key) pixel pair of a window, numbered as
    the reference's relative_position_index: (dy + rows - 1) * (2 * columns - 1) + dx + columns - 1."""
    wh, ww = window
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)
    offsets = coords[:, :, None] - coords[:, None, :]
    return np.asarray((offsets[0] + wh - 1) * (2 * ww - 1) + offsets[1] + ww - 1, np.int32)


def window_attention(
    qkv: jax.Array, table: jax.Array, heads: int, window: tuple[int, int], ids: jax.Array | None
) -> jax.Array:
    """Multi-head self-attention within each window of `qkv` (B, H, W, 3, C): query, key and value of
    C channels in `heads` heads, the query already scaled. The position `table` ((2 rows - 1) *
    (2 columns - 1), heads) gives the bias added to the logits for each offset between two pixels, and
    -100 is added where their region `ids` (B, windows, N) differ. The output is (B, H, W, C)."""
    b, h, w, _, c = qkv.shape
    d = c // heads
    n = window[0] * window[1]
    bias = jnp.take(table, jnp.asarray(relative_position_index(window).reshape(-1)), axis=0)
    bias = bias.reshape(n, n, heads).transpose(2, 0, 1).astype(qkv.dtype)
    windows = window_partition(qkv.reshape(b, h, w, 3, heads, d), window)  # (B, nW, N, 3, heads, d)
    q, k, v = windows[:, :, :, 0], windows[:, :, :, 1], windows[:, :, :, 2]
    logits = jnp.einsum("bwnhd,bwmhd->bwhnm", q, k) + bias
    if ids is not None:
        same = ids[:, :, None, :, None] == ids[:, :, None, None, :]
        logits = jnp.where(same, logits, logits - jnp.asarray(100.0, logits.dtype))
    attn = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("bwhnm,bwmhd->bwnhd", attn, v).reshape(b, -1, n, c)
    return window_reverse(out, window, h, w)
