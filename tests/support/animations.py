"""Animated GIF and APNG files written by hand, frame records with offsets, disposal and blend modes as
given, and an independent compositor of each (the GIF89a and APNG specifications, in numpy), to check what
Pillow's `seek` gives srd."""

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
    """One frame record: RGBA pixels placed at (x, y), shown for `duration` ms, then disposed."""

    pixels: Rgba
    x: int
    y: int
    duration: int
    dispose: int  # APNG: 0 none, 1 background, 2 previous. GIF: 1 none, 2 background, 3 previous
    blend: int = 0  # APNG: 0 source, 1 over (GIF: transparent pixels always leave the canvas as it was)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _idat(pixels: Rgba) -> bytes:
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return zlib.compress(raw)


def apng(size: tuple[int, int], frames: list[SubFrame], plays: int) -> bytes:
    """An APNG of 8-bit RGBA frames; the first frame, the default image, must cover the canvas."""
    width, height = size
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
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


def composite_apng(size: tuple[int, int], frames: list[SubFrame]) -> list[npt.NDArray[np.float64]]:
    """Each frame's canvas as a viewer shows it, RGBA in 0..255 (float: OVER is not integer)."""
    width, height = size
    canvas = np.zeros((height, width, 4))
    shown = []
    for f in frames:
        h, w = f.pixels.shape[:2]
        before = canvas.copy()
        region = (slice(f.y, f.y + h), slice(f.x, f.x + w))
        src = f.pixels.astype(np.float64) / 255
        canvas[region] = (src if f.blend == 0 else _over(canvas[region] / 255, src)) * 255
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
