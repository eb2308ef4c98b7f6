"""srd's streaming GIF writer: one local palette per frame, each frame only the rectangle that changed.

Transparency in GIF is binary: a pixel below alpha 128 is transparent (the palette index TRANSPARENT),
others opaque. A frame's transparent index means "leave the canvas as it is", so a pixel that turns from
opaque to transparent can only be cleared by the previous frame's disposal 2 (restore its rectangle to the
background, transparent). Each frame is therefore written once the next one has arrived:

- the next frame needs clearing where the canvas shows an opaque pixel it makes transparent: the held
  frame gets disposal 2, its rectangle grown to cover those pixels (pixels it did not need to draw stay
  the transparent index inside it, and show through);
- otherwise it gets disposal 1 (leave in place).

The next frame then draws only the pixels that differ from what the canvas shows (compared with the colour
each was last drawn from, so nothing drifts) plus the opaque ones its predecessor's disposal cleared, in
the bounding rectangle of those; an unchanged frame is a 1x1 frame that draws nothing. The first frame is
the whole canvas. The last is cleared where the first frame is transparent, so that a viewer that loops
without resetting the canvas shows the first frame as it is. Memory holds the held frame, the canvas as
drawn and the first frame's transparency, whatever the animation's length.

Delays are whole centiseconds: each frame lasts until the rounded sum of the durations so far (GifWriter's
_delay), and one longer than 10 ms is never written as 10 ms or less, which browsers show for 100 ms.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import GifImagePlugin, Image, features

Rgba = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Rect = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)

TRANSPARENT = 255  # the palette index kept for transparency in every frame
_QUANTIZE = (
    Image.Quantize.LIBIMAGEQUANT if features.check_feature("libimagequant") else Image.Quantize.FASTOCTREE
)


def quantize_gif_frame(rgba: Rgba) -> tuple[np.ndarray, list[int]]:
    """A frame as GIF palette indices (TRANSPARENT where alpha < 128) and its 256-colour palette.

    The opaque pixels are quantised to 255 colours (libimagequant where Pillow has it, else Pillow's fast
    octree); transparent pixels take an opaque colour first so that they spend no palette entry."""
    opaque = rgba[..., 3] >= 128
    rgb = np.ascontiguousarray(rgba[..., :3])
    if opaque.any() and not opaque.all():
        rgb[~opaque] = rgb[opaque][0]
    quantized = Image.fromarray(rgb, "RGB").quantize(colors=255, method=_QUANTIZE)
    indices = np.array(quantized, dtype=np.uint8)
    indices[~opaque] = TRANSPARENT
    palette = (quantized.getpalette() or [])[: 3 * TRANSPARENT]
    palette += [0] * (3 * 256 - len(palette))
    return indices, palette


def _compact(indices: np.ndarray, palette: list[int]) -> tuple[np.ndarray, list[int], int]:
    """The frame with only the colours it uses in its palette, the transparent index right after them: a
    small changed rectangle then carries a small colour table (a 256-entry one is 768 bytes)."""
    used = np.unique(indices[indices != TRANSPARENT])
    lut = np.full(256, len(used), np.uint8)
    lut[used] = np.arange(len(used), dtype=np.uint8)
    colours = np.asarray(palette, np.uint8).reshape(256, 3)[used]
    return lut[indices], [*colours.flatten().tolist(), 0, 0, 0], len(used)


def _binary(rgba: Rgba) -> Rgba:
    """`rgba` with alpha 0 or 255 as GIF shows it, and transparent pixels' colour zeroed (it never shows)."""
    opaque = rgba[..., 3] >= 128
    out = np.zeros_like(rgba)
    out[opaque, :3] = rgba[opaque, :3]
    out[opaque, 3] = 255
    return out


def _bbox(mask: Mask) -> Rect | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _union(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass
class _HeldFrame:
    """A frame waiting for its disposal: what it shows, which pixels it draws, where, and for how long."""

    target: Rgba  # binary alpha
    draw: Mask
    rect: Rect | None  # None: it draws nothing (written as a 1x1 frame of the transparent index)
    duration: int


class GifWriter:
    """GIF89a with one local palette per frame and only the changed rectangle of each frame written."""

    def __init__(self, out: BinaryIO, size: tuple[int, int], plays: int) -> None:
        self._out = out
        out.write(b"GIF89a" + struct.pack("<HHBBB", size[0], size[1], 0, 0, 0))  # no global palette
        if plays != 1:  # NETSCAPE2.0: repeats after the first play, 0 for forever
            repeats = 0 if plays == 0 else min(plays - 1, 65535)
            out.write(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", repeats) + b"\x00")
        self._held: _HeldFrame | None = None
        self._drawn: Rgba | None = None  # the canvas after the held frame, as the colours it was drawn from
        self._first_transparent: Mask | None = None
        self._elapsed_ms = self._written_cs = 0

    def _delay(self, duration: int) -> int:
        """A frame's duration in ms as GIF's delay, in ms of whole centiseconds: each frame lasts until the
        rounded sum of the durations so far, so that the delays add up to the durations (frames of 33 ms
        are written 30 and 40 ms, not all 30); a frame longer than 10 ms is never written 0 or 10 ms, which
        browsers show for 100 ms; a frame of 0 ms stays 0."""
        self._elapsed_ms += duration
        if duration <= 0:
            return 0
        cs = round(self._elapsed_ms / 10) - self._written_cs
        cs = min(max(cs, 2 if duration > 10 else 0), 65535)
        self._written_cs += cs
        return cs * 10

    def add(self, rgba: Rgba, duration: int) -> None:
        duration = self._delay(duration)
        target = _binary(rgba)
        opaque = target[..., 3] == 255
        held, drawn = self._held, self._drawn
        if held is None or drawn is None:
            height, width = opaque.shape
            self._held = _HeldFrame(target, np.ones_like(opaque), (0, 0, width, height), duration)
            self._drawn, self._first_transparent = target.copy(), ~opaque
            return
        draw = self._dispose(held, drawn, opaque)
        draw |= opaque & (drawn != target).any(axis=2)
        drawn[draw] = target[draw]
        self._held = _HeldFrame(target, draw, _bbox(draw), duration)

    def _dispose(self, held: _HeldFrame, drawn: Rgba, keep: Mask) -> Mask:
        """Write the held frame with the disposal the next frame needs (one that is transparent outside
        `keep`); returns the opaque pixels the disposal cleared, which the next frame must draw again."""
        clear = (drawn[..., 3] == 255) & ~keep
        cleared = np.zeros_like(keep)
        rect = _bbox(clear)
        if rect is None:
            self._write(held, disposal=1)
            return cleared
        held.rect = rect if held.rect is None else _union(held.rect, rect)
        self._write(held, disposal=2)
        left, top, right, bottom = held.rect
        drawn[top:bottom, left:right] = 0
        cleared[top:bottom, left:right] = True
        return cleared & keep

    def _write(self, held: _HeldFrame, disposal: int) -> None:
        left, top, right, bottom = held.rect or (0, 0, 1, 1)
        crop = held.target[top:bottom, left:right].copy()
        crop[~held.draw[top:bottom, left:right], 3] = 0  # not drawn: the transparent index shows through
        indices, palette, transparent = _compact(*quantize_gif_frame(crop))
        frame = Image.fromarray(indices, "P")
        frame.putpalette(palette)
        params = {
            "duration": held.duration,
            "disposal": disposal,
            "transparency": transparent,
            "include_color_table": True,
        }
        for part in GifImagePlugin.getdata(frame, (left, top), **params):
            self._out.write(part)

    def close(self) -> None:
        if self._held is not None and self._drawn is not None and self._first_transparent is not None:
            self._dispose(self._held, self._drawn, ~self._first_transparent)
        self._out.write(b";")
