"""Float pixels to integer samples (srd/imaging/raster.py quantize, srd/_native/quantize.c): the C pass and
the numpy one against a per-sample reference written from the definition, floor(x * maxv + 0.5) clipped
to 0..maxv in float32 steps, NaN to 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srd.imaging import raster
from srd.imaging.raster import quantize, quantize_numpy

DEPTHS = [(255, np.uint8), (65535, np.uint16)]


def _reference(x: np.ndarray, maxv: int) -> list[int]:
    out = []
    for value in x.ravel().tolist():
        v = np.float32(value) * np.float32(maxv)  # rounded to float32, then the add rounded again
        v = np.float32(v + np.float32(0.5))
        out.append(0 if math.isnan(v) or v < 0 else maxv if v >= maxv else math.floor(v))
    return out


def _hard_values(maxv: int) -> np.ndarray:
    """Every step's edge: exact k / maxv, one float32 ulp either side, the halfway points, out of range,
    signed zero, infinities and NaN."""
    k = np.arange(0, maxv + 1, max(1, maxv // 300), dtype=np.float32)
    exact = k / np.float32(maxv)
    half = (k + np.float32(0.5)) / np.float32(maxv)
    near = [np.nextafter(a, np.float32(direction)) for a in (exact, half) for direction in (-1, 2)]
    specials = np.array([-0.0, 0.0, -1e-9, 1.0, 1.0000001, 2.0, -5.0, 1e30, -1e30, np.inf, -np.inf, np.nan])
    return np.concatenate([exact, half, *near, specials.astype(np.float32)]).astype(np.float32)


@pytest.mark.parametrize(("maxv", "dtype"), DEPTHS)
@pytest.mark.parametrize("implementation", ["quantize", "numpy"])
def test_quantize_equals_the_definition(
    maxv: int, dtype: type[np.unsignedinteger], implementation: str
) -> None:
    fn = quantize if implementation == "quantize" else quantize_numpy
    rng = np.random.default_rng(maxv)
    values = np.concatenate([_hard_values(maxv), rng.uniform(-0.2, 1.2, 4000).astype(np.float32)])
    got = fn(values.reshape(-1, 1, 1), maxv, dtype)
    assert got.dtype == dtype and got.shape == (values.size, 1, 1)
    assert got.ravel().tolist() == _reference(values, maxv)


@pytest.mark.parametrize(("maxv", "dtype"), DEPTHS)
def test_quantize_of_views_and_odd_shapes(maxv: int, dtype: type[np.unsignedinteger]) -> None:
    """A strided view (every other column, one channel) and lengths that leave a tail after the vector
    loop give the same samples as the numpy pass; the input is left as it was."""
    rng = np.random.default_rng(7)
    image = rng.uniform(-0.1, 1.1, (37, 53, 3)).astype(np.float32)
    before = image.copy()
    for view in (image, image[:, ::2], image[5:6, 3:4, 1:], image[:, :, 2:3], image[:0]):
        np.testing.assert_array_equal(quantize(view, maxv, dtype), quantize_numpy(view, maxv, dtype))
    np.testing.assert_array_equal(image, before)


def test_the_c_quantiser_is_built() -> None:
    """CI and `pip install` build srd/_native/quantize.c; without it every encode quantises in numpy."""
    assert raster._native is not None, "srd._quantize was not built: install with a C compiler"


def test_c_quantiser_rejects_mismatched_buffers() -> None:
    if raster._native is None:
        pytest.skip("built without srd._quantize (test_the_c_quantiser_is_built fails)")
    src = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="255 or 65535"):
        raster._native.quantize(src, np.empty(6, np.uint8), 1023)
    with pytest.raises(ValueError, match="byte"):
        raster._native.quantize(src, np.empty(5, np.uint8), 255)
    with pytest.raises(ValueError, match="byte"):
        raster._native.quantize(src, np.empty(6, np.uint8), 65535)
