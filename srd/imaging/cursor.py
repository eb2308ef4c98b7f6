"""CUR cursors, read as the ICO icons they are laid out like.

Pillow's CUR reader takes each image as a bare bitmap: it drops a 32-bit image's alpha channel (the cursor
comes out opaque, its transparent corners black) and cannot read a PNG image at all, and both are common
in cursors. Its ICO reader handles both, but needs each directory entry's bit count, where a CUR entry
holds its hotspot instead; `cur_as_ico` puts the bit count back, taken from the image itself.
"""

from __future__ import annotations

import struct

CUR_MAGIC = b"\x00\x00\x02\x00"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ENTRY = 16  # bytes per directory entry, after the 6-byte header


def cur_as_ico(data: bytes) -> bytes:
    """The bytes of a CUR file as an ICO file of the same images: type 1, each entry's planes 1 and bit
    count that of its image (32 for a PNG image, a bitmap's biBitCount). Entries past the end of a
    truncated file are left as they are, for the ICO reader to refuse."""
    out = bytearray(data)
    out[2] = 1
    (count,) = struct.unpack_from("<H", data, 4)
    for index in range(count):
        entry = 6 + _ENTRY * index
        if entry + _ENTRY > len(data):
            break
        (offset,) = struct.unpack_from("<I", data, entry + 12)
        image = data[offset : offset + 16]
        if image.startswith(_PNG_MAGIC):
            bits = 32
        elif len(image) == 16:
            (bits,) = struct.unpack_from("<H", image, 14)  # BITMAPINFOHEADER.biBitCount
        else:
            continue
        struct.pack_into("<HH", out, entry + 4, 1, bits)
    return bytes(out)
