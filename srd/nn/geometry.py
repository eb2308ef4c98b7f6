"""Work out a network's scale, context padding and tile alignment from its ops alone (shape inference)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from srd.nn.graph import NetworkSpec, Weights
from srd.nn.network import apply_network
from srd.nn.ops.base import Op

_PROBE_SIZES = range(64, 96)
FEW_PROBES = (64, 65, 66, 68, 72)


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
