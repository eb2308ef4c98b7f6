"""The streaming PNG writer's filter choice (srd/png_writer.py) against a plain int32 reference."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srd.png_writer import PngStreamWriter, filter_rows


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


@pytest.mark.parametrize(("bpp", "kind"), [(3, "smooth"), (4, "noise"), (6, "smooth"), (1, "noise")])
def test_filter_rows_equals_reference(bpp: int, kind: str) -> None:
    """The vectorised uint8 filter picks the same filters and bytes as the wide-integer reference."""
    rng = np.random.default_rng(bpp)
    if kind == "noise":
        rows = rng.integers(0, 256, (9, 15 * bpp), dtype=np.uint8)
    else:
        ramp = np.add.outer(np.arange(9), np.arange(15 * bpp)) * 7
        rows = ((ramp + rng.integers(0, 3, ramp.shape)) % 256).astype(np.uint8)
    prev = rng.integers(0, 256, rows.shape[1], dtype=np.uint8)
    assert filter_rows(rows, prev, bpp) == _reference_filter(rows, prev, bpp)


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
