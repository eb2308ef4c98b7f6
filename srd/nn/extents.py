"""Valid extents of partial tiles, so global pooling sees what it would see in a smaller tile.

A fixed-shape tile at the image's right or bottom edge holds fewer real pixels than its shape; global
pooling (srd.nn.ops.pooling) then averages over the tile's real area only. This module tracks the valid
height and width of every blob, per batch element, as traced integers: each op reports its own.
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
