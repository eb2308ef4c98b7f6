"""Winograd F(m x m, 3 x 3), sub-pixel transposed convolutions and the "winograd" network path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from srd.models import load_step
from srd.nn import Activation, Conv, NetworkSpec, apply_network, conv2d, prepare_weights
from srd.nn.conv.subpixel import subpixel_kernel, subpixel_offsets
from srd.nn.conv.winograd_transforms import (
    TILE_SIZES,
    from_planes,
    to_planes,
    transform_kernel,
    winograd_conv3x3,
    winograd_matrices,
)

_DIMS = ("NHWC", "HWIO", "NHWC")


def _conv64(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid 3x3 correlation in float64 numpy: the ground truth."""
    h, wd = x.shape[1] - 2, x.shape[2] - 2
    out = np.zeros((x.shape[0], h, wd, w.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("bhwc,ck->bhwk", x[:, dy : dy + h, dx : dx + wd].astype(np.float64), w[dy, dx])
    return out


@pytest.mark.parametrize("m", TILE_SIZES)
def test_matrices_compute_1d_correlation_exactly(m: int) -> None:
    """A^T [(G g) * (B^T d)] equals the 1-D valid correlation of d with g in float64."""
    at, g, bt = winograd_matrices(m)
    rng = np.random.default_rng(m)
    d, k = rng.standard_normal(m + 2), rng.standard_normal(3)
    expected = np.array([d[i : i + 3] @ k for i in range(m)])
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), expected, atol=1e-12)


@pytest.mark.parametrize(("m", "bound"), [(2, 2e-6), (4, 5e-6), (6, 3e-5)])
@pytest.mark.parametrize(("height", "width"), [(9, 9), (23, 17), (30, 41)])
def test_winograd_layer_error_bound(m: int, bound: float, height: int, width: int) -> None:
    """Odd sizes included: float32 Winograd stays within a relative error bound of the float64 conv."""
    rng = np.random.default_rng(height * width + m)
    x = rng.random((2, height, width, 64), dtype=np.float32)
    w = (rng.standard_normal((3, 3, 64, 32)) / np.sqrt(9 * 64)).astype(np.float32)
    ours = np.asarray(winograd_conv3x3(jnp.asarray(x), jnp.asarray(transform_kernel(w, m)), m))
    ref = _conv64(x, w)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= bound * max(1.0, np.abs(ref).max())


def test_planes_round_trip() -> None:
    """Cutting an image into phase planes and interleaving them back returns it unchanged."""
    x = jnp.asarray(np.random.default_rng(0).random((1, 13, 10, 5), dtype=np.float32))
    assert np.array_equal(np.asarray(from_planes(to_planes(x, 4))), np.asarray(x))


@pytest.mark.parametrize(
    ("kernel", "stride", "pads"), [((2, 2), (2, 2), (0, 0, 0, 0)), ((4, 4), (2, 2), (3, 3, 3, 3))]
)
def test_subpixel_kernel_equals_transposed_conv(
    kernel: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> None:
    """The stride-1 sub-pixel kernel plus depth-to-space reproduces lax's lhs-dilated transposed conv."""
    rng = np.random.default_rng(3)
    x = rng.random((1, 11, 9, 6), dtype=np.float32)
    w = rng.standard_normal((*kernel, 6, 4)).astype(np.float32)
    (kh, kw), (top, bottom, left, right) = kernel, pads
    ref = lax.conv_general_dilated(
        x, w, (1, 1), ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right)), stride, None, _DIMS
    )
    w1 = subpixel_kernel(jnp.asarray(w), kernel, stride, pads)
    lead_h, lead_w = subpixel_offsets(kernel, stride, pads)
    span = w1.shape[0]
    xp = jnp.pad(jnp.asarray(x), ((0, 0), (lead_h, span), (lead_w, span), (0, 0)))
    y = lax.conv_general_dilated(xp, w1, (1, 1), "VALID", dimension_numbers=_DIMS)
    b, h, wd, c = y.shape
    y = y.reshape(b, h, wd, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * wd, c // 4)
    np.testing.assert_allclose(np.asarray(y)[:, : ref.shape[1], : ref.shape[2]], np.asarray(ref), atol=1e-5)


@pytest.mark.parametrize(
    "op",
    [
        Conv("c", "x", "y", (3, 3), activation=Activation.LEAKY_RELU, slope=0.1),
        Conv("c", "x", "y", (3, 3), pads=(1, 1, 1, 1)),
        Conv("c", "x", "y", (2, 2), (2, 2), activation=Activation.LEAKY_RELU, slope=0.1, transposed=True),
        Conv("c", "x", "y", (4, 4), (2, 2), (3, 3, 3, 3), transposed=True),
    ],
)
def test_conv2d_winograd_matches_direct(op: Conv) -> None:
    """Each layer type the dispatcher rewrites gives the direct result, with and without prepared weights."""
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.random((2, 15, 18, 16), dtype=np.float32))
    w = (rng.standard_normal((*op.kernel, 16, 8)) / 12).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32) * 0.1
    direct = np.asarray(conv2d(x, jnp.asarray(w), jnp.asarray(b), op, "direct"))
    traced = np.asarray(conv2d(x, jnp.asarray(w), jnp.asarray(b), op, "winograd"))
    spec = NetworkSpec("t", (op,), "x", "y", 16, 8, 1, 0)
    layer = prepare_weights(spec, {"c": {"w": w, "b": b}}, "winograd")["c"]
    prepared = {k: jnp.asarray(v) for k, v in layer.items()}
    pre = np.asarray(conv2d(x, prepared["w"], prepared["b"], op, "winograd", prepared))
    np.testing.assert_allclose(traced, direct, atol=1e-5)
    np.testing.assert_allclose(pre, direct, atol=1e-5)


@pytest.mark.parametrize(("model", "size"), [("upconv7-art", 40), ("cunet", 60)])
def test_networks_winograd_within_a_tenth_of_a_level(model: str, size: int) -> None:
    """Whole packaged networks on real weights: "winograd" and "direct" differ by far less than 1/255."""
    loaded = load_step(model, -1, 2)
    weights = jax.tree.map(jnp.asarray, loaded.weights)
    prepared = jax.tree.map(jnp.asarray, prepare_weights(loaded.spec, loaded.weights, "winograd"))
    x = jnp.asarray(np.random.default_rng(1).random((1, size, size, 3), dtype=np.float32))
    direct = np.asarray(apply_network(loaded.spec, weights, x, "direct"))
    fast = np.asarray(apply_network(loaded.spec, prepared, x, "winograd"))
    assert fast.shape == direct.shape
    assert np.abs(fast - direct).max() < 0.1 / 255
