"""16-bit colour PNG, which Pillow reads only as 8 bits and cannot write.

Reading reuses Pillow's own PNG decoder (zlib, the five row filters, Adam7 interlacing all in C) and only
changes how the unfiltered bytes are unpacked: the rawmode "RGB;16B" keeps the high byte of each big-endian
sample and "RGB;16L" keeps the other byte, which in a big-endian file is the low byte. Two decodes give
both halves exactly. Gray + alpha (4 bytes a pixel) is decoded as 8-bit RGBA, which has the same pixel
size, so the filters and interlacing see the same bytes.

Writing is a small numpy + zlib encoder: filters chosen per row by libpng's minimum-sum heuristic.
pypng would do both jobs but runs its filters in pure Python, seconds per megapixel; this stays in C.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile

Uint16Array = npt.NDArray[np.uint16]

# Rawmodes Pillow gives 16-bit PNG colour types it would otherwise reduce to 8 bits (I;16 gray is exact).
WIDE_RAWMODES = frozenset({"RGB;16B", "RGBA;16B", "LA;16B"})

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)
_IDAT_SIZE = 1 << 20
_FILTER_BLOCK_BYTES = 1 << 22  # rows filtered together; bounds the 5 candidate arrays to ~40 MB


def png_rawmode(im: ImageFile.ImageFile) -> str | None:
    """The rawmode of a lazily opened PNG's pixel data, or None when it is not a single zip tile."""
    if im.format != "PNG" or len(im.tile) != 1:
        return None
    args = im.tile[0].args
    return args if isinstance(args, str) else None


def _decode_as(data: bytes, rawmode: str) -> npt.NDArray[np.uint8]:
    with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
        im.tile = [tile._replace(args=rawmode) for tile in im.tile]
        im.load()
        return np.asarray(im, dtype=np.uint8)


def decode_png16(data: bytes, rawmode: str) -> Uint16Array:
    """Samples of a 16-bit gray+alpha, RGB or RGBA PNG as H x W x C uint16 (C = 2, 3 or 4)."""
    if rawmode == "LA;16B":
        quad = _decode_as(data, "RGBA").astype(np.uint16)
        return ((quad[..., 0::2] << 8) | quad[..., 1::2]).astype(np.uint16)
    if rawmode not in ("RGB;16B", "RGBA;16B"):
        raise ValueError(f"not a 16-bit colour PNG rawmode: {rawmode}")
    high = _decode_as(data, rawmode).astype(np.uint16)
    low = _decode_as(data, rawmode.replace(";16B", ";16L")).astype(np.uint16)
    return ((high << 8) | low).astype(np.uint16)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _filter_rows(rows: npt.NDArray[np.uint8], prev: npt.NDArray[np.uint8], bpp: int) -> bytes:
    """Filter a block of rows, each with the filter type whose output has the least absolute sum."""
    x = rows.astype(np.int16)
    b = np.vstack([prev[None, :], rows[:-1]]).astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - ((a + b) >> 1), x - paeth]).astype(np.uint8)
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    best = np.argmin(cost, axis=0)
    chosen = candidates[best, np.arange(rows.shape[0])]
    return np.hstack([best.astype(np.uint8)[:, None], chosen]).tobytes()


def encode_png16(samples: Uint16Array, icc_profile: bytes | None = None, *, level: int = 6) -> bytes:
    """A complete 16-bit PNG of H x W x C samples (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)."""
    H, W, C = samples.shape
    if C not in _COLOR_TYPE:
        raise ValueError(f"16-bit PNG needs 1 to 4 channels, got {C}")
    raw = np.ascontiguousarray(samples, dtype=">u2").view(np.uint8).reshape(H, W * C * 2)
    compressor = zlib.compressobj(level)
    compressed = []
    prev = np.zeros(raw.shape[1], dtype=np.uint8)
    block = max(1, _FILTER_BLOCK_BYTES // max(1, raw.shape[1]))
    for start in range(0, H, block):
        rows = raw[start : start + block]
        compressed.append(compressor.compress(_filter_rows(rows, prev, bpp=2 * C)))
        prev = rows[-1]
    compressed.append(compressor.flush())
    stream = b"".join(compressed)

    out = [_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, _COLOR_TYPE[C], 0, 0, 0))]
    if icc_profile:
        out.append(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    out.extend(_chunk(b"IDAT", stream[i : i + _IDAT_SIZE]) for i in range(0, max(1, len(stream)), _IDAT_SIZE))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
