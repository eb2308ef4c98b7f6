"""Wide convolutions (RealPLKSR's 17 x 17) through a discrete Fourier transform along the width.

A k x k stride-1 convolution costs k^2 * C_in * C_out multiplies a pixel done directly: for RealPLKSR's
16 -> 16 channel, 17 x 17 layer that is 74k, as much as each of its 3x3 layers of 64 and 128 channels,
and XLA's CPU convolution ran it at a third of the machine's speed (55-60 ms of a 148 px tile's ~110 ms a
block on 2 AMD EPYC cores, while its two 3x3 layers took 8-16 ms each in srd's native kernel). Here the
convolution is split by axis:

- along the width, exactly by the DFT's convolution theorem: each row is zero-extended to a length `nw`
  at least W + the larger side pad (so that the circular convolution's wrap lands in zeros), transformed
  with a real FFT, multiplied by the kernel's transform (computed in the graph from the HWIO weights with
  a (k x nw/2+1) DFT matrix, cheap beside the rest), and transformed back;
- along the height, directly: each frequency's rows are a 1-D convolution of complex values, which is
  one real matrix product per frequency (the rows' k taps of C_in complex channels, as 2 C_in reals,
  against the 2 x 2 real blocks of the complex taps).

That is k * C_in * C_out * 2 real multiplies a pixel (half the frequencies, four multiplies each), not k^2
* C_in * C_out: 8.5x fewer for k = 17, as large matrix products. Float32 throughout; the result differs
from lax.conv's by rounding (about 1e-6 of the output's scale, measured).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from srd.nn.ops.conv import Conv

# The narrowest kernel taken. On 2 AMD EPYC (Zen 3) cores, one 148 px image, lax.conv against this
# (ms), 16 -> 16 channels: k 7 6.9 / 8.0, k 9 16.9 / 11.6, k 13 32.4 / 14.5, k 17 55.6 / 19.2; 32 -> 32:
# k 7 30.8 / 25.2, k 9 50.8 / 37.8, k 17 182 / 53.
MIN_KERNEL_WIDTH = 9
_RADICES = (2, 3, 5)


def spectral_fits(op: Conv) -> bool:
    """Whether `spectral_conv` takes this layer: a stride-1 convolution (not transposed) at least
    MIN_KERNEL_WIDTH wide."""
    return not op.transposed and op.stride == (1, 1) and op.kernel[1] >= MIN_KERNEL_WIDTH


def fft_length(n: int) -> int:
    """The smallest length of at least `n` whose only prime factors are 2, 3 and 5 (fast FFT sizes)."""
    while True:
        m = n
        for p in _RADICES:
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _row_spectra(w: jax.Array, left: int, nw: int) -> jax.Array:
    """(nw//2+1, kh * 2 C_in, 2 C_out) float32: per frequency v, the real form of the kernel's DFT along
    its columns, placed circularly so tap `left` sits at offset 0 (y[n] = sum_b x[n + b - left] w[b]).
    Rows are (tap row, input channel, real | imaginary part of the input), columns (output channel,
    real | imaginary part of the output)."""
    kh, kw, cin, cout = w.shape
    angle = -2 * np.pi * np.outer(left - np.arange(kw), np.arange(nw // 2 + 1)) / nw  # (kw, V)
    cos = jnp.asarray(np.cos(angle), jnp.float32)
    sin = jnp.asarray(np.sin(angle), jnp.float32)
    w32 = w.astype(jnp.float32)
    re = jnp.einsum("abio,bv->vaio", w32, cos, precision=lax.Precision.HIGHEST)
    im = jnp.einsum("abio,bv->vaio", w32, sin, precision=lax.Precision.HIGHEST)
    # (a + ib)(c + id): the input's real part gives (c, d), its imaginary part (-d, c).
    from_re = jnp.stack([re, im], axis=-1)
    from_im = jnp.stack([-im, re], axis=-1)
    blocks = jnp.stack([from_re, from_im], axis=3)  # (V, kh, C_in, 2, C_out, 2)
    return blocks.reshape(nw // 2 + 1, kh * cin * 2, cout * 2)


def spectral_conv(x: jax.Array, w: jax.Array, op: Conv) -> jax.Array:
    """The layer's convolution of NHWC `x` by HWIO `w` (zero padding `op.pads`), without bias or
    activation, as `direct_conv` computes it to rounding."""
    top, bottom, left, right = op.pads
    n, h, width, cin = x.shape
    kh, kw, _, cout = w.shape
    out_h, out_w = h + top + bottom - kh + 1, width + left + right - kw + 1
    nw = fft_length(max(width + max(left, right), out_w))
    freqs = nw // 2 + 1
    spectra = jnp.fft.rfft(x.astype(jnp.float32).transpose(0, 1, 3, 2), n=nw, axis=-1)  # (N, H, C, V)
    z = jnp.stack([spectra.real, spectra.imag], axis=-1).transpose(3, 0, 1, 2, 4)  # (V, N, H, C, 2)
    z = jnp.pad(z, ((0, 0), (0, 0), (top, bottom), (0, 0), (0, 0)))
    # Each output row's kh input rows side by side: one matrix product per frequency.
    rows = jnp.stack([z[:, :, a : a + out_h] for a in range(kh)], axis=3)  # (V, N, out_h, kh, C, 2)
    rows = rows.reshape(freqs, n * out_h, kh * cin * 2)
    kernel = _row_spectra(w, left, nw)
    y = jnp.einsum("vmk,vkc->vmc", rows, kernel, precision=lax.Precision.HIGHEST)
    y = y.reshape(freqs, n, out_h, cout, 2)
    product = lax.complex(y[..., 0], y[..., 1]).transpose(1, 2, 3, 0)  # (N, out_h, C_out, V)
    out = jnp.fft.irfft(product, n=nw, axis=-1)[..., :out_w]
    return out.transpose(0, 1, 3, 2).astype(x.dtype)
