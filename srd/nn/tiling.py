"""Run a network over an image of any size in tiles of a few fixed shapes, so jit compiles a bounded set
of programs per (model, tile, batch) whatever the image sizes.

Along each axis the image is cut into tiles of `tile` pixels; the last, partial tile takes the smallest bucket
size that covers the remainder: the buckets are multiples of a step (16 px for the usual tiles of 64-512, a
quarter of a smaller tile, a thirty-second of a larger one), so an edge tile, and an image smaller than one
tile, computes at most a step more than its real size (a 256 px image in cunet's 400 tile runs at 256, a 300
px one at 304) while at most 33 sizes per axis can ever compile. Each edge shape compiles once (about a second
for cunet on 2 cores) and then comes from the persistent compilation cache. Each tile reads its context
(`TileGeometry.context` pixels a side) from its neighbours; beyond the image's border the pixels are
replicated (waifu2x's reconstruct.lua and waifu2x-ncnn-vulkan) or mirrored without repeating the edge pixel
(realcugan- and realsr-ncnn-vulkan: ncnn's border type 2). A network whose valid convolutions consume the
context returns exactly the tile; one that keeps its size (zero-padded convolutions, the ESRGAN family)
returns the context too, which is cropped. Every tile's real extent goes with it, so that global pooling
(cunet, Real-CUGAN) and zero padding see exactly what the reference programs' smaller edge tile would
(srd.nn.extents); for networks with neither the result equals the untiled one exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.conv.base import ConvBackend
from srd.nn.conv.registry import resolve
from srd.nn.graph import DEFAULT_CONV_ALGORITHM, ConvAlgorithm, NetworkSpec, PreparedWeights, Weights
from srd.nn.network import JaxWeights, apply_network, prepare_weights
from srd.nn.tile_plan import (
    Array32,
    SharedPools,
    TileGeometry,
    axis_plan,
    border_index,
    bucket_sizes,
    feature_batches,
    round_up,
)

TileCounter = Callable[[int], None]  # called with how many more tiles are finished


class TileRunner:
    """A jit-compiled network for one tile size (and its edge buckets) and batch size, on one device."""

    def __init__(
        self,
        spec: NetworkSpec,
        weights: Weights,
        tile: int,
        batch: int,
        device: jax.Device,
        conv_algorithm: ConvAlgorithm | ConvBackend = DEFAULT_CONV_ALGORITHM,
        geometry: TileGeometry | None = None,
        dtype: str = "float32",
    ) -> None:
        self.geometry = geometry = geometry if geometry is not None else TileGeometry.of(spec)
        if tile % geometry.align:
            raise ValueError(f"tile {tile} is not a multiple of {geometry.align} for {spec.arch}")
        self.spec = spec
        self.tile = tile
        self.batch = batch
        self.device = device
        self.buckets = bucket_sizes(tile, spec, geometry.align)
        self._crop = geometry.crop(spec)
        self.trace_count = 0
        if isinstance(conv_algorithm, str):
            backend = resolve(conv_algorithm, device.platform)
        else:
            backend = conv_algorithm
        self.backend = backend
        self.conv_algorithm: ConvAlgorithm = backend.name
        # The network computes in `dtype` (engine.precision): weights are stored on the device in it, tiles
        # and shared values are cast on the device, and results come back as float32.
        self.dtype = compute = jnp.dtype(dtype)
        self._weights = jax.device_put(
            _cast_weights(prepare_weights(spec, weights, backend), compute), device
        )

        def overrides_of(x: jax.Array, shared: dict[str, jax.Array]) -> dict[str, jax.Array]:
            return {
                name: jnp.broadcast_to(v.astype(compute), (x.shape[0], v.shape[0]))
                for name, v in shared.items()
            }

        def forward(w: Weights, x: jax.Array, valid: jax.Array, shared: dict[str, jax.Array]) -> jax.Array:
            self.trace_count += 1  # runs only while tracing: counts compilations
            y = apply_network(spec, w, x.astype(compute), backend, valid, overrides_of(x, shared) or None)  # type: ignore[arg-type]
            return y.astype(jnp.float32)

        def features(
            w: JaxWeights,
            x: jax.Array,
            valid: jax.Array,
            shared: dict[str, jax.Array],
            names: tuple[str, ...],
        ) -> dict[str, jax.Array]:
            self.trace_count += 1
            _, values = apply_network(
                spec,
                w,
                x.astype(compute),
                backend,
                valid,
                overrides_of(x, shared) or None,
                extra_outputs=names,
            )
            return {name: v.astype(jnp.float32) for name, v in values.items()}

        options = dict(backend.compiler_options(device.platform))
        self._forward = jax.jit(forward, compiler_options=options or None)
        self._features = jax.jit(features, static_argnames="names", compiler_options=options or None)

    def warmup(self, *, every_shape: bool = False) -> None:
        """Compile the full-tile shape now (or every bucket pair) rather than on the first images; the
        edge shapes compile on first use, or load from the persistent compilation cache."""
        c = 2 * self.geometry.context
        shapes = itertools.product(self.buckets, repeat=2) if every_shape else [(self.tile, self.tile)]
        for th, tw in shapes:
            x = np.zeros((self.batch, th + c, tw + c, self.spec.in_channels), np.float32)
            self._run(
                x, np.tile(np.array([th + c, tw + c], np.int32), (self.batch, 1)), {}
            ).block_until_ready()

    def _extent(self, start: int, length: int) -> int:
        """Real (padded-input) extent of the tile starting at `start` along an axis of `length` pixels:
        what the reference program would feed for it, the remainder rounded up to the alignment."""
        return round_up(min(self.tile, length - start), self.geometry.align) + 2 * self.geometry.context

    def _run(
        self,
        x: Array32 | jax.Array,
        valid: npt.NDArray[np.int32] | jax.Array,
        shared: Mapping[str, Array32],
    ) -> jax.Array:
        result: jax.Array = self._forward(
            self._weights,
            jax.device_put(x, self.device),
            jax.device_put(valid, self.device),
            {name: jax.device_put(v, self.device) for name, v in shared.items()},
        )
        return result

    def run_tiles(self, x: jax.Array | Array32, valid: jax.Array | npt.NDArray[np.int32]) -> jax.Array:
        """The compiled network on one batch of padded tiles (batch, tile + 2 context, ..., C) with their
        valid extents, returned without waiting for it: arrays already on the device are not copied, so
        a bench times the network alone (bench/gpu_bench.py)."""
        return self._run(x, valid, {})

    def tile_features(
        self,
        image: Array32,
        positions: list[tuple[int, int]],
        names: tuple[str, ...],
        shared: Mapping[str, Array32] | None = None,
    ) -> list[dict[str, Array32]]:
        """The values of the blobs `names` (e.g. squeeze-excitation pool vectors) for the tiles whose
        top-left corners are `positions`, each cut as `upscale` cuts it (edge tiles at their real
        extent); `shared` feeds those blobs in, as for the final pass. Tiles of one shape go through
        the network together, in batches of a power of two (`feature_batches`), so many small tiles
        (Real-CUGAN's syncgap samples) cost a few calls rather than one each."""
        h, w = image.shape[:2]
        c, border = self.geometry.context, self.geometry.border
        cols = dict(axis_plan(w, self.tile, self.buckets))
        rows = dict(axis_plan(h, self.tile, self.buckets))
        fed = {name: jax.device_put(v, self.device) for name, v in (shared or {}).items()}
        found: list[dict[str, Array32]] = []
        for (th, tw), group in itertools.groupby(positions, key=lambda p: (rows[p[0]], cols[p[1]])):
            spots = list(group)
            start = 0
            for size in feature_batches(len(spots), (th + 2 * c) * (tw + 2 * c)):
                chunk = spots[start : start + size]
                start += size
                tiles = np.stack(
                    [
                        image[border_index(np.arange(y - c, y + th + c), h, border)][
                            :, border_index(np.arange(x - c, x + tw + c), w, border)
                        ]
                        for y, x in chunk
                    ]
                )
                valid = np.array([[self._extent(y, h), self._extent(x, w)] for y, x in chunk], np.int32)
                values = self._features(
                    self._weights,
                    jax.device_put(tiles, self.device),
                    jax.device_put(valid, self.device),
                    fed,
                    names,
                )
                arrays = {name: np.asarray(v, np.float32) for name, v in values.items()}
                found.extend({name: a[k] for name, a in arrays.items()} for k in range(len(chunk)))
        return found

    def positions(self, height: int, width: int) -> list[tuple[int, int]]:
        """The top-left corners of the tiles `upscale` cuts an image of this size into, row by row."""
        return [
            (y, x)
            for y, _ in axis_plan(height, self.tile, self.buckets)
            for x, _ in axis_plan(width, self.tile, self.buckets)
        ]

    def upscale(
        self, image: Array32, shared: SharedPools | None = None, on_tiles: TileCounter | None = None
    ) -> Array32:
        """Run the network over an H x W x C float32 image; returns (s*H) x (s*W) x C_out, unclamped.
        `on_tiles(n)` is called each time n more tiles are finished (for progress reports)."""
        h, w = image.shape[:2]
        s = self.spec.scale
        out = np.empty((h * s, w * s, self.spec.out_channels), np.float32)
        for _ in self.upscale_bands(image, shared, on_tiles, out=out):
            pass  # each band's tiles are placed straight into its rows of `out`
        return out

    def upscale_bands(
        self,
        image: Array32,
        shared: SharedPools | None = None,
        on_tiles: TileCounter | None = None,
        *,
        out: Array32 | None = None,
    ) -> Iterator[Array32]:
        """Like `upscale`, but yields the output one band of tile rows at a time, top to bottom, so a
        caller can encode or quantise it without the whole output in memory. Input padding is built per
        band (the border by index mapping: `border_index`), never for the whole image. With `shared`,
        the tiles it covers take its values for those blobs instead of computing their own. With `out`
        (the whole (s*H) x (s*W) x C_out output), each band is a view of its rows there, not a new array."""
        if image.ndim != 3 or image.shape[2] != self.spec.in_channels:
            raise ValueError(f"expected H x W x {self.spec.in_channels}, got {image.shape}")
        h, w = image.shape[:2]
        c, s, border = self.geometry.context, self.spec.scale, self.geometry.border
        cols = axis_plan(w, self.tile, self.buckets)
        col_index = border_index(np.arange(-c, cols[-1][0] + cols[-1][1] + c), w, border)
        for row, (row_start, th) in enumerate(axis_plan(h, self.tile, self.buckets)):
            # Tiles of one width (and one source of shared values) are batched together; each group is
            # dispatched before the previous one is copied out, so host slicing overlaps the device.
            def key(item: tuple[int, tuple[int, int]], row: int = row) -> tuple[int, bool]:
                return item[1][1], shared is not None and shared.covers(row, item[0])

            groups = [
                (covered, [col for _, col in g])
                for (_, covered), g in itertools.groupby(enumerate(cols), key=key)
            ]
            row_index = border_index(np.arange(row_start - c, row_start + th + c), h, border)
            band_in = image[row_index][:, col_index]
            rows = min(th, h - row_start)  # an edge bucket's tiles run past the image: those rows are dropped
            band_out = (
                np.empty((rows * s, w * s, self.spec.out_channels), np.float32)
                if out is None
                else out[row_start * s : (row_start + rows) * s]
            )
            pending: list[tuple[list[tuple[int, int]], jax.Array]] = []
            for covered, group in groups:
                values = shared.values if covered and shared is not None else {}
                for k in range(0, len(group), self.batch):
                    chunk = group[k : k + self.batch]
                    pending.append((chunk, self._dispatch(band_in, chunk, row_start, th, h, w, values)))
                    if len(pending) > 1:
                        done = pending.pop(0)
                        _place(band_out, *done, rows * s, w * s, s, self._crop)
                        if on_tiles is not None:
                            on_tiles(len(done[0]))
            for item in pending:
                _place(band_out, *item, rows * s, w * s, s, self._crop)
                if on_tiles is not None:
                    on_tiles(len(item[0]))
            if self.geometry.add_input:
                band_out += np.repeat(np.repeat(image[row_start : row_start + rows], s, 0), s, 1)
            yield band_out

    def _dispatch(
        self,
        band_in: Array32,
        chunk: list[tuple[int, int]],
        row_start: int,
        th: int,
        h: int,
        w: int,
        shared: Mapping[str, Array32],
    ) -> jax.Array:
        c2 = 2 * self.geometry.context
        tw = chunk[0][1]
        batch = np.stack([band_in[:, q : q + tw + c2] for q, _ in chunk])
        valid = np.array([(self._extent(row_start, h), self._extent(q, w)) for q, _ in chunk], np.int32)
        if len(chunk) < self.batch:
            missing = self.batch - len(chunk)
            batch = np.concatenate([batch, np.zeros((missing, *batch.shape[1:]), np.float32)])
            valid = np.concatenate([valid, np.tile(np.array([th + c2, tw + c2], np.int32), (missing, 1))])
        return self._run(batch, valid, shared)  # asynchronous: returns before the device has finished


def _cast_weights(weights: PreparedWeights, dtype: np.dtype[Any]) -> PreparedWeights:
    """The float32 arrays of `weights` in `dtype` (packed integer kernels are left alone)."""
    if dtype == np.float32:
        return weights
    return {
        name: {key: a.astype(dtype) if a.dtype == np.float32 else a for key, a in layer.items()}
        for name, layer in weights.items()
    }


def _place(
    band: Array32, chunk: list[tuple[int, int]], result: jax.Array, out_h: int, out_w: int, s: int, crop: int
) -> None:
    tiles = np.asarray(result)
    for k, (q, tw) in enumerate(chunk):
        width = min(tw * s, out_w - q * s)
        band[:, q * s : q * s + width] = tiles[k, crop : crop + out_h, crop : crop + width]


def upscale_untiled(
    spec: NetworkSpec, weights: Weights, image: Array32, conv_algorithm: ConvAlgorithm = "direct"
) -> Array32:
    """Reference path: the whole image in one call (compiles per image size; tests and small images).
    `weights` must hold the transforms `conv_algorithm` needs (`prepare_weights`)."""
    c = spec.context
    padded = np.pad(image, ((c, c), (c, c), (0, 0)), mode="edge")
    out = apply_network(spec, jax.tree.map(jnp.asarray, weights), jnp.asarray(padded[None]), conv_algorithm)
    return np.asarray(out[0], dtype=np.float32)
