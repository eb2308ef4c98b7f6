"""Streaming writers of upscaled animations: GIF and APNG written frame by frame by srd, WebP through
libwebp's animation encoder (which keeps only the compressed frames).

Pillow's own save_all would need every frame at once (its GIF and APNG writers collect them all to drop
unchanged areas), which an animation of a thousand 4x frames does not allow. An APNG frame is the whole
canvas replacing the last one (dispose none with blend source), so each shows exactly as upscaled; a GIF
frame is the rectangle that changed, with the disposal the next frame needs (srd/imaging/gif.py).
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np
from PIL import Image

from srd.imaging.animation import FrameSink, Rgba
from srd.imaging.gif import GifWriter
from srd.imaging.metadata import Metadata, png_chunks
from srd.imaging.png import DEFAULT_LEVEL, SIGNATURE, STRATEGIES, chunk, filter_rows


class ApngWriter:
    """APNG, 8-bit RGBA, every frame full-canvas with blend source; the first frame is the PNG's image."""

    def __init__(
        self,
        out: BinaryIO,
        size: tuple[int, int],
        frames: int,
        plays: int,
        icc: bytes | None,
        metadata: Metadata,
    ) -> None:
        self._out, self._size, self._frames = out, size, frames
        self._sequence = self._written = 0
        out.write(SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", size[0], size[1], 8, 6, 0, 0, 0)))
        if icc:
            out.write(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
        for kind, body in png_chunks(metadata):
            out.write(chunk(kind, body))
        out.write(chunk(b"acTL", struct.pack(">II", frames, plays)))

    def add(self, rgba: Rgba, duration: int) -> None:
        if self._written == self._frames:
            raise ValueError("more frames than the APNG declared")
        width, height = self._size
        self._out.write(
            chunk(
                b"fcTL",
                struct.pack(
                    ">IIIIIHHBB", self._sequence, width, height, 0, 0, min(duration, 65535), 1000, 0, 0
                ),
            )
        )
        self._sequence += 1
        rows = np.ascontiguousarray(rgba).reshape(height, width * 4)
        compressor = zlib.compressobj(DEFAULT_LEVEL, zlib.DEFLATED, 15, 9, STRATEGIES["rle"])
        data = (
            compressor.compress(filter_rows(rows, np.zeros(width * 4, np.uint8), bpp=4)) + compressor.flush()
        )
        if self._written == 0:
            self._out.write(chunk(b"IDAT", data))
        else:
            self._out.write(chunk(b"fdAT", struct.pack(">I", self._sequence) + data))
            self._sequence += 1
        self._written += 1

    def close(self) -> None:
        if self._written != self._frames:
            raise ValueError(f"wrote {self._written} of the {self._frames} frames the APNG declared")
        self._out.write(chunk(b"IEND", b""))


class WebpWriter:
    """Animated WebP through libwebp's WebPAnimEncoder (as Pillow's save_all drives it)."""

    def __init__(
        self,
        out: BinaryIO,
        size: tuple[int, int],
        plays: int,
        icc: bytes | None,
        metadata: Metadata,
        quality: int,
        lossless: bool,
    ) -> None:
        from PIL import _webp

        self._out, self._icc, self._metadata = out, icc, metadata
        self._quality, self._lossless = quality, lossless
        kmin, kmax = (9, 17) if lossless else (3, 5)  # gif2webp's keyframe defaults, as Pillow uses
        self._encoder = _webp.WebPAnimEncoder(size, 0, plays, False, kmin, kmax, False, False)
        self._timestamp = 0

    def add(self, rgba: Rgba, duration: int) -> None:
        frame = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
        self._encoder.add(frame.getim(), self._timestamp, self._lossless, self._quality, 100, 4)
        self._timestamp += duration

    def close(self) -> None:
        self._encoder.add(None, self._timestamp, self._lossless, self._quality, 100, 0)
        meta = self._metadata
        exif = meta.exif or b""
        data = self._encoder.assemble(self._icc or b"", exif, meta.xmp or b"")
        if data is None:
            raise OSError("libwebp's animation encoder returned nothing")
        self._out.write(data)


def open_writer(
    fmt: str,
    out: BinaryIO,
    size: tuple[int, int],
    *,
    frames: int,
    plays: int,
    icc: bytes | None,
    metadata: Metadata,
    quality: int,
    lossless: bool,
) -> FrameSink:
    """The streaming writer of an animation in srd's format `fmt`: png (APNG), webp or gif."""
    if fmt == "gif":
        return GifWriter(out, size, plays)
    if fmt == "png":
        return ApngWriter(out, size, frames, plays, icc, metadata)
    if fmt == "webp":
        return WebpWriter(out, size, plays, icc, metadata, quality, lossless)
    raise ValueError(f"srd writes animations as png (APNG), webp or gif, not {fmt!r}")
