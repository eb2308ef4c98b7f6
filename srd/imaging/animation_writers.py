"""Streaming writers of upscaled animations: GIF and APNG written frame by frame by srd, WebP through
libwebp's animation encoder (which keeps only the compressed frames).

Pillow's own save_all would need every frame at once (its GIF and APNG writers collect them all to drop
unchanged areas), which an animation of a thousand 4x frames does not allow. An APNG frame is the whole
canvas replacing the last one (dispose none with blend source), so each shows exactly as upscaled, at 8 or
16 bits a sample (a 16-bit APNG input stays 16-bit); a GIF frame is the rectangle that changed, with the
disposal the next frame needs (srd/imaging/gif.py). GIF and WebP take 8-bit frames only.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np
from PIL import Image
from zlib_ng import zlib_ng

from srd.imaging.animation import FrameSink, Rgba
from srd.imaging.apng import Canvas
from srd.imaging.gif import GifWriter
from srd.imaging.metadata import Metadata, png_chunks
from srd.imaging.png import SIGNATURE, STRATEGIES, chunk, filter_rows
from srd.imaging.png_options import DEFAULT_LEVEL


def eight_bit(rgba: Canvas) -> Rgba:
    """A frame as uint8: as given, or rounded from uint16 (the 8-bit writers' guard; write_animation gives
    them 8-bit frames)."""
    if rgba.dtype == np.uint8:
        return np.asarray(rgba, np.uint8)
    return ((rgba.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def apng_delay(duration: int) -> tuple[int, int]:
    """A duration in ms as fcTL's 16-bit fraction of a second: thousandths up to 65.535 s, hundredths or
    whole seconds past that (at most 65535 s)."""
    if duration <= 65535:
        return max(0, duration), 1000
    if duration % 10 == 0 and duration // 10 <= 65535:
        return duration // 10, 100
    return min(round(duration / 1000), 65535), 1


class ApngWriter:
    """APNG, RGBA of 8 or 16 bits, every frame full-canvas with blend source; the first frame is the PNG's
    image."""

    def __init__(
        self,
        out: BinaryIO,
        size: tuple[int, int],
        frames: int,
        plays: int,
        icc: bytes | None,
        metadata: Metadata,
        bits: int = 8,
    ) -> None:
        if bits not in (8, 16):
            raise ValueError(f"an APNG is written at 8 or 16 bits, not {bits}")
        self._out, self._size, self._frames, self._bits = out, size, frames, bits
        self._sequence = self._written = 0
        out.write(SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", size[0], size[1], bits, 6, 0, 0, 0)))
        if icc:
            out.write(chunk(b"iCCP", b"ICC Profile\0\0" + zlib_ng.compress(icc)))
        for kind, body in png_chunks(metadata):
            out.write(chunk(kind, body))
        out.write(chunk(b"acTL", struct.pack(">II", frames, plays)))

    def add(self, rgba: Canvas, duration: int) -> None:
        if self._written == self._frames:
            raise ValueError("more frames than the APNG declared")
        if rgba.dtype != (np.uint16 if self._bits == 16 else np.uint8):
            raise ValueError(f"a {rgba.dtype} frame for a {self._bits}-bit APNG")
        width, height = self._size
        num, den = apng_delay(duration)
        self._out.write(
            chunk(b"fcTL", struct.pack(">IIIIIHHBB", self._sequence, width, height, 0, 0, num, den, 0, 0))
        )
        self._sequence += 1
        bpp = 4 * self._bits // 8
        samples = np.ascontiguousarray(rgba, dtype=">u2" if self._bits == 16 else np.uint8)
        rows = samples.view(np.uint8).reshape(height, width * bpp)
        compressor = zlib_ng.compressobj(DEFAULT_LEVEL, zlib_ng.DEFLATED, 15, 9, STRATEGIES["rle"])
        data = (
            compressor.compress(filter_rows(rows, np.zeros(width * bpp, np.uint8), bpp=bpp))
            + compressor.flush()
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

    def add(self, rgba: Canvas, duration: int) -> None:
        frame = Image.fromarray(np.ascontiguousarray(eight_bit(rgba)), "RGBA")
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


class _EightBit:
    """A writer of 8-bit frames as a FrameSink (frames given as uint16 are rounded to 8 bits)."""

    def __init__(self, writer: GifWriter) -> None:
        self._writer = writer

    def add(self, rgba: Canvas, duration: int) -> None:
        self._writer.add(eight_bit(rgba), duration)

    def close(self) -> None:
        self._writer.close()


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
    bits: int = 8,
) -> FrameSink:
    """The streaming writer of an animation in srd's format `fmt`: png (APNG, of `bits` 8 or 16), webp or
    gif (8-bit)."""
    if fmt == "gif":
        return _EightBit(GifWriter(out, size, plays))
    if fmt == "png":
        return ApngWriter(out, size, frames, plays, icc, metadata, bits)
    if fmt == "webp":
        return WebpWriter(out, size, plays, icc, metadata, quality, lossless)
    raise ValueError(f"srd writes animations as png (APNG), webp or gif, not {fmt!r}")
