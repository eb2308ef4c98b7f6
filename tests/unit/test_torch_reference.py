"""The PyTorch twin of srd's networks (tests/support/torch_net.py, bench/gpu_bench.py's PyTorch side) computes
what srd's own network computes on the same tile, to float32 rounding; skipped where torch is absent."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from support.torch_net import TorchNetwork  # noqa: E402  (after the skip: it imports torch)

from srd.models import load_step  # noqa: E402
from srd.nn.network import apply_network, prepare_weights  # noqa: E402

# The four networks of the GPU comparison (issue 17), on a small tile each: (name, scale, tile).
MODELS = [("upconv7-art", 2, 24), ("cunet", 2, 24), ("realcugan-se", 2, 24), ("realesrgan-x4plus", 4, 12)]


@pytest.mark.parametrize(("name", "scale", "tile"), MODELS)
def test_torch_network_equals_srd(name: str, scale: int, tile: int) -> None:
    """On one padded random tile, torch's conv2d/conv_transpose2d network equals srd's lax.conv network."""
    model = load_step(name, -1, scale)
    spec = model.spec
    side = tile + 2 * max(spec.context, model.pipeline.context or 0)
    x = np.random.default_rng(0).random((2, side, side, spec.in_channels), dtype=np.float32)
    weights = jax.tree.map(jnp.asarray, prepare_weights(spec, model.weights, "direct"))
    expected = np.asarray(apply_network(spec, weights, jnp.asarray(x), "direct"))
    net = TorchNetwork(spec, model.weights).eval()
    with torch.inference_mode():
        got = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * max(1.0, float(np.abs(expected).max())))


def test_torch_network_runs_channels_last_in_bfloat16() -> None:
    """The bench's fast PyTorch form (channels_last, bfloat16) still computes the network, within bf16."""
    model = load_step("upconv7-art", -1, 2)
    spec = model.spec
    x = np.random.default_rng(1).random((1, 30, 30, 3), dtype=np.float32)
    weights = jax.tree.map(jnp.asarray, prepare_weights(spec, model.weights, "direct"))
    expected = np.asarray(apply_network(spec, weights, jnp.asarray(x), "direct"))
    net = TorchNetwork(spec, model.weights).eval().to(torch.bfloat16, memory_format=torch.channels_last)
    inp = torch.from_numpy(x).permute(0, 3, 1, 2).to(torch.bfloat16)
    inp = inp.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = net(inp).float().permute(0, 2, 3, 1).numpy()
    assert np.abs(got - expected).max() < 0.05
