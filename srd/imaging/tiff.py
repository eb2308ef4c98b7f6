"""16-bit colour TIFF, which Pillow reads only as 8 bits and cannot write: read with Pillow's own decoders
(every compression it knows) and two unpackings, written by srd as deflate-compressed strips.

Reading reuses the trick of srd/imaging/png.py: Pillow unpacks 16-bit samples to 8 bits by keeping the
high byte ("RGB;16L" on a little-endian file takes each sample's second byte); decoding a second time with
the opposite byte order's rawmode keeps the other byte. Both halves give the samples exactly.
"""

from __future__ import annotations

import io
import struct
import sys

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile
from zlib_ng import zlib_ng

from srd.imaging.metadata import Metadata

Uint16Array = npt.NDArray[np.uint16]
WIDE_RAWMODES = frozenset(f"{mode};16{order}" for mode in ("RGB", "RGBA") for order in "LBN")
_SWAP = {"16L": "16B", "16B": "16L", "16N": "16B" if sys.byteorder == "little" else "16L"}
_STRIP_BYTES = 1 << 20


def _rawmode(args: object) -> object:
    return args[0] if isinstance(args, tuple) and args else args


def tiff16_rawmode(im: ImageFile.ImageFile) -> str | None:
    """The 16-bit colour rawmode of a lazily opened TIFF (all its tiles), or None."""
    if im.format != "TIFF" or not im.tile:
        return None
    modes = {_rawmode(tile.args) for tile in im.tile}
    rawmode = modes.pop() if len(modes) == 1 else None
    return rawmode if isinstance(rawmode, str) and rawmode in WIDE_RAWMODES else None


def _decode_as(data: bytes, page: int, rawmode: str) -> npt.NDArray[np.uint8]:
    with Image.open(io.BytesIO(data), formats=["TIFF"]) as im:
        im.seek(page)
        im.tile = [
            tile._replace(args=(rawmode, *tile.args[1:]) if isinstance(tile.args, tuple) else rawmode)
            for tile in im.tile
        ]
        im.load()
        return np.asarray(im, dtype=np.uint8)


def decode_tiff16(data: bytes, rawmode: str, page: int = 0) -> Uint16Array:
    """Samples of a 16-bit RGB or RGBA TIFF page as H x W x C uint16."""
    mode, order = rawmode.split(";")
    other = f"{mode};{_SWAP[order]}"
    high = _decode_as(data, page, rawmode).astype(np.uint16)
    low = _decode_as(data, page, other).astype(np.uint16)
    return ((high << 8) | low).astype(np.uint16)


def _rational(value: float) -> bytes:
    return struct.pack("<II", max(1, round(value * 100)), 100)


def encode_tiff16(samples: Uint16Array, icc: bytes | None, metadata: Metadata) -> bytes:
    """A little-endian TIFF of H x W x 3 (RGB) or 4 (RGBA, unassociated alpha) uint16 samples, deflate
    strips of about 1 MiB raw."""
    H, W, C = samples.shape
    if C not in (3, 4):
        raise ValueError(f"16-bit TIFF colour needs 3 or 4 channels, got {C}")
    row_bytes = W * C * 2
    rows_per_strip = max(1, _STRIP_BYTES // row_bytes)
    raw = np.ascontiguousarray(samples, dtype="<u2").view(np.uint8).reshape(H, row_bytes)
    strips = [zlib_ng.compress(raw[y : y + rows_per_strip].tobytes(), 6) for y in range(0, H, rows_per_strip)]
    # (tag, type, count, value bytes); values over 4 bytes are stored after the IFD.
    entries: list[tuple[int, int, int, bytes]] = [
        (256, 4, 1, struct.pack("<I", W)),
        (257, 4, 1, struct.pack("<I", H)),
        (258, 3, C, struct.pack(f"<{C}H", *([16] * C))),
        (259, 3, 1, struct.pack("<H", 8)),  # Adobe deflate
        (262, 3, 1, struct.pack("<H", 2)),  # RGB
        (273, 4, len(strips), bytes(4 * len(strips))),  # strip offsets, filled in below
        (277, 3, 1, struct.pack("<H", C)),
        (278, 4, 1, struct.pack("<I", rows_per_strip)),
        (279, 4, len(strips), struct.pack(f"<{len(strips)}I", *(len(s) for s in strips))),
        (284, 3, 1, struct.pack("<H", 1)),  # chunky
    ]
    if metadata.dpi is not None:
        entries += [(282, 5, 1, _rational(metadata.dpi[0])), (283, 5, 1, _rational(metadata.dpi[1]))]
        entries.append((296, 3, 1, struct.pack("<H", 2)))  # inch
    if C == 4:
        entries.append((338, 3, 1, struct.pack("<H", 2)))  # unassociated alpha
    entries.append((339, 3, C, struct.pack(f"<{C}H", *([1] * C))))  # unsigned integers
    if icc:
        entries.append((34675, 7, len(icc), icc))
    entries.sort(key=lambda entry: entry[0])
    ifd_offset = 8
    cursor = ifd_offset + 2 + 12 * len(entries) + 4
    blobs: list[bytes] = []
    data_start = cursor + sum(len(v) + (len(v) & 1) for _, _, _, v in entries if len(v) > 4)
    offsets, position = [], data_start
    for strip in strips:
        offsets.append(position)
        position += len(strip)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, planned in entries:
        value = struct.pack(f"<{len(offsets)}I", *offsets) if tag == 273 else planned
        if len(value) <= 4:
            ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, kind, count, cursor)
            padded = value + b"\0" * (len(value) & 1)
            blobs.append(padded)
            cursor += len(padded)
    ifd += struct.pack("<I", 0)
    out = b"II*\0" + struct.pack("<I", ifd_offset) + ifd + b"".join(blobs)
    if len(out) != data_start:
        raise AssertionError(f"TIFF layout: data at {len(out)}, planned {data_start}")
    return out + b"".join(strips)
