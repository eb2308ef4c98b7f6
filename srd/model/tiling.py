"""Run a network over an image of any size in fixed-shape tiles, so jit compiles once per (tile, batch).

The image is replicate-padded by the network's context on every side and, on the right and bottom, up to
a whole number of tiles (as waifu2x's reconstruct.lua does); each tile reads its context from its
neighbours, so for networks without global operations the result equals the untiled one exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.model.graph import NetworkSpec, Weights
from srd.model.network import apply_network

Array32 = npt.NDArray[np.float32]


def round_tile(tile: int, spec: NetworkSpec) -> int:
    """The smallest tile size >= `tile` that the network's downsampling accepts."""
    return max(spec.align, -(-tile // spec.align) * spec.align)


class TileRunner:
    """A jit-compiled network for one tile size and batch size, with its weights on one device."""

    def __init__(
        self, spec: NetworkSpec, weights: Weights, tile: int, batch: int, device: jax.Device
    ) -> None:
        if tile % spec.align:
            raise ValueError(f"tile {tile} is not a multiple of {spec.align} for {spec.arch}")
        self.spec = spec
        self.tile = tile
        self.batch = batch
        self.device = device
        self.trace_count = 0
        self._weights = jax.device_put(weights, device)

        def forward(w: Weights, x: jax.Array, valid: jax.Array) -> jax.Array:
            self.trace_count += 1  # runs only while tracing: counts compilations
            return apply_network(spec, w, x, valid=valid)  # type: ignore[arg-type]

        self._forward = jax.jit(forward)

    @property
    def window(self) -> int:
        """Side of the padded input window each tile reads."""
        return self.tile + 2 * self.spec.context

    def warmup(self) -> None:
        """Compile now rather than on the first image."""
        x = np.zeros((self.batch, self.window, self.window, self.spec.in_channels), np.float32)
        self._run(x, self._full_extents(self.batch)).block_until_ready()

    def _full_extents(self, count: int) -> npt.NDArray[np.int32]:
        return np.full((count, 2), self.window, np.int32)

    def _extent(self, start: int, size: int) -> int:
        """Real (padded-input) extent of the tile starting at `start` along an axis of `size` pixels:
        what waifu2x-ncnn-vulkan would feed for it, the remainder rounded up to the network's alignment."""
        remainder = min(self.tile, size - start)
        return round_tile(remainder, self.spec) + 2 * self.spec.context

    def _run(self, x: Array32, valid: npt.NDArray[np.int32]) -> jax.Array:
        result: jax.Array = self._forward(
            self._weights, jax.device_put(x, self.device), jax.device_put(valid, self.device)
        )
        return result

    def upscale(self, image: Array32) -> Array32:
        """Run the network over an H x W x C float32 image; returns (s*H) x (s*W) x C_out, unclamped."""
        h, w = image.shape[:2]
        s = self.spec.scale
        out = np.empty((h * s, w * s, self.spec.out_channels), np.float32)
        row = 0
        for band in self.upscale_bands(image):
            out[row : row + band.shape[0]] = band
            row += band.shape[0]
        return out

    def upscale_bands(self, image: Array32) -> Iterator[Array32]:
        """Like `upscale`, but yields the output one band of tile rows at a time, top to bottom, so a
        caller can encode or quantise it without the whole output in memory. Input padding is built per
        band (edge-replicated by index clamping), never for the whole image."""
        if image.ndim != 3 or image.shape[2] != self.spec.in_channels:
            raise ValueError(f"expected H x W x {self.spec.in_channels}, got {image.shape}")
        h, w = image.shape[:2]
        t, c, s = self.tile, self.spec.context, self.spec.scale
        rows, cols = -(-h // t), -(-w // t)
        col_index = np.clip(np.arange(-c, cols * t + c), 0, w - 1)
        pending: tuple[int, list[int], jax.Array] | None = None
        band_out: dict[int, Array32] = {}
        for r in range(rows):
            row_index = np.clip(np.arange(r * t - c, r * t + t + c), 0, h - 1)
            band = image[row_index][:, col_index]
            band_out[r] = np.empty((t * s, cols * t * s, self.spec.out_channels), np.float32)
            for start in range(0, cols, self.batch):
                chunk = list(range(start, min(start + self.batch, cols)))
                batch = np.stack([band[:, q * t : q * t + t + 2 * c] for q in chunk])
                valid = np.array([(self._extent(r * t, h), self._extent(q * t, w)) for q in chunk], np.int32)
                if len(chunk) < self.batch:
                    filler = np.zeros((self.batch - len(chunk), *batch.shape[1:]), np.float32)
                    batch = np.concatenate([batch, filler])
                    valid = np.concatenate([valid, self._full_extents(self.batch - len(chunk))])
                result = self._run(batch, valid)  # asynchronous: the next batch is cut while this one runs
                if pending is not None:
                    yield from self._place(band_out, *pending, t * s, h * s, w * s)
                pending = (r, chunk, result)
        if pending is not None:
            yield from self._place(band_out, *pending, t * s, h * s, w * s, last=True)

    def _place(
        self,
        bands: dict[int, Array32],
        r: int,
        chunk: list[int],
        result: jax.Array,
        step: int,
        out_h: int,
        out_w: int,
        *,
        last: bool = False,
    ) -> Iterator[Array32]:
        """Copy a finished batch into its band; yield the band (cropped) once its last tile is in."""
        tiles = np.asarray(result)
        band = bands[r]
        for k, q in enumerate(chunk):
            band[:, q * step : (q + 1) * step] = tiles[k]
        cols = band.shape[1] // step
        if chunk[-1] == cols - 1 or last:
            del bands[r]
            yield band[: min(step, out_h - r * step), :out_w]


def upscale_untiled(spec: NetworkSpec, weights: Weights, image: Array32) -> Array32:
    """Reference path: the whole image in one call (compiles per image size; tests and small images)."""
    c = spec.context
    padded = np.pad(image, ((c, c), (c, c), (0, 0)), mode="edge")
    out = apply_network(spec, jax.tree.map(jnp.asarray, weights), jnp.asarray(padded[None]))
    return np.asarray(out[0], dtype=np.float32)
