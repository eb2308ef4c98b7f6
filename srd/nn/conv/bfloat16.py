"""bfloat16 weights for srd's native kernels: rounding, and the layout of pairs that both AMX's TDPBF16PS
and AVX512-BF16's VDPBF16PS read (each 32-bit lane holds two consecutive k of one output column)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PAIR_PANEL = 16  # output columns per panel: one B tile's (and one VDPBF16PS's) 16 float32 lanes


def to_bfloat16_bits(x: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """float32 -> bfloat16 (round to nearest even, as the kernels round their inputs), as raw uint16 bits."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def pack_pairs(b: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """[..., K, cols] float32 matrices (K even, cols a multiple of 16) -> [..., cols / 16, K / 2, 32]
    bfloat16: per panel of 16 columns, per pair of rows (k, k + 1), the 16 columns' two values side by
    side (element [j][p][2c + e] = b[2p + e][16j + c])."""
    m = np.asarray(b, np.float32)
    *lead, k, cols = m.shape
    if k % 2 or cols % PAIR_PANEL:
        raise ValueError(f"pack_pairs: {k} x {cols} needs an even K and a multiple of 16 columns")
    pairs = m.reshape(*lead, k // 2, 2, cols // PAIR_PANEL, PAIR_PANEL)
    n = len(lead)
    order = (*range(n), n + 2, n, n + 3, n + 1)  # [..., panel, pair, column, e]
    return to_bfloat16_bits(pairs.transpose(order).reshape(*lead, cols // PAIR_PANEL, k // 2, 2 * PAIR_PANEL))
