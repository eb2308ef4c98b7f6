"""Work out a network's scale, context padding and tile alignment from its ops alone (shape inference).

Probing traces the whole graph once per size (about a second for a deep network on a small CPU, most of
a one-shot `srd upscale`), so where srd keeps a compile cache it also keeps each answer there, under a
digest of everything the answer depends on: the ops, their weights' shapes and the sizes probed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

from srd.nn.graph import NetworkSpec, Weights
from srd.nn.network import apply_network
from srd.nn.ops.base import Op

_PROBE_SIZES = range(64, 96)
FEW_PROBES = (64, 65, 66, 68, 72)
_GEOMETRY_FIELDS = ("out_channels", "scale", "context", "align")


class _Memo:
    """Inferred geometries kept on disk by digest, in the folder srd's compile cache names."""

    def __init__(self) -> None:
        self.folder: Path | None = None

    def recall(self, digest: str) -> dict[str, int] | None:
        if self.folder is None:
            return None
        try:
            found = json.loads((self.folder / f"{digest}.json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict) or set(found) != set(_GEOMETRY_FIELDS):
            return None
        if not all(isinstance(v, int) and v >= 0 for v in found.values()):
            return None
        return found

    def remember(self, digest: str, spec: NetworkSpec) -> None:
        """Write the answer atomically (a reader never sees half a file); a folder that cannot be
        written only costs the next run its probing."""
        if self.folder is None:
            return
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".geometry-", suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                json.dump({f: getattr(spec, f) for f in _GEOMETRY_FIELDS}, out)
            os.replace(tmp, self.folder / f"{digest}.json")
        except OSError:
            return


_MEMO = _Memo()


def remember_geometry_in(folder: Path | None) -> None:
    """Keep inferred geometries in `folder` (None: infer every time). srd's compile cache sets this."""
    _MEMO.folder = folder


def _output_shape(spec: NetworkSpec, weights: Weights, size: int) -> tuple[int, int] | None:
    """Spatial size and channels of the output for a square padded input of `size`, or None if the
    shapes do not fit."""
    x = jax.ShapeDtypeStruct((1, size, size, spec.in_channels), jnp.float32)  # type: ignore[no-untyped-call]
    try:
        out = jax.eval_shape(lambda w, t: apply_network(spec, w, t), weights, x)
    except (TypeError, ValueError):
        return None
    if len(out.shape) != 4 or out.shape[1] != out.shape[2]:
        return None
    return int(out.shape[1]), int(out.shape[3])


@functools.cache
def _source_bytes(module: str) -> bytes:
    """A module's source (its code decides the shapes), or its name where it has no readable file."""
    try:
        return Path(inspect.getfile(sys.modules[module])).read_bytes()
    except (KeyError, TypeError, OSError):
        return module.encode()


def _digest(spec: NetworkSpec, weights: Weights, probe_sizes: Sequence[int]) -> str:
    """What the geometry depends on: the ops (their hyperparameters and the code of their classes, so
    an upgraded srd never reuses an older answer), the weights' shapes and the sizes probed."""
    shapes = sorted(
        (layer, key, tuple(a.shape)) for layer, arrays in weights.items() for key, a in arrays.items()
    )
    text = repr((spec.arch, spec.ops, spec.input, spec.output, spec.in_channels, shapes, tuple(probe_sizes)))
    digest = hashlib.sha256(text.encode())
    for module in sorted({type(op).__module__ for op in spec.ops} | {apply_network.__module__}):
        digest.update(_source_bytes(module))
    return digest.hexdigest()


def infer_geometry(
    arch: str,
    ops: Sequence[Op],
    weights: Weights,
    input_blob: str,
    output_blob: str,
    in_channels: int,
    probe_sizes: Sequence[int] = _PROBE_SIZES,
) -> NetworkSpec:
    """Probe padded input sizes to find scale, context (pad per side) and alignment of the tile size.
    Each probe traces the whole graph: a deep network known to keep its size (a community model) passes
    a few sizes whose differences still tell alignments of 1, 2, 4 and 8 apart (`FEW_PROBES`)."""
    spec = NetworkSpec(arch, tuple(ops), input_blob, output_blob, in_channels, 0, 1, 0)
    digest = _digest(spec, weights, probe_sizes)
    known = _MEMO.recall(digest)
    if known is not None:
        return NetworkSpec(arch, tuple(ops), input_blob, output_blob, in_channels, **known)
    found = _probe(spec, weights, probe_sizes)
    _MEMO.remember(digest, found)
    return found


def _probe(spec: NetworkSpec, weights: Weights, probe_sizes: Sequence[int]) -> NetworkSpec:
    arch, ops, input_blob, output_blob, in_channels = (
        spec.arch,
        spec.ops,
        spec.input,
        spec.output,
        spec.in_channels,
    )
    shapes = {n: shape for n in probe_sizes if (shape := _output_shape(spec, weights, n)) is not None}
    channels = {c for _, c in shapes.values()}
    if len(shapes) < 2 or len(channels) != 1:
        raise ValueError(f"{arch}: no input size between 64 and 95 gives a consistent output")
    out_channels = channels.pop()
    fits = {n: m for n, (m, _) in shapes.items()}
    sizes = sorted(fits)
    scale_num = fits[sizes[-1]] - fits[sizes[0]]
    scale_den = sizes[-1] - sizes[0]
    if scale_num % scale_den:
        raise ValueError(f"{arch}: output grows by a non-integer factor {scale_num}/{scale_den}")
    scale = scale_num // scale_den
    shrink = {scale * n - m for n, m in fits.items()}
    if len(shrink) != 1 or next(iter(shrink)) % (2 * scale):
        raise ValueError(f"{arch}: the border the network consumes is not constant and symmetric")
    context = next(iter(shrink)) // (2 * scale)
    align = math.gcd(*(n - sizes[0] for n in sizes[1:]))
    if (sizes[0] - 2 * context) % align:
        raise ValueError(f"{arch}: tile sizes that fit are not multiples of {align}")
    return NetworkSpec(
        arch, tuple(ops), input_blob, output_blob, in_channels, out_channels, scale, context, align
    )
