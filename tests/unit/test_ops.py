"""The graph's ops: each reports the extent its output really has, specs stay static, and the graph
module stays free of JAX."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srd.models import LAYER_READERS, load_step
from srd.nn import BACKENDS, NetworkSpec, apply_network, prepare_weights, resolve
from srd.nn.conv import DIRECT
from srd.nn.extents import propagate_extents


def _blobs(
    spec: NetworkSpec, weights: Mapping[str, Mapping[str, jax.Array]], x: jax.Array
) -> dict[str, jax.Array]:
    """Every blob of the network, each op applied in turn with lax.conv."""
    blobs = {spec.input: x}
    for op in spec.ops:
        layer = weights[op.weight_name] if op.weight_name is not None else {}
        blobs[op.output] = op.apply([blobs[b] for b in op.inputs], layer, DIRECT, None)
    return blobs


@pytest.mark.parametrize(("model", "size"), [("cunet", 72), ("upconv7-art", 40)])
def test_extents_equal_the_blobs_real_sizes(model: str, size: int) -> None:
    """With the whole tile valid, each op's reported extent is its output's real height and width."""
    loaded = load_step(model, -1, 2)
    spec = loaded.spec
    x = jax.ShapeDtypeStruct((1, size, size, spec.in_channels), jnp.float32)  # type: ignore[no-untyped-call]
    shapes = jax.eval_shape(lambda w, t: _blobs(spec, w, t), loaded.weights, x)
    extents = propagate_extents(spec.ops, spec.input, jnp.array([[size, size]], jnp.int32))
    assert extents.keys() == shapes.keys()
    for blob, extent in extents.items():
        if extent is None:
            assert len(shapes[blob].shape) == 2, blob  # a vector
        else:
            assert tuple(np.asarray(extent)[0]) == shapes[blob].shape[1:3], blob


def test_specs_are_hashable_and_static() -> None:
    """A loaded network's spec hashes (jit takes it as a static argument) and equals a second load's."""
    first, second = load_step("cunet", -1, 2), load_step("cunet", -1, 2)
    assert hash(first.spec) == hash(second.spec) and first.spec == second.spec
    assert first.spec.tile_dependent and not load_step("upconv7-art", -1, 2).spec.tile_dependent


def test_every_backend_runs_a_network_alike() -> None:
    """Each float32 backend that can run here gives direct's result on a network to a tenth of a level
    (native-bf16's looser bound is tests/unit/test_native_bf16.py's)."""
    loaded = load_step("upconv7-art", -1, 2)
    x = jnp.asarray(np.random.default_rng(0).random((1, 30, 30, 3), dtype=np.float32))
    outputs = {}
    for name, backend in BACKENDS.items():
        if name == "native-bf16" or backend.unavailable_reason("cpu") is not None:
            continue
        prepared = jax.tree.map(jnp.asarray, prepare_weights(loaded.spec, loaded.weights, backend))
        outputs[name] = np.asarray(apply_network(loaded.spec, prepared, x, backend))
    assert resolve("auto", "cpu").name in outputs
    for out in outputs.values():
        assert np.abs(out - outputs["direct"]).max() < 0.1 / 255


def test_every_ncnn_layer_reader_is_named_by_its_type() -> None:
    """The ncnn reader table covers the layer types waifu2x's packaged models use."""
    assert {"Convolution", "Deconvolution", "InnerProduct", "Pooling", "Scale", "Crop", "Eltwise"} <= set(
        LAYER_READERS
    )


def test_graph_and_settings_do_not_import_jax() -> None:
    """The settings schema reads the convolution names from srd.nn.graph without importing JAX."""
    code = "import sys, srd.settings, srd.nn.graph; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
