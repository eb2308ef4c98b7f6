"""Where tiles go, for srd.nn.tiling's TileRunner: the geometry one network's tiles are cut with (context,
alignment, border), the bucket sizes an edge tile takes (so that compiles stay bounded), each axis's plan
of tiles, and the batches shared-feature tiles run in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from srd.nn.graph import Border, NetworkSpec

Array32 = npt.NDArray[np.float32]
_MAX_BUCKETS = 32  # bucket sizes below the tile, per axis: 32 steps at most, so compiles stay bounded
_BUCKET_STEP = 16  # px; the step of the usual tiles (finer for small tiles, coarser for huge ones)
FEATURE_BATCH = 16  # most tiles `TileRunner.tile_features` runs in one call
FEATURE_PIXELS = 160_000  # most padded input pixels it runs in one call (16 of Real-CUGAN's 68 px samples)


@dataclass(frozen=True)
class TileGeometry:
    """How tiles are cut for one network: the context read around each tile, the multiple a tile's
    extent is rounded up to, and the border. `context` may exceed what the network consumes
    (`NetworkSpec.context`); the rest comes back in the output and is cropped."""

    context: int
    align: int = 1
    border: Border = Border.REPLICATE
    add_input: bool = False  # the network predicts the difference from the nearest-neighbour upscale

    @classmethod
    def of(
        cls,
        spec: NetworkSpec,
        context: int | None = None,
        align: int | None = None,
        border: Border = Border.REPLICATE,
        *,
        add_input: bool = False,
    ) -> TileGeometry:
        """The network's own geometry, with a family's context, alignment or border where it sets them."""
        context = spec.context if context is None else context
        if context < spec.context:
            raise ValueError(f"{spec.arch}: context {context} is less than the {spec.context} it consumes")
        align = spec.align if align is None else align
        if align % spec.align:
            raise ValueError(f"{spec.arch}: alignment {align} is not a multiple of {spec.align}")
        return cls(context, align, border, add_input)

    def crop(self, spec: NetworkSpec) -> int:
        """Output pixels to cut on each side: the context the network does not consume, times the scale."""
        return (self.context - spec.context) * spec.scale


def border_index(index: npt.NDArray[np.intp], length: int, border: Border) -> npt.NDArray[np.intp]:
    """Indices into an axis of `length` for positions `index`, which may lie beyond both ends."""
    if border is Border.REPLICATE or length == 1:
        return np.clip(index, 0, length - 1)
    period = 2 * (length - 1)
    folded = np.mod(index, period)
    return np.where(folded >= length, period - folded, folded)


def round_up(size: int, align: int) -> int:
    """The smallest multiple of `align` that is >= `size` (and >= `align`)."""
    return max(align, -(-size // align) * align)


def round_tile(tile: int, spec: NetworkSpec) -> int:
    """The smallest tile size >= `tile` that the network's downsampling accepts."""
    return round_up(tile, spec.align)


def bucket_step(tile: int, align: int = 1) -> int:
    """The step between bucket sizes: 16 px for tiles of 64..512, tile/4 below, tile/32 above, aligned.
    (2026-12-02, Intel Xeon, cunet whole image: 32 px steps took 0.955 s on 512x512, 0.652 s on 333x517
    and 0.362 s on 300x300; 16 px steps 0.907, 0.613 and 0.315 s; 8 px steps 0.888, 0.582 and 0.316 s
    at four times the shapes to compile.)"""
    return round_up(min(max(_BUCKET_STEP, -(-tile // _MAX_BUCKETS)), max(8, tile // 4)), align)


def bucket_sizes(tile: int, spec: NetworkSpec, align: int | None = None) -> tuple[int, ...]:
    """The tile sizes one axis may use, largest first: the tile and the multiples of the bucket step
    below it, aligned."""
    align = spec.align if align is None else align
    step = bucket_step(tile, align)
    sizes = {tile} | {round_up(k, align) for k in range(step, tile, step)}
    return tuple(sorted((s for s in sizes if s <= tile), reverse=True))


@dataclass(frozen=True)
class SharedPools:
    """Values of blobs (Real-CUGAN's squeeze-excitation vectors) the tiles of one image share, and which
    tiles of the grid take them: those in the first `rows` rows and `cols` columns (None: all)."""

    values: Mapping[str, Array32]
    rows: int | None = None
    cols: int | None = None

    def covers(self, row: int, col: int) -> bool:
        """Whether the tile in grid row `row`, column `col` takes the shared values."""
        return (self.rows is None or row < self.rows) and (self.cols is None or col < self.cols)


def feature_batches(count: int, pixels: int) -> list[int]:
    """How `count` tiles of `pixels` (padded input) pixels each are split into batches: powers of two,
    largest first, none over FEATURE_BATCH tiles or FEATURE_PIXELS pixels in all, so at most a handful of
    batch sizes compile per tile shape and a batch's activations stay small."""
    cap = max(1, min(FEATURE_BATCH, FEATURE_PIXELS // max(1, pixels)))
    cap = 1 << (cap.bit_length() - 1)
    sizes = [cap] * (count // cap)
    rest = count % cap
    sizes += [1 << k for k in range(cap.bit_length() - 1, -1, -1) if rest & (1 << k)]
    return sizes


def axis_plan(length: int, tile: int, buckets: tuple[int, ...]) -> list[tuple[int, int]]:
    """(start, size) of the tiles along an axis: whole tiles, then the smallest bucket covering the rest."""
    plan = []
    for start in range(0, length, tile):
        remainder = length - start
        size = tile if remainder >= tile else min(b for b in buckets if b >= remainder)
        plan.append((start, size))
    return plan
