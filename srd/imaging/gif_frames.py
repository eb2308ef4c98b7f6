"""GIF frames composited as browsers show them, for srd's animation reader.

Pillow's GIF reader departs from what Chromium and Firefox show in ways that image libraries' test suites
and real files hit: it fills the canvas outside a partial first frame, and a disposal 2 without a
transparent index, with an opaque colour (browsers: transparent); it keeps a frame's disposal for later
frames whose disposal is 0 (unspecified); it takes disposals 5-7 as "restore previous"; it grows the image
for a frame past the canvas, so that frames change size in mid-animation; it cannot load a frame of no
pixels; and it reads the NETSCAPE loop count only before the first frame. So srd walks the file's blocks
itself: each frame's palette indices are decoded by Pillow's LZW decoder from a one-frame GIF made of the
frame's colour table and image data, and composited here on an RGBA canvas:

- the canvas is the logical screen, grown to the first frame's rectangle (as Pillow and Chromium do),
  and starts transparent; a frame draws its pixels that are not its transparent index, clipped to it;
- after a frame shows, disposal 2 clears its rectangle to transparent (no browser paints the background
  colour), 3 and 4 (which old encoders wrote for 3) restore the canvas from before it, 0, 1 and 5-7 keep it;
- a frame's delay is its graphic control extension's, in centiseconds (none: 0).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

Rgba = npt.NDArray[np.uint8]
_LOOP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")  # ANIMEXTS1.0: the same block under another name


@dataclass(frozen=True)
class _Descriptor:
    """One image of the file: its rectangle, colour table (RGB bytes; local, else global, maybe none),
    interlacing, LZW data (code size byte and sub-blocks), and the graphic control before it."""

    x: int
    y: int
    width: int
    height: int
    palette: bytes
    interlace: bool
    data: bytes
    delay: int  # milliseconds
    disposal: int
    transparent: int | None


@dataclass(frozen=True)
class GifLayout:
    """What the blocks say before any pixel is decoded: the canvas, the frame count, the loop count
    (NETSCAPE's repeats; None: no loop block)."""

    size: tuple[int, int]
    frames: int
    loop: int | None


def _sub_blocks(data: bytes, pos: int) -> int:
    """The position after the data sub-blocks starting at `pos` (after their 0 terminator)."""
    while True:
        if pos >= len(data):
            raise ValueError("the GIF ends inside a data block")
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos


def _table_bytes(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _walk(data: bytes) -> Iterator[_Descriptor | tuple[str, int]]:
    """The file's images in order, and ("loop", repeats) for each NETSCAPE loop block where it stands.

    Raises ValueError on a file that ends inside a block."""
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ValueError("not a GIF file")
    flags = data[10]
    pos = 13 + _table_bytes(flags)
    global_palette = data[13:pos]
    if len(global_palette) != _table_bytes(flags):
        raise ValueError("the GIF ends inside its colour table")
    delay, disposal, transparent = 0, 0, None
    while pos < len(data):
        introducer = data[pos]
        if introducer == 0x3B:  # trailer
            return
        if introducer == 0x21 and pos + 1 < len(data):  # extension
            label, body = data[pos + 1], pos + 2
            end = _sub_blocks(data, body)
            if label == 0xF9 and data[body] >= 4:
                packed, cs, index = struct.unpack("<BHB", data[body + 1 : body + 5])
                delay, disposal = cs * 10, (packed >> 2) & 7
                transparent = index if packed & 1 else None
            elif label == 0xFF and data[body] == 11 and data[body + 1 : body + 12] in _LOOP_APPS:
                sub = body + 12
                if sub + 4 <= len(data) and data[sub] >= 3 and data[sub + 1] == 1:
                    yield "loop", struct.unpack("<H", data[sub + 2 : sub + 4])[0]
            pos = end
        elif introducer == 0x2C:  # image descriptor
            if pos + 10 > len(data):
                raise ValueError("the GIF ends inside an image descriptor")
            x, y, w, h, local_flags = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            table_end = pos + 10 + _table_bytes(local_flags)
            palette = data[pos + 10 : table_end] if local_flags & 0x80 else global_palette
            end = _sub_blocks(data, table_end + 1)
            yield _Descriptor(
                x,
                y,
                w,
                h,
                palette,
                bool(local_flags & 0x40),
                data[table_end:end],
                delay,
                disposal,
                transparent,
            )
            delay, disposal, transparent = 0, 0, None
            pos = end
        else:  # a stray byte, which Pillow skips too
            pos += 1


def gif_layout(data: bytes) -> GifLayout:
    """The canvas, frame count and loop count of a GIF, from its blocks alone. The loop count is the last
    NETSCAPE block's before the first image (as Pillow reads it), else the first one after it (browsers
    read it anywhere)."""
    screen = struct.unpack("<HH", data[6:10]) if len(data) >= 10 else (0, 0)
    size, frames = screen, 0
    before: int | None = None
    after: int | None = None
    for item in _walk(data):
        if isinstance(item, tuple):
            if frames == 0:
                before = item[1]
            elif after is None:
                after = item[1]
            continue
        if frames == 0:
            size = (max(screen[0], item.x + item.width), max(screen[1], item.y + item.height))
        frames += 1
    return GifLayout(size, frames, before if before is not None else after)


def _indices(image: _Descriptor, rows: int) -> npt.NDArray[np.uint8]:
    """The frame's palette indices, `rows` of them (fewer than its height where the rest is past the
    canvas and the frame is not interlaced), decoded by Pillow from a one-frame GIF of it."""
    height = image.height if image.interlace else rows
    table = image.palette or bytes(b for i in range(256) for b in (i, i, i))  # none: the index as gray
    bits = max(1, (len(table) // 3 - 1).bit_length())
    table = table.ljust(3 << bits, b"\x00")
    header = b"GIF89a" + struct.pack("<HHBBB", image.width, height, 0x80 | 0x70 | (bits - 1), 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, image.width, height, 0x40 if image.interlace else 0)
    gif = header + table + descriptor + image.data + b";"
    with Image.open(io.BytesIO(gif), formats=["GIF"]) as im:
        im.load()
        return np.asarray(im, dtype=np.uint8)[:rows]


def _colours(palette: bytes) -> npt.NDArray[np.uint32]:
    """The colour table as 256 opaque RGBA entries, each one uint32 (a lookup of 4-byte words is several
    times faster than of 4 bytes): black past its end, the index as gray without one (as Pillow shows
    both)."""
    table = np.full((256, 4), 255, np.uint8)
    if palette:
        table[:, :3] = np.frombuffer(palette.ljust(768, b"\x00")[:768], np.uint8).reshape(256, 3)
    else:
        table[:, :3] = np.arange(256, dtype=np.uint8)[:, None]
    return table.view(np.uint32)[:, 0]


def gif_frames(data: bytes) -> Iterator[tuple[Rgba, int]]:
    """Each frame of a GIF as the whole canvas (RGBA, uint8) as browsers show it, with its duration in
    milliseconds.

    Raises ValueError (or Pillow's errors) on a damaged file."""
    layout = gif_layout(data)
    width, height = layout.size
    canvas = np.zeros((height, width, 4), np.uint8)
    for image in _walk(data):
        if isinstance(image, tuple):
            continue
        right, bottom = min(width, image.x + image.width), min(height, image.y + image.height)
        region = (slice(image.y, bottom), slice(image.x, right))
        before = canvas[region].copy() if image.disposal in (3, 4) else None
        if right > image.x and bottom > image.y:
            index = _indices(image, bottom - image.y)[:, : right - image.x]
            pixels = np.take(_colours(image.palette), index).view(np.uint8).reshape(*index.shape, 4)
            if image.transparent is None:
                canvas[region] = pixels
            else:
                canvas[region] = np.where((index != image.transparent)[..., None], pixels, canvas[region])
        yield canvas.copy(), image.delay
        if image.disposal == 2:
            canvas[region] = 0
        elif before is not None:
            canvas[region] = before
