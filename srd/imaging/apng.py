"""APNG frames composited by the specification, for srd's animation reader.

Pillow's APNG reader composites blend_op OVER as a masked paste, which gives the wrong alpha wherever a
partly transparent frame lands on a partly or fully opaque canvas (alpha a over opaque comes out a*a + 1 - a
instead of 1). So srd reads each frame record itself: the frame's own pixels are decoded by Pillow's PNG
decoder from a small PNG made of the file's IHDR (with the frame's size), PLTE, tRNS and the frame's data,
and composited here with non-premultiplied OVER, dispose ops and the canvas as the specification says.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

Rgba = npt.NDArray[np.uint8]
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class _Control:
    width: int
    height: int
    x: int
    y: int
    duration: int  # milliseconds
    dispose: int  # 0 none, 1 background, 2 previous
    blend: int  # 0 source, 1 over


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
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
    raise ValueError("the file ends before its IEND chunk")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _control(body: bytes, canvas: tuple[int, int]) -> _Control:
    if len(body) != 26:
        raise ValueError("an fcTL chunk has the wrong length")
    _, w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
    if w == 0 or h == 0 or x + w > canvas[0] or y + h > canvas[1] or dispose > 2 or blend > 1:
        raise ValueError(f"a frame region {w}x{h}+{x}+{y} does not fit the {canvas[0]}x{canvas[1]} canvas")
    return _Control(w, h, x, y, round(num * 1000 / (den or 100)), dispose, blend)


def _decode(ihdr: bytes, extra: bytes, control: _Control, data: bytes) -> Rgba:
    header = struct.pack(">II", control.width, control.height) + ihdr[8:]
    png = _SIGNATURE + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
        im.load()
        if im.mode.startswith("I;16"):  # 16-bit gray: its high byte, as Pillow reduces 16-bit colour
            gray = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
            rgba = np.asarray(Image.fromarray(gray).convert("RGBA"))
            if "transparency" in im.info:
                rgba = rgba.copy()
                rgba[np.asarray(im) == im.info["transparency"], 3] = 0
            return rgba
        return np.asarray(im.convert("RGBA"), dtype=np.uint8)


def over(dst: Rgba, src: Rgba) -> Rgba:
    """`src` composited over `dst`, both non-premultiplied 8-bit RGBA, rounded to 8 bits."""
    sa = src[..., 3:].astype(np.float32) / 255
    da = dst[..., 3:].astype(np.float32) / 255
    oa = sa + da * (1 - sa)
    colour = src[..., :3] * sa + dst[..., :3] * (da * (1 - sa))
    colour = np.divide(colour, oa, out=np.zeros_like(colour), where=oa > 0)
    out = np.concatenate([colour, oa * 255], axis=2)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def apng_frames(data: bytes) -> Iterator[tuple[Rgba, int]]:
    """Each frame of an APNG as the whole canvas, 8-bit RGBA, with its duration in milliseconds.

    Raises ValueError (or zlib/Pillow errors) on a damaged file."""
    ihdr = extra = b""
    canvas: Rgba | None = None
    control: _Control | None = None
    pending: list[bytes] = []
    first = True

    def show() -> Iterator[tuple[Rgba, int]]:
        nonlocal canvas, first
        assert canvas is not None and control is not None
        sub = _decode(ihdr, extra, control, b"".join(pending))
        region = (slice(control.y, control.y + control.height), slice(control.x, control.x + control.width))
        before = canvas[region].copy()
        canvas[region] = sub if control.blend == 0 else over(canvas[region], sub)
        yield canvas.copy(), control.duration
        dispose = 1 if first and control.dispose == 2 else control.dispose  # the specification's rule
        if dispose == 1:
            canvas[region] = 0
        elif dispose == 2:
            canvas[region] = before
        first = False

    for kind, body in _chunks(data):
        if kind == b"IHDR":
            ihdr = body
            width, height = struct.unpack(">II", body[:8])
            canvas = np.zeros((height, width, 4), np.uint8)
        elif kind in (b"PLTE", b"tRNS"):
            extra += _chunk(kind, body)
        elif kind == b"fcTL":
            if control is not None and pending:
                yield from show()
            if canvas is None:
                raise ValueError("fcTL before IHDR")
            control, pending = _control(body, (canvas.shape[1], canvas.shape[0])), []
        elif kind == b"IDAT" and control is not None:
            pending.append(body)
        elif kind == b"fdAT" and control is not None:
            pending.append(body[4:])
    if control is not None and pending:
        yield from show()


def apng_frame_count(data: bytes) -> int:
    """How many frame records (fcTL chunks) the APNG holds."""
    return sum(1 for kind, _ in _chunks(data) if kind == b"fcTL")
