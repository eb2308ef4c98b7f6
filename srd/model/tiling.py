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

        def forward(w: Weights, x: jax.Array) -> jax.Array:
            self.trace_count += 1  # runs only while tracing: counts compilations
            return apply_network(spec, w, x)  # type: ignore[arg-type]

        self._forward = jax.jit(forward)

    @property
    def window(self) -> int:
        """Side of the padded input window each tile reads."""
        return self.tile + 2 * self.spec.context

    def warmup(self) -> None:
        """Compile now rather than on the first image."""
        x = np.zeros((self.batch, self.window, self.window, self.spec.in_channels), np.float32)
        self._run(x).block_until_ready()

    def _run(self, x: Array32) -> jax.Array:
        result: jax.Array = self._forward(self._weights, jax.device_put(x, self.device))
        return result

    def upscale(self, image: Array32) -> Array32:
        """Run the network over an H x W x C float32 image; returns (s*H) x (s*W) x C_out, unclamped."""
        if image.ndim != 3 or image.shape[2] != self.spec.in_channels:
            raise ValueError(f"expected H x W x {self.spec.in_channels}, got {image.shape}")
        h, w = image.shape[:2]
        t, c, s = self.tile, self.spec.context, self.spec.scale
        rows, cols = -(-h // t), -(-w // t)
        padded = np.pad(image, ((c, rows * t - h + c), (c, cols * t - w + c), (0, 0)), mode="edge")
        out = np.empty((rows * t * s, cols * t * s, self.spec.out_channels), np.float32)
        positions = [(r, q) for r in range(rows) for q in range(cols)]
        pending: tuple[list[tuple[int, int]], jax.Array] | None = None
        for chunk in _chunks(positions, self.batch):
            batch = np.stack([padded[r * t : r * t + t + 2 * c, q * t : q * t + t + 2 * c] for r, q in chunk])
            if len(chunk) < self.batch:
                filler = np.zeros((self.batch - len(chunk), *batch.shape[1:]), np.float32)
                batch = np.concatenate([batch, filler])
            result = self._run(batch)  # dispatched asynchronously: the next batch is cut while this runs
            if pending is not None:
                _place(out, *pending, t * s)
            pending = (chunk, result)
        if pending is not None:
            _place(out, *pending, t * s)
        return out[: h * s, : w * s]


def _chunks(items: list[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _place(out: Array32, chunk: list[tuple[int, int]], result: jax.Array, step: int) -> None:
    tiles = np.asarray(result)
    for k, (r, q) in enumerate(chunk):
        out[r * step : (r + 1) * step, q * step : (q + 1) * step] = tiles[k]


def upscale_untiled(spec: NetworkSpec, weights: Weights, image: Array32) -> Array32:
    """Reference path: the whole image in one call (compiles per image size; tests and small images)."""
    c = spec.context
    padded = np.pad(image, ((c, c), (c, c), (0, 0)), mode="edge")
    out = apply_network(spec, jax.tree.map(jnp.asarray, weights), jnp.asarray(padded[None]))
    return np.asarray(out[0], dtype=np.float32)
