"""Run a `NetworkSpec` on NHWC input with a convolution backend (srd.nn.conv): each op applies itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

import jax

from srd.nn.conv.base import ConvBackend
from srd.nn.conv.registry import backend_named
from srd.nn.extents import propagate_extents
from srd.nn.fusion import Fusions
from srd.nn.graph import ConvAlgorithm, NetworkSpec, PreparedWeights, Weights
from srd.nn.ops.base import LayerWeights
from srd.nn.ops.concat import Concat
from srd.nn.ops.conv import Conv

JaxWeights = Mapping[str, Mapping[str, jax.Array]]
_NO_WEIGHTS: LayerWeights = {}


def as_backend(conv: ConvAlgorithm | ConvBackend) -> ConvBackend:
    """A backend given as itself or by its (resolved) settings name."""
    return backend_named(conv) if isinstance(conv, str) else conv


def conv2d(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    op: Conv,
    conv: ConvAlgorithm | ConvBackend = "direct",
    prepared: Mapping[str, jax.Array] | None = None,
) -> jax.Array:
    """One convolution layer with bias and activation, NHWC in and out, by a backend; `prepared` holds
    the kernels `prepare_weights` made for it (without them a backend traces its transforms)."""
    layer = {**(prepared or {}), "w": w}
    if b is None:
        layer.pop("b", None)
    else:
        layer["b"] = b
    return as_backend(conv).conv(x, op, layer)


def prepare_weights(
    spec: NetworkSpec, weights: Weights, conv: ConvAlgorithm | ConvBackend
) -> PreparedWeights:
    """Weights plus, per layer, the kernels the backend prepares at load (computed in float64):
    "native" (and "native_b") for the native backends, "wino" and "subpixel" for "winograd"'s."""
    backend = as_backend(conv)
    prepared: PreparedWeights = {name: dict(layer) for name, layer in weights.items()}
    for op in spec.ops:
        if op.weight_name is not None:
            prepared[op.weight_name].update(op.prepare(backend, weights[op.weight_name]))
    return prepared


@overload
def apply_network(
    spec: NetworkSpec,
    weights: JaxWeights,
    x: jax.Array,
    conv: ConvAlgorithm | ConvBackend = ...,
    valid: jax.Array | None = ...,
    overrides: Mapping[str, jax.Array] | None = ...,
    extra_outputs: None = ...,
) -> jax.Array: ...


@overload
def apply_network(
    spec: NetworkSpec,
    weights: JaxWeights,
    x: jax.Array,
    conv: ConvAlgorithm | ConvBackend = ...,
    valid: jax.Array | None = ...,
    overrides: Mapping[str, jax.Array] | None = ...,
    *,
    extra_outputs: tuple[str, ...],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


def apply_network(
    spec: NetworkSpec,
    weights: JaxWeights,
    x: jax.Array,
    conv: ConvAlgorithm | ConvBackend = "direct",
    valid: jax.Array | None = None,
    overrides: Mapping[str, jax.Array] | None = None,
    extra_outputs: tuple[str, ...] | None = None,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """Run the network on a batch of padded tiles (B, H, W, C_in) and return (B, H', W', C_out).

    `valid` (int32, B x 2) gives each tile's real height and width when it is a partial edge tile in a
    larger fixed shape; where the network has ops that read extents (`spec.tracks_extents`: global
    pooling, zero-padded convolutions) the result over the valid area is then what the smaller tile
    alone gives (see srd.nn.extents). `overrides` replace the outputs of the ops writing those blobs
    (the op is not run), e.g. Real-CUGAN's shared pool vectors {"gap0": (B, C), ...}; with
    `extra_outputs` the result is (output, {blob: value}) for those blobs as well.
    The output is not clamped: callers clamp to 0..1 after any averaging (TTA) as waifu2x does.
    `conv` must be resolved already ("auto" is srd.nn.conv.resolve's business); its backend uses the
    kernels `prepare_weights` added to `weights`.
    """
    if conv == "auto":
        raise ValueError('apply_network needs a resolved conv_algorithm, not "auto"')
    backend = as_backend(conv)
    overrides = overrides or {}
    produced = {op.output for op in spec.ops}
    unknown = [name for name in overrides if name not in produced]
    unknown += [name for name in extra_outputs or () if name not in produced | {spec.input}]
    if unknown:
        raise ValueError(f"no blobs named {unknown} in {spec.arch}")
    # Only networks with ops that read extents track them; the others do not even trace them.
    extents = (
        propagate_extents(spec.ops, spec.input, valid) if valid is not None and spec.tracks_extents else None
    )
    blobs: dict[str, jax.Array] = {spec.input: x}
    # The inputs of each Concat's output: a convolution reading it hands them to its backend unjoined
    # (Conv.apply_parts); the join is then dead code that XLA drops, unless another op reads it.
    parts: dict[str, list[jax.Array]] = {}
    fusions = Fusions.of(spec, set(overrides) | set(extra_outputs or ()))
    for op in spec.ops:
        if op.output in overrides:
            blobs[op.output] = overrides[op.output]
            continue
        if op.output in blobs:  # a PReLU the convolution before it applied already
            continue
        layer = weights[op.weight_name] if op.weight_name is not None else _NO_WEIGHTS
        in_extents = [extents[blob] for blob in op.inputs] if extents is not None else None
        if isinstance(op, Conv) and fusions.run(op, layer, weights, backend, blobs, parts, in_extents):
            continue
        if isinstance(op, Conv) and op.inputs[0] in parts:
            extent = in_extents[0] if in_extents is not None else None
            blobs[op.output] = op.apply_parts(parts[op.inputs[0]], layer, backend, extent)
        else:
            blobs[op.output] = op.apply([blobs[blob] for blob in op.inputs], layer, backend, in_extents)
        if isinstance(op, Concat):
            parts[op.output] = [part for blob in op.inputs for part in parts.get(blob, [blobs[blob]])]
    if extra_outputs is None:
        return blobs[spec.output]
    return blobs[spec.output], {name: blobs[name] for name in extra_outputs}
