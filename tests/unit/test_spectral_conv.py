"""srd.nn.conv.spectral's wide convolutions against lax.conv, and the native backend's use of them; the
Mish activation against PyTorch's."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from srd.nn.conv.direct import direct_conv
from srd.nn.conv.native_backend import NATIVE
from srd.nn.conv.spectral import fft_length, spectral_conv, spectral_fits
from srd.nn.ops.base import Activation, activate
from srd.nn.ops.conv import Conv


def _conv(kernel: tuple[int, int], pads: tuple[int, int, int, int]) -> Conv:
    return Conv("c", "x", "y", kernel, pads=pads)


@pytest.mark.parametrize(
    ("shape", "kernel", "pads"),
    [
        ((1, 37, 44, 16, 16), (17, 17), (8, 8, 8, 8)),  # RealPLKSR's, on a tile that is not square
        ((2, 20, 23, 5, 7), (9, 13), (4, 4, 6, 6)),  # a batch, odd channels, a rectangular kernel
        ((1, 19, 21, 3, 4), (11, 9), (0, 3, 7, 1)),  # uneven pads, some wider than half the kernel
        ((1, 12, 30, 4, 4), (1, 17), (0, 0, 0, 0)),  # valid: narrower output than input
    ],
)
def test_spectral_conv_equals_lax_conv(
    shape: tuple[int, int, int, int, int], kernel: tuple[int, int], pads: tuple[int, int, int, int]
) -> None:
    """The row-DFT convolution equals lax.conv to float32 rounding, for any pads, kernel shape and batch."""
    n, h, w, cin, cout = shape
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((n, h, w, cin), np.float32))
    scale = np.float32(1 / np.sqrt(cin * kernel[0] * kernel[1]))
    weights = jnp.asarray(rng.standard_normal((*kernel, cin, cout), np.float32) * scale)
    op = _conv(kernel, pads)
    assert spectral_fits(op)
    got, expected = spectral_conv(x, weights, op), direct_conv(x, weights, op)
    assert got.shape == expected.shape
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=2e-5, rtol=0)


def test_spectral_fits_wide_stride_one_kernels_only() -> None:
    """3x3, strided and transposed layers keep their own paths."""
    assert not spectral_fits(_conv((3, 3), (1, 1, 1, 1)))
    assert not spectral_fits(Conv("c", "x", "y", (17, 17), (2, 2), (8, 8, 8, 8)))
    assert not spectral_fits(Conv("c", "x", "y", (17, 17), (1, 1), (8, 8, 8, 8), transposed=True))


def test_fft_length_is_smooth_and_not_shorter() -> None:
    """FFT lengths have no prime factor above 5 and are the smallest such."""
    assert [fft_length(n) for n in (1, 7, 11, 14, 97, 156)] == [1, 8, 12, 15, 100, 160]


def test_native_backend_runs_wide_kernels_spectrally() -> None:
    """The native backend's 17x17 layer with bias and activation equals lax.conv's."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((1, 24, 26, 8), np.float32))
    w = rng.standard_normal((17, 17, 8, 8), np.float32) / 40
    b = rng.standard_normal(8).astype(np.float32)
    op = Conv("c", "x", "y", (17, 17), pads=(8, 8, 8, 8), activation=Activation.RELU)
    layer = {"w": jnp.asarray(w), "b": jnp.asarray(b)} | {
        k: jnp.asarray(v) for k, v in NATIVE.prepare(op, {"w": w, "b": b}).items()
    }
    got = NATIVE.conv(x, op, layer)
    expected = jnp.maximum(direct_conv(x, jnp.asarray(w), op) + b, 0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=2e-5, rtol=0)


def test_mish_equals_torch() -> None:
    """Mish equals PyTorch's to 1e-6 relative over normal values, very large and very negative ones."""
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.linspace(-100, 100, 20001), [-1e30, -1e-30, 0.0, 1e-30, 1e30]]).astype(np.float32)
    got = np.asarray(activate(jnp.asarray(x), Activation.MISH, 0.0))
    expected = torch.nn.functional.mish(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-30)
