"""A streaming PNG encoder (8 or 16 bits, 1-4 channels) that writes rows as they are produced.

The upscaler produces an image one band of tile rows at a time; writing each band straight into the
file's zlib stream means a huge output never has to exist whole in memory (Pillow would need the whole
image, at 4 bytes a pixel for RGB). Filters are chosen per row by libpng's minimum-sum heuristic, in C
(srd/_native/png_filter.c, 16x faster than numpy) when that extension was built, else in numpy; both give
the same bytes. The deflate strategy is zlib's Z_RLE unless asked otherwise: on upscaled photos and art
it gives files as small as libpng's default (Z_FILTERED) at a quarter of the time, see STRATEGIES.

Reading 16-bit colour PNGs, which Pillow reads only as 8 bits, reuses Pillow's own PNG decoder (zlib, the five
row filters, Adam7 interlacing all in C) and only changes how the unfiltered bytes are unpacked: the rawmode
"RGB;16B" keeps the high byte of each big-endian sample and "RGB;16L" keeps the other byte, which in a
big-endian file is the low byte. Two decodes give both halves exactly. Gray + alpha (4 bytes a pixel) is
decoded as 8-bit RGBA, which has the same pixel size, so the filters and interlacing see the same bytes.
pypng would do both jobs but runs its filters in pure Python, seconds per megapixel; this stays in C.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile
from zlib_ng import zlib_ng

from srd.extensions import load_extension
from srd.imaging.png_options import DEFAULT_LEVEL, DEFAULT_STRATEGY, STRATEGY_NAMES

_native = load_extension("_pngfilter")
Uint16Array = npt.NDArray[np.uint16]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)
_IDAT_SIZE = 1 << 20
_FILTER_BLOCK_BYTES = 1 << 22  # rows filtered together (numpy makes 5 candidate arrays of this: ~40 MB)

# zlib strategies by name. Measured on 2x upconv_7 outputs of Set5/Set14 (1 Mpx, filtered as here): "rle"
# (runs only) gives files within -3%..+4% of libpng's "filtered" at level 4 on photos, 3-4x faster
# (27 vs 104 ms for lenna), but up to 35% larger on screenshots and flat graphics (ppt3), where
# "filtered" or "default" find the repeats; "huffman" is slightly faster still. The deflate is zlib-ng's
# (zlib's API and format): on a 1024 px RGB output, "rle" 25.8 -> 14.8 ms with the same bytes, "filtered"
# 92 -> 39 ms (Intel Xeon, lenna upsampled).
STRATEGIES = dict(
    zip(
        STRATEGY_NAMES,  # "rle", "filtered", "default", "huffman" (srd.imaging.png_options)
        (zlib_ng.Z_RLE, zlib_ng.Z_FILTERED, zlib_ng.Z_DEFAULT_STRATEGY, zlib_ng.Z_HUFFMAN_ONLY),
        strict=True,
    )
)


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib_ng.crc32(kind + body))


def filter_rows(rows: npt.NDArray[np.uint8], prev: npt.NDArray[np.uint8], bpp: int) -> bytes:
    """Filter R x N rows below `prev` (N bytes), each with the filter type of least absolute sum; return
    each row's filter-type byte followed by its filtered bytes."""
    if _native is not None:
        return bytes(_native.filter_rows(np.ascontiguousarray(rows), np.ascontiguousarray(prev), bpp))
    return filter_rows_numpy(rows, prev, bpp)


def filter_rows_numpy(rows: npt.NDArray[np.uint8], prev: npt.NDArray[np.uint8], bpp: int) -> bytes:
    """filter_rows in numpy, for builds without the C extension.

    Filters are differences modulo 256, so they are computed in uint8 (wrapping); only the Paeth
    predictor's choice needs signed 16-bit distances. A filtered byte v costs min(v, 256 - v), the
    magnitude of v read as a signed byte, as in libpng's heuristic.
    """
    x = rows
    b = np.vstack([prev[None, :], rows[:-1]])
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    pa = np.abs(b16 - c16)  # |p - a| with p = a + b - c
    pb = np.abs(a16 - c16)  # |p - b|
    pc = np.abs(a16 + b16 - 2 * c16)  # |p - c|
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    average = (a & b) + ((a ^ b) >> 1)  # floor((a + b) / 2) without leaving uint8
    candidates = np.stack([x, x - a, x - b, x - average, x - paeth])
    cost = np.minimum(candidates, -candidates).sum(axis=2, dtype=np.uint32)
    best = np.argmin(cost, axis=0)
    chosen = candidates[best, np.arange(rows.shape[0])]
    return np.hstack([best.astype(np.uint8)[:, None], chosen]).tobytes()


class PngStreamWriter:
    """Write a PNG of known size to a binary file, a band of rows at a time, then `close()`."""

    def __init__(
        self,
        out: BinaryIO,
        width: int,
        height: int,
        channels: int,
        bits: int,
        icc_profile: bytes | None = None,
        *,
        level: int = DEFAULT_LEVEL,
        strategy: str = DEFAULT_STRATEGY,
        chunks: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        if channels not in _COLOR_TYPE or bits not in (8, 16):
            raise ValueError(f"PNG needs 1 to 4 channels at 8 or 16 bits, got {channels} at {bits}")
        if strategy not in STRATEGIES:
            raise ValueError(f"PNG strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self._out = out
        self._width, self._height, self._channels, self._bits = width, height, channels, bits
        self._rows_written = 0
        self._compressor = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 15, 9, STRATEGIES[strategy])
        self._pending = bytearray()
        self._prev = np.zeros(width * channels * bits // 8, dtype=np.uint8)
        header = struct.pack(">IIBBBBB", width, height, bits, _COLOR_TYPE[channels], 0, 0, 0)
        out.write(SIGNATURE + chunk(b"IHDR", header))
        if icc_profile:
            out.write(chunk(b"iCCP", b"ICC Profile\0\0" + zlib_ng.compress(icc_profile)))
        for kind, body in chunks:  # ancillary chunks before IDAT (srd.imaging.metadata.png_chunks)
            out.write(chunk(kind, body))

    def write_rows(self, samples: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> None:
        """Append rows: an R x W x C array of uint8 (8-bit) or uint16 (16-bit) samples."""
        expected = (self._width, self._channels)
        if samples.ndim != 3 or (samples.shape[1], samples.shape[2]) != expected:
            raise ValueError(f"rows must be R x {expected[0]} x {expected[1]}, got {samples.shape}")
        if self._rows_written + samples.shape[0] > self._height:
            raise ValueError("more rows than the PNG's declared height")
        dtype = ">u2" if self._bits == 16 else np.uint8
        raw = np.ascontiguousarray(samples, dtype=dtype).view(np.uint8).reshape(samples.shape[0], -1)
        block = max(1, _FILTER_BLOCK_BYTES // max(1, raw.shape[1]))
        for start in range(0, raw.shape[0], block):
            rows = raw[start : start + block]
            self._emit(
                self._compressor.compress(filter_rows(rows, self._prev, bpp=self._channels * self._bits // 8))
            )
            self._prev = rows[-1].copy()
        self._rows_written += samples.shape[0]

    def _emit(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= _IDAT_SIZE:
            self._out.write(chunk(b"IDAT", bytes(self._pending[:_IDAT_SIZE])))
            del self._pending[:_IDAT_SIZE]

    def close(self) -> None:
        """Finish the zlib stream and write IEND; every declared row must have been written."""
        if self._rows_written != self._height:
            raise ValueError(f"wrote {self._rows_written} of {self._height} rows")
        self._pending += self._compressor.flush()
        self._out.write(chunk(b"IDAT", bytes(self._pending)))
        self._pending.clear()
        self._out.write(chunk(b"IEND", b""))


# Rawmodes Pillow gives 16-bit PNG colour types it would otherwise reduce to 8 bits (I;16 gray is exact).
WIDE_RAWMODES = frozenset({"RGB;16B", "RGBA;16B", "LA;16B"})


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


def encode_png(
    samples: npt.NDArray[np.uint8] | Uint16Array,
    icc_profile: bytes | None = None,
    *,
    level: int = DEFAULT_LEVEL,
    strategy: str = DEFAULT_STRATEGY,
    chunks: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A complete PNG of H x W x C samples (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), 8-bit for uint8
    samples and 16-bit for uint16."""
    H, W, C = samples.shape
    bits = 16 if samples.dtype == np.uint16 else 8
    buffer = io.BytesIO()
    writer = PngStreamWriter(
        buffer, W, H, C, bits, icc_profile, level=level, strategy=strategy, chunks=chunks
    )
    writer.write_rows(samples)
    writer.close()
    return buffer.getvalue()
