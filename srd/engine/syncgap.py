"""Real-CUGAN's syncgap: tiles of an image larger than one tile share their squeeze-excitation vectors,
as realcugan-ncnn-vulkan's process_cpu_se* do (src/realcugan.cpp), so that every tile is normalised by
the same statistics and no tile grid shows.

Modes (its `-c`): 0 each tile its own; 1 "accurate": each pool vector in turn is averaged over all tiles
and fed back before the next is computed; 2 "rough": all four from one pass of each tile, averaged;
3 "very rough" (its default): all four from 32 x 32 tiles at every third position of a 32-pixel grid,
averaged, and taken by the tiles of the image's grid whose indices the 3 x 3 spread of those samples'
keys covers (the reference looks the 32-grid keys up by the tile grid's indices). Averages are float32
sums in tile order divided by the count, as the reference computes them. The reference leaves mode 3
undefined for images under 65 pixels a side (no sample): srd then uses mode 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from srd.nn.tile_plan import Array32, SharedPools
from srd.nn.tiling import TileRunner

SAMPLE_TILE = 32  # process_cpu_se_very_rough's TILE_SIZE_X/Y
SAMPLE_STEP = 3


def _mean(features: Sequence[dict[str, Array32]], names: tuple[str, ...]) -> dict[str, Array32]:
    means: dict[str, Array32] = {}
    for name in names:
        total = np.zeros_like(features[0][name], dtype=np.float32)
        for found in features:
            total += found[name]
        total /= np.float32(len(features))
        means[name] = total
    return means


def shared_pools(
    runner: TileRunner, sampler: TileRunner, image: Array32, names: tuple[str, ...], mode: int
) -> SharedPools | None:
    """What the tiles of `image` share in `mode` (None: nothing; a single tile never needs it).
    `sampler` is the same network on SAMPLE_TILE-pixel tiles (mode 3)."""
    h, w = image.shape[:2]
    if mode == 0 or not names or runner.tile >= max(h, w):
        return None
    if mode == 3:
        ys = range(0, -(-h // SAMPLE_TILE) - 2, SAMPLE_STEP)
        xs = range(0, -(-w // SAMPLE_TILE) - 2, SAMPLE_STEP)
        if ys and xs:
            positions = [(y * SAMPLE_TILE, x * SAMPLE_TILE) for y in ys for x in xs]
            features = sampler.tile_features(image, positions, names)
            return SharedPools(_mean(features, names), rows=SAMPLE_STEP * len(ys), cols=SAMPLE_STEP * len(xs))
        mode = 2
    positions = runner.positions(h, w)
    if mode == 2:
        return SharedPools(_mean(runner.tile_features(image, positions, names), names))
    shared: dict[str, Array32] = {}
    for name in names:  # mode 1: each vector averaged and fed back before the next one is computed
        shared |= _mean(runner.tile_features(image, positions, (name,), shared), (name,))
    return SharedPools(shared)
