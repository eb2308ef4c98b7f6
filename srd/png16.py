"""16-bit colour PNG, which Pillow reads only as 8 bits and cannot write; and srd's PNG output at any depth.

Reading reuses Pillow's own PNG decoder (zlib, the five row filters, Adam7 interlacing all in C) and only
changes how the unfiltered bytes are unpacked: the rawmode "RGB;16B" keeps the high byte of each big-endian
sample and "RGB;16L" keeps the other byte, which in a big-endian file is the low byte. Two decodes give
both halves exactly. Gray + alpha (4 bytes a pixel) is decoded as 8-bit RGBA, which has the same pixel
size, so the filters and interlacing see the same bytes.

Writing uses srd.png_writer's streaming encoder (C or numpy filters + zlib) for 8- and 16-bit files alike:
with its C filter and zlib's RLE strategy it is 4-5x faster than Pillow's PNG encoder at the same size.
pypng would do both jobs but runs its filters in pure Python, seconds per megapixel; this stays in C.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile

from srd.png_writer import DEFAULT_LEVEL, DEFAULT_STRATEGY, PngStreamWriter

Uint16Array = npt.NDArray[np.uint16]

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
) -> bytes:
    """A complete PNG of H x W x C samples (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), 8-bit for uint8
    samples and 16-bit for uint16."""
    H, W, C = samples.shape
    bits = 16 if samples.dtype == np.uint16 else 8
    buffer = io.BytesIO()
    writer = PngStreamWriter(buffer, W, H, C, bits, icc_profile, level=level, strategy=strategy)
    writer.write_rows(samples)
    writer.close()
    return buffer.getvalue()
