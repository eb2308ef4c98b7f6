"""APNG frames composited by the specification, for srd's animation reader.

Pillow's APNG reader composites blend_op OVER as a masked paste, which gives the wrong alpha wherever a
partly transparent frame lands on a partly or fully opaque canvas (alpha a over opaque comes out a*a + 1 - a
instead of 1). So srd reads each frame record itself: the frame's own pixels are decoded by Pillow's PNG
decoder from a small PNG made of the file's IHDR (with the frame's size), PLTE, tRNS and the frame's data,
and composited here with non-premultiplied OVER, dispose ops and the canvas as the specification says.

A 16-bit APNG (IHDR bit depth 16) is composited at 16 bits, on a uint16 canvas: its frames' samples are
read whole (srd/imaging/png.py's decode_png16 for colour, Pillow's I;16 for gray), never reduced to their
high byte, so that a 16-bit APNG comes out a 16-bit APNG. Every other depth is composited at 8 bits.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from PIL import Image

from srd.imaging.png import WIDE_RAWMODES, decode_png16, png_rawmode

Rgba = npt.NDArray[np.uint8]
Rgba16 = npt.NDArray[np.uint16]
Canvas = Rgba | Rgba16  # a composited frame: uint8 RGBA, or uint16 RGBA for a 16-bit APNG
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class _Control:
    width: int
    height: int
    x: int
    y: int
    delay: Fraction  # seconds
    dispose: int  # 0 none, 1 background, 2 previous
    blend: int  # 0 source, 1 over


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The file's chunks up to IEND, or up to its end where it ends after a whole chunk without one (as
    Pillow reads it: a frame cut short still fails to decode)."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"the {kind!r} chunk is truncated")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _control(body: bytes, canvas: tuple[int, int]) -> _Control:
    """A frame record; dispose and blend values the specification does not define are taken as none and
    source, as Pillow takes them."""
    if len(body) != 26:
        raise ValueError("an fcTL chunk has the wrong length")
    _, w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
    if w == 0 or h == 0 or x + w > canvas[0] or y + h > canvas[1]:
        raise ValueError(f"a frame region {w}x{h}+{x}+{y} does not fit the {canvas[0]}x{canvas[1]} canvas")
    return _Control(
        w, h, x, y, Fraction(num, den or 100), dispose if dispose <= 2 else 0, blend if blend <= 1 else 0
    )


def apng_bits(data: bytes) -> int:
    """16 for an APNG whose IHDR declares 16-bit samples, else 8 (the depth its frames are composited at)."""
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            return 16 if len(body) == 13 and body[8] == 16 else 8
        break
    return 8


def _frame_png(ihdr: bytes, extra: bytes, control: _Control, data: bytes) -> bytes:
    header = struct.pack(">II", control.width, control.height) + ihdr[8:]
    return _SIGNATURE + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _decode(ihdr: bytes, extra: bytes, control: _Control, data: bytes) -> Rgba:
    """A frame of an APNG of 8 bits or fewer as 8-bit RGBA."""
    with Image.open(io.BytesIO(_frame_png(ihdr, extra, control, data)), formats=["PNG"]) as im:
        im.load()
        return np.asarray(im.convert("RGBA"), dtype=np.uint8)


def _keyed(color: Rgba16, key: object) -> Rgba16:
    """16-bit colour samples (H x W x 1 or 3) as RGBA, transparent where they equal the tRNS key."""
    opaque = np.ones(color.shape[:2], bool)
    if isinstance(key, int) and color.shape[2] == 1:
        opaque = color[..., 0] != np.int64(key)
    elif isinstance(key, tuple) and len(key) == color.shape[2]:
        opaque = (color != np.asarray(key, dtype=np.int64)).any(axis=2)
    rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
    alpha = np.where(opaque, np.uint16(65535), np.uint16(0)).astype(np.uint16)[..., None]
    return np.concatenate([rgb, alpha], axis=2)


def _decode16(ihdr: bytes, extra: bytes, control: _Control, data: bytes) -> Rgba16:
    """A frame of a 16-bit APNG as 16-bit RGBA, every sample whole."""
    png = _frame_png(ihdr, extra, control, data)
    with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
        rawmode, key = png_rawmode(im), im.info.get("transparency")
        if rawmode not in WIDE_RAWMODES:  # 16-bit gray, which Pillow reads whole as I;16
            im.load()
            return _keyed(np.asarray(im).astype(np.uint16)[..., None], key)
    samples = decode_png16(png, rawmode)
    if samples.shape[2] == 2:  # gray + alpha
        return np.concatenate([np.repeat(samples[..., :1], 3, axis=2), samples[..., 1:]], axis=2)
    return samples if samples.shape[2] == 4 else _keyed(samples, key)


def over(dst: Canvas, src: Canvas) -> Canvas:
    """`src` composited over `dst`, both non-premultiplied RGBA of one dtype (uint8 or uint16), rounded to
    that depth."""
    wide = dst.dtype == np.uint16
    maxv = 65535.0 if wide else 255.0
    dtype: type[np.floating] = np.float64 if wide else np.float32  # float32 cannot hold 16-bit sums exactly
    sa = src[..., 3:].astype(dtype) / maxv
    da = dst[..., 3:].astype(dtype) / maxv
    oa = sa + da * (1 - sa)
    colour = src[..., :3] * sa + dst[..., :3] * (da * (1 - sa))
    colour = np.divide(colour, oa, out=np.zeros_like(colour), where=oa > 0)
    out = np.clip(np.floor(np.concatenate([colour, oa * maxv], axis=2) + 0.5), 0, maxv)
    return out.astype(np.uint16) if wide else out.astype(np.uint8)


def apng_frames(data: bytes) -> Iterator[tuple[Canvas, int]]:
    """Each frame of an APNG as the whole canvas, RGBA (uint16 for a 16-bit APNG, else uint8), with its
    duration in milliseconds: the frames acTL declares (fewer where the file holds fewer), each lasting
    until the rounded sum of the delays so far, so that the durations add up to the delays' (frames of
    1/30 s last 33 or 34 ms).

    Raises ValueError (or zlib/Pillow errors) on a damaged file."""
    ihdr = extra = b""
    canvas: Canvas | None = None
    control: _Control | None = None
    pending: list[bytes] = []
    declared = shown = 0
    elapsed, shown_ms = Fraction(0), 0

    def show() -> Iterator[tuple[Canvas, int]]:
        nonlocal shown, elapsed, shown_ms
        assert canvas is not None and control is not None
        decode = _decode16 if canvas.dtype == np.uint16 else _decode
        sub = decode(ihdr, extra, control, b"".join(pending))
        region = (slice(control.y, control.y + control.height), slice(control.x, control.x + control.width))
        before = canvas[region].copy()
        canvas[region] = sub if control.blend == 0 else over(canvas[region], sub)
        elapsed += control.delay
        end_ms = round(elapsed * 1000)
        yield canvas.copy(), end_ms - shown_ms
        shown_ms = end_ms
        dispose = 1 if shown == 0 and control.dispose == 2 else control.dispose  # the specification's rule
        if dispose == 1:
            canvas[region] = 0
        elif dispose == 2:
            canvas[region] = before
        shown += 1

    for kind, body in _chunks(data):
        if kind == b"IHDR":
            ihdr = body
            width, height = struct.unpack(">II", body[:8])
            shape = (height, width, 4)
            wide = len(body) == 13 and body[8] == 16
            canvas = np.zeros(shape, np.uint16) if wide else np.zeros(shape, np.uint8)
        elif kind == b"acTL" and len(body) == 8:
            declared = struct.unpack(">I", body[:4])[0]
        elif kind in (b"PLTE", b"tRNS"):
            extra += _chunk(kind, body)
        elif kind == b"fcTL":
            if control is not None and pending:
                yield from show()
            if canvas is None:
                raise ValueError("fcTL before IHDR")
            if shown == declared:
                return
            control, pending = _control(body, (canvas.shape[1], canvas.shape[0])), []
        elif kind == b"IDAT" and control is not None:
            pending.append(body)
        elif kind == b"fdAT" and control is not None:
            pending.append(body[4:])
    if control is not None and pending:
        yield from show()


def apng_frame_count(data: bytes) -> int:
    """How many frames the APNG holds: its frame records (fcTL chunks), at most as many as acTL declares
    (Pillow plays no more; the specification calls the difference an error)."""
    declared = records = 0
    for kind, body in _chunks(data):
        if kind == b"acTL" and len(body) == 8:
            declared = struct.unpack(">I", body[:4])[0]
        records += kind == b"fcTL"
    return min(declared, records)
