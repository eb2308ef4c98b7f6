"""Animated GIF and APNG files written by hand, frame records with offsets, disposal and blend modes as
given, and an independent compositor of each (the GIF89a and APNG specifications, in numpy), to check what
Pillow's `seek` gives srd. APNGs may be 16-bit (uint16 pixels) and gray, gray+alpha, RGB or RGBA; a 16-bit
APNG as srd writes it is read back here too (Pillow reads PNG colour only at 8 bits)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import GifImagePlugin, Image

Rgba = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SubFrame:
    """One frame record: pixels (H x W x C: gray, gray+alpha, RGB or RGBA; uint8, or uint16 for a 16-bit
    APNG) placed at (x, y), shown for `duration` ms, then disposed."""

    pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]
    x: int
    y: int
    duration: int
    dispose: int  # APNG: 0 none, 1 background, 2 previous. GIF: 1 none, 2 background, 3 previous
    blend: int = 0  # APNG: 0 source, 1 over (GIF: transparent pixels always leave the canvas as it was)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type


def _idat(pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> bytes:
    samples = pixels.astype(">u2") if pixels.dtype == np.uint16 else pixels
    raw = b"".join(b"\x00" + row.tobytes() for row in samples)
    return zlib.compress(raw)


def apng(size: tuple[int, int], frames: list[SubFrame], plays: int, trns: bytes = b"") -> bytes:
    """An APNG of the frames' depth and channels (all alike); the first frame, the default image, must cover
    the canvas. `trns` is a tRNS chunk's body (a colour key for gray or RGB)."""
    width, height = size
    first = frames[0].pixels
    bits, colour = (16 if first.dtype == np.uint16 else 8), _COLOUR_TYPE[first.shape[2]]
    out = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    )
    if trns:
        out += _chunk(b"tRNS", trns)
    out += _chunk(b"acTL", struct.pack(">II", len(frames), plays))
    sequence = 0
    for index, f in enumerate(frames):
        h, w = f.pixels.shape[:2]
        control = struct.pack(">IIIIIHHBB", sequence, w, h, f.x, f.y, f.duration, 1000, f.dispose, f.blend)
        out += _chunk(b"fcTL", control)
        sequence += 1
        if index == 0:
            out += _chunk(b"IDAT", _idat(f.pixels))
        else:
            out += _chunk(b"fdAT", struct.pack(">I", sequence) + _idat(f.pixels))
            sequence += 1
    return out + _chunk(b"IEND", b"")


def _over(dst: npt.NDArray[np.float64], src: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Non-premultiplied alpha OVER (the APNG specification's blend_op 1), in 0..1."""
    sa, da = src[..., 3:], dst[..., 3:]
    oa = sa + da * (1 - sa)
    colour = np.where(oa > 0, (src[..., :3] * sa + dst[..., :3] * da * (1 - sa)) / np.maximum(oa, 1e-12), 0)
    return np.concatenate([colour, oa], axis=2)


def as_rgba(
    pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], key: tuple[int, ...] | None = None
) -> npt.NDArray[np.float64]:
    """Gray, gray+alpha, RGB or RGBA samples as RGBA in 0..1; samples equal to `key` (a tRNS colour key of
    gray or RGB) transparent."""
    maxv = 65535.0 if pixels.dtype == np.uint16 else 255.0
    channels = pixels.shape[2]
    colour = pixels[..., : 3 if channels >= 3 else 1]
    if channels in (2, 4):
        alpha = pixels[..., -1:].astype(np.float64)
    elif key is not None:
        alpha = np.where((colour != np.asarray(key)).any(axis=2, keepdims=True), maxv, 0.0)
    else:
        alpha = np.full((*pixels.shape[:2], 1), maxv)
    rgb = np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour
    return np.concatenate([rgb.astype(np.float64), alpha], axis=2) / maxv


def composite_apng(
    size: tuple[int, int], frames: list[SubFrame], key: tuple[int, ...] | None = None
) -> list[npt.NDArray[np.float64]]:
    """Each frame's canvas as a viewer shows it, RGBA in 0..255, or 0..65535 for 16-bit frames (float: OVER
    is not integer)."""
    width, height = size
    maxv = 65535.0 if frames[0].pixels.dtype == np.uint16 else 255.0
    canvas = np.zeros((height, width, 4))
    shown = []
    for f in frames:
        h, w = f.pixels.shape[:2]
        before = canvas.copy()
        region = (slice(f.y, f.y + h), slice(f.x, f.x + w))
        src = as_rgba(f.pixels, key)
        canvas[region] = (src if f.blend == 0 else _over(canvas[region] / maxv, src)) * maxv
        shown.append(canvas.copy())
        if f.dispose == 1:
            canvas[region] = 0
        elif f.dispose == 2:
            canvas = before
    return shown


def gif(size: tuple[int, int], frames: list[SubFrame], loop: int | None) -> bytes:
    """A GIF89a of frames with local palettes; pixels with alpha 0 use the frame's transparent index 255."""
    width, height = size
    out = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    if loop is not None:
        out += b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
    for f in frames:
        colours, indices = np.unique(f.pixels[..., :3].reshape(-1, 3), axis=0, return_inverse=True)
        assert len(colours) <= 255
        index = indices.reshape(f.pixels.shape[:2]).astype(np.uint8)
        index[f.pixels[..., 3] == 0] = 255
        frame = Image.fromarray(index, "P")
        palette = colours.astype(np.uint8).flatten().tolist()
        frame.putpalette(palette + [0] * (768 - len(palette)))
        params = {
            "duration": f.duration,
            "disposal": f.dispose,
            "transparency": 255,
            "include_color_table": True,
        }
        out += b"".join(GifImagePlugin.getdata(frame, (f.x, f.y), **params))
    return out + b";"


def composite_gif(size: tuple[int, int], frames: list[SubFrame]) -> list[Rgba]:
    """Each frame's canvas by GIF89a's rules: transparent pixels keep the canvas, disposal 2 clears the
    frame's rectangle to transparent, 3 restores the canvas from before the frame."""
    width, height = size
    canvas = np.zeros((height, width, 4), np.uint8)
    shown = []
    for f in frames:
        h, w = f.pixels.shape[:2]
        before = canvas.copy()
        region = canvas[f.y : f.y + h, f.x : f.x + w]
        opaque = f.pixels[..., 3] > 0
        region[opaque] = f.pixels[opaque]
        shown.append(canvas.copy())
        if f.dispose == 2:
            canvas[f.y : f.y + h, f.x : f.x + w] = 0
        elif f.dispose == 3:
            canvas = before
    return shown


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> npt.NDArray[np.uint8]:
    """PNG's five row filters undone (the specification's reconstruction, row by row in numpy)."""
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int64)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int64)
        up = out[y - 1] if y else np.zeros(stride, np.int64)
        if kind in (0, 2):
            out[y] = (line + (up if kind == 2 else 0)) % 256
            continue
        for x in range(stride):
            a = out[y, x - bpp] if x >= bpp else 0
            b, c = up[x], (up[x - bpp] if x >= bpp else 0)
            if kind == 1:
                pred = a
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[y, x] = (line[x] + pred) % 256
    return out.astype(np.uint8)


def read_apng16(data: bytes) -> tuple[list[npt.NDArray[np.uint16]], list[int], int]:
    """The frames (H x W x 4 uint16), durations (ms) and plays of a 16-bit RGBA APNG whose frames all cover
    the canvas with blend source and dispose none, as srd writes them: a reader independent of srd's."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, frames, durations, plays = 8, [], [], -1
    pending: list[bytes] = []
    width = height = 0

    def finish() -> None:
        raw = zlib.decompress(b"".join(pending))
        samples = _unfilter(raw, height, width * 8, 8).view(">u2").reshape(height, width, 4)
        frames.append(samples.astype(np.uint16))

    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        pos += 12 + length
        if kind == b"IHDR":
            width, height, bits, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (bits, colour, interlace) == (16, 6, 0), (bits, colour, interlace)
        elif kind == b"acTL":
            plays = struct.unpack(">II", body)[1]
        elif kind == b"fcTL":
            if pending:
                finish()
            _, w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
            assert (w, h, x, y, dispose, blend) == (width, height, 0, 0, 0, 0)
            durations.append(round(num * 1000 / (den or 100)))
            pending = []
        elif kind == b"IDAT":
            pending.append(body)
        elif kind == b"fdAT":
            pending.append(body[4:])
    if pending:
        finish()
    return frames, durations, plays
