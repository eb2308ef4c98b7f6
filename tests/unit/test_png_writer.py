"""The streaming PNG writer (srd/png_writer.py): its filter choice, in C and in numpy, against a plain int32
reference, and its zlib strategies."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srd.imaging import png as png_writer
from srd.imaging.png import STRATEGIES, PngStreamWriter, filter_rows_numpy

FILTERS = {"numpy": filter_rows_numpy, "c": png_writer.filter_rows}


def _reference_filter(rows: np.ndarray, prev: np.ndarray, bpp: int) -> bytes:
    """PNG filtering written from the spec in wide integers: each row's 5 filters, least absolute sum."""
    out = bytearray()
    above = prev.astype(np.int32)
    for row in rows.astype(np.int32):
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), above[:-bpp]])
        p = left + above - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - above), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upleft))
        filtered = [row, row - left, row - above, row - (left + above) // 2, row - paeth]
        wrapped = [np.mod(f, 256) for f in filtered]
        costs = [int(np.minimum(w, 256 - w).sum()) for w in wrapped]
        kind = int(np.argmin(costs))
        out += bytes([kind]) + wrapped[kind].astype(np.uint8).tobytes()
        above = row
    return bytes(out)


def test_the_c_filter_is_built() -> None:
    """CI and `pip install` build srd/_native/png_filter.c; without it PNG filtering is 16x slower."""
    assert png_writer._native is not None, "srd._pngfilter was not built: install with a C compiler"


@pytest.mark.parametrize("implementation", sorted(FILTERS))
@pytest.mark.parametrize(
    ("bpp", "width", "kind"),
    [(3, 15, "smooth"), (4, 15, "noise"), (6, 15, "smooth"), (1, 15, "noise"), (8, 40, "mixed")]
    + [(bpp, width, "mixed") for bpp in (1, 2, 3, 4) for width in (1, 2, 3)],
)
def test_filter_rows_equals_reference(implementation: str, bpp: int, width: int, kind: str) -> None:
    """Both filters pick the same filter types and bytes as the wide-integer reference, also on rows
    no wider than one pixel (no left neighbour at all) and where costs tie."""
    rng = np.random.default_rng(bpp * 100 + width)
    noise = rng.integers(0, 256, (9, width * bpp), dtype=np.uint8)
    ramp = np.add.outer(np.arange(9), np.arange(width * bpp)) * 7
    smooth = ((ramp + rng.integers(0, 3, ramp.shape)) % 256).astype(np.uint8)
    rows = {"noise": noise, "smooth": smooth, "mixed": np.vstack([noise[:3], smooth[3:6], noise[6:] * 0])}[
        kind
    ]
    prev = rng.integers(0, 256, rows.shape[1], dtype=np.uint8)
    assert FILTERS[implementation](rows, prev, bpp) == _reference_filter(rows, prev, bpp)


def test_c_filter_matches_numpy_on_a_real_photo() -> None:
    """A whole 8-bit RGB photo-like image and the same rows as 16-bit samples (bpp 6): identical bytes."""
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[0:120, 0:333]
    pixels = np.stack([np.sin(xx / 9.0) * 90 + yy, xx % 200, (xx * yy) % 256], 2) + rng.normal(
        0, 3, (120, 333, 3)
    )
    rows8 = np.clip(pixels, 0, 255).astype(np.uint8).reshape(120, -1)
    rows16 = (rows8.astype(np.uint16) * 257 + rng.integers(0, 9, rows8.shape)).astype(">u2").view(np.uint8)
    for rows, bpp in ((rows8, 3), (rows16, 6)):
        prev = np.zeros(rows.shape[1], np.uint8)
        assert png_writer.filter_rows(rows, prev, bpp) == filter_rows_numpy(rows, prev, bpp)


def test_c_filter_rejects_rows_of_the_wrong_width() -> None:
    if png_writer._native is None:
        pytest.skip("built without srd._pngfilter (test_the_c_filter_is_built fails)")
    with pytest.raises(ValueError, match="whole rows"):
        png_writer._native.filter_rows(b"\0" * 10, b"\0" * 3, 3)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("level", [0, 1, 9])
def test_every_strategy_and_level_decodes_to_the_same_rows(strategy: str, level: int) -> None:
    rng = np.random.default_rng(1)
    pixels = (np.add.outer(np.arange(40), np.arange(30))[..., None] * [1, 2, 3] % 256).astype(np.uint8)
    pixels[10:20] = rng.integers(0, 256, pixels[10:20].shape, dtype=np.uint8)
    out = io.BytesIO()
    writer = PngStreamWriter(out, 30, 40, 3, 8, level=level, strategy=strategy)
    writer.write_rows(pixels)
    writer.close()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.getvalue()))), pixels)


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="strategy"):
        PngStreamWriter(io.BytesIO(), 1, 1, 3, 8, strategy="lz4")


def test_streamed_png_decodes_to_its_rows() -> None:
    """Rows written in uneven bands come back from Pillow unchanged."""
    rng = np.random.default_rng(0)
    pixels = (np.add.outer(np.arange(37), np.arange(23))[..., None] * [3, 5, 7] % 256).astype(np.uint8)
    pixels[::5] = rng.integers(0, 256, pixels[::5].shape, dtype=np.uint8)
    out = io.BytesIO()
    writer = PngStreamWriter(out, 23, 37, 3, 8)
    for start, stop in [(0, 10), (10, 11), (11, 37)]:
        writer.write_rows(pixels[start:stop])
    writer.close()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.getvalue()))), pixels)
