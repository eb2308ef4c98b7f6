"""bfloat16 rounding for the tests' references of srd's bfloat16 kernels."""

from __future__ import annotations

import numpy as np

from srd.nn.conv.bfloat16 import to_bfloat16_bits


def bfloat16_rounded(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest even, as the kernels round), as float64."""
    bits = to_bfloat16_bits(np.asarray(x, np.float32)).astype(np.uint32) << 16
    return bits.view(np.float32).astype(np.float64)
