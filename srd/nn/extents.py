"""Valid extents of partial tiles, so a fixed-shape tile computes what the smaller tile alone would.

A fixed-shape tile at the image's right or bottom edge holds fewer real pixels than its shape, anchored
at the top left. Ops whose result would see past them read their inputs' extents (`Op.reads_extent`):
global pooling (srd.nn.ops.pooling) averages over the real area only, a zero-padded convolution sees
zeros right past it (as ncnn pads the smaller tile), bicubic Interp clamps its taps at its edge. Every
other op computes the same values over the real area either way. This module tracks the valid height
and width of every blob, per batch element, as traced integers: each op reports its own (crops shift
and shrink it, PixelShuffle and Interp scale it, joins take the minimum).
"""

from __future__ import annotations

from collections.abc import Sequence

from srd.nn.ops.base import Extent, Op


def propagate_extents(ops: Sequence[Op], input_blob: str, valid: Extent) -> dict[str, Extent | None]:
    """The valid extent of each blob (None for vectors), given the valid extent of the padded input."""
    extents: dict[str, Extent | None] = {input_blob: valid}
    for op in ops:
        extents[op.output] = op.extent([extents[blob] for blob in op.inputs])
    return extents
