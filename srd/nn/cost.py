"""What a network costs: floating-point operations per output megapixel, counted from its jaxpr.

Convolutions count 2 * output elements * (kernel area * input channels per group); a transposed
convolution, which runs as a convolution of the stride-dilated input, counts only its non-zero taps;
matrix products count 2 * output elements * contracted size (dense layers on pooled vectors, the
transformers' per-pixel linear layers and their attention). Elementwise work and resampling
(activations, additions, the bicubic Interp that ends realesr-animevideov3's 2x and 3x models: its
products, in their own name scope) are left out: they are small next to the convolutions of these
networks.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Jaxpr

from srd.nn.graph import NetworkSpec, Weights
from srd.nn.network import apply_network
from srd.nn.ops.interp import RESAMPLE_SCOPE

PROBE = 2048  # tile sizes the count is made at (shapes only: nothing is computed): PROBE and 2 x PROBE


def _shape(var: Any) -> tuple[int, ...]:
    return tuple(var.aval.shape)


def _count(jaxpr: Jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            out = _shape(eqn.outvars[0])
            rhs = _shape(eqn.invars[1])  # HWIO: kh, kw, in/groups, out
            dilation = math.prod(eqn.params.get("lhs_dilation") or (1,))
            total += 2.0 * math.prod(out) * rhs[0] * rhs[1] * rhs[2] / dilation
        elif name == "dot_general" and RESAMPLE_SCOPE not in str(eqn.source_info.name_stack):
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = _shape(eqn.invars[0])
            k = math.prod(lhs[d] for d in contract)
            total += 2.0 * math.prod(_shape(eqn.outvars[0])) * k
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", None)
            if isinstance(inner, Jaxpr):
                total += _count(inner)
    return total


def _gflop_and_pixels(spec: NetworkSpec, weights: Weights, size: int) -> tuple[float, int]:
    x = jnp.zeros((1, size, size, spec.in_channels), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda w, t: apply_network(spec, w, t, "direct"))(weights, x)
    out = jax.eval_shape(lambda w, t: apply_network(spec, w, t, "direct"), weights, x)
    return _count(jaxpr.jaxpr) / 1e9, int(out.shape[1] * out.shape[2])


def gflop_per_output_mpx(spec: NetworkSpec, weights: Weights) -> float:
    """GFLOP the network spends per megapixel of output on large tiles: the marginal cost between two
    tile sizes, so neither the context a tile reads nor the probe's size counts."""
    small = -(-PROBE // spec.align) * spec.align + 2 * spec.context
    large = small + PROBE
    flop_small, out_small = _gflop_and_pixels(spec, weights, small)
    flop_large, out_large = _gflop_and_pixels(spec, weights, large)
    return (flop_large - flop_small) / (out_large - out_small) * 1e6
