"""Odd animated GIF, APNG and WebP files written byte by byte, of the kinds image libraries' test suites
hold: zero and 1-centisecond delays, every disposal (restore to previous included), partial frames at
offsets, frames past the logical screen or of no pixels at all, local palettes, transparency indices that
change, loop counts present, absent and misplaced, single-frame and duplicate-frame animations, the APNG
default image outside the animation, and WebP frames that blend or not and dispose or not.

Pillow writes none of these as they are (its writers normalise delays, disposals and frame rectangles), so
each container is assembled here from its specification: GIF89a's blocks with a plain LZW coder, PNG chunks
with fcTL/fdAT, and WebP's RIFF with VP8X/ANIM/ANMF (each frame's bitstream from a still WebP Pillow
encodes). Beside each writer is a reference compositor that shows its frames as browsers do, written from
the specifications and independent of srd's readers. tests/support/odd_corpus.py builds the files.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

Rgba = npt.NDArray[np.uint8]
Indices = npt.NDArray[np.uint8]
Palette = list[tuple[int, int, int]]

# A palette of 16 distinct colours, so that quantising a frame of them is lossless.
COLOURS: Palette = [
    (0, 0, 0),
    (255, 255, 255),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 190),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (0, 0, 128),
]


# --- GIF -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GifFrame:
    """One GIF image: palette indices placed at (x, y), with its graphic control extension (None: the
    frame has none) and, where given, its own colour table. `size` overrides the descriptor's width and
    height (a 0x0 frame has no pixels)."""

    indices: Indices
    x: int = 0
    y: int = 0
    delay: int | None = 10  # centiseconds; None: no graphic control extension
    disposal: int = 1  # 0 unspecified, 1 none, 2 background, 3 previous (4..7 undefined)
    transparent: int | None = None
    palette: Palette | None = None
    interlace: bool = False
    size: tuple[int, int] | None = None


def lzw(indices: Indices, min_code_size: int = 8) -> bytes:
    """GIF's LZW stream of the indices as literal codes only, a clear code often enough that the code
    width never grows: valid for every decoder, if not small."""
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    width, run = min_code_size + 1, clear - 3
    codes = [clear]
    for start in range(0, indices.size, run):
        codes.extend(int(v) for v in indices.flat[start : start + run])
        codes.append(clear)
    codes.append(end)
    bits = value = 0
    out = bytearray()
    for code in codes:
        value |= code << bits
        bits += width
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value & 0xFF)
    blocks = b"".join(bytes([len(out[i : i + 255])]) + out[i : i + 255] for i in range(0, len(out), 255))
    return bytes([min_code_size]) + blocks + b"\x00"


def _colour_table(palette: Palette) -> tuple[bytes, int]:
    """The table padded to a power of two (2..256 entries) and its size field."""
    bits = max(1, (len(palette) - 1).bit_length())
    table = list(palette) + [(0, 0, 0)] * ((1 << bits) - len(palette))
    return b"".join(bytes(c) for c in table), bits - 1


def _interlaced(indices: Indices) -> Indices:
    rows = [*range(0, len(indices), 8), *range(4, len(indices), 8), *range(2, len(indices), 4)]
    rows += list(range(1, len(indices), 2))
    return np.ascontiguousarray(indices[rows])


def netscape(loop: int, app: bytes = b"NETSCAPE2.0") -> bytes:
    """The NETSCAPE2.0 application extension (or another `app` name for it): `loop` repeats after the
    first play, 0 for forever."""
    return b"!\xff\x0b" + app + b"\x03\x01" + struct.pack("<H", loop) + b"\x00"


def gif(
    screen: tuple[int, int],
    frames: list[GifFrame],
    *,
    palette: Palette | None = COLOURS,
    background: int = 0,
    loop: int | None = 0,
    loop_after_first: bool = False,
    loop_app: bytes = b"NETSCAPE2.0",
    prefix: bytes = b"",
    version: bytes = b"GIF89a",
    trailer: bool = True,
) -> bytes:
    """A GIF of the frames on a logical screen of `screen`, with a global colour table (None: none), the
    NETSCAPE loop extension before the first frame (or after it, `loop_after_first`; None: none) and
    `prefix`'s blocks before that."""
    flags, table = 0, b""
    if palette is not None:
        table, size_field = _colour_table(palette)
        flags = 0x80 | 0x70 | size_field
    out = version + struct.pack("<HHBBB", screen[0], screen[1], flags, background, 0) + table
    out += prefix
    loop_block = b"" if loop is None else netscape(loop, loop_app)
    if not loop_after_first:
        out += loop_block
    for number, f in enumerate(frames):
        if number == 1 and loop_after_first:
            out += loop_block
        if f.delay is not None:
            packed = (f.disposal << 2) | (f.transparent is not None)
            out += b"!\xf9\x04" + struct.pack("<BHB", packed, f.delay, f.transparent or 0) + b"\x00"
        h, w = f.indices.shape
        width, height = f.size or (w, h)
        local, local_flags = b"", 0
        if f.palette is not None:
            local, size_field = _colour_table(f.palette)
            local_flags = 0x80 | size_field
        if f.interlace:
            local_flags |= 0x40
        out += b"," + struct.pack("<HHHHB", f.x, f.y, width, height, local_flags) + local
        pixels = _interlaced(f.indices) if f.interlace else f.indices
        out += lzw(pixels if width * height else pixels[:0, :0])
    return out + (b";" if trailer else b"")


# --- APNG ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PngFrame:
    """One APNG frame record: RGBA pixels at (x, y), its delay as a fraction of a second, dispose op
    (0 none, 1 background, 2 previous) and blend op (0 source, 1 over)."""

    rgba: Rgba
    x: int = 0
    y: int = 0
    delay: tuple[int, int] = (100, 1000)  # numerator, denominator (0: hundredths, as the specification says)
    dispose: int = 0
    blend: int = 0


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _rgba_idat(rgba: Rgba) -> bytes:
    return zlib.compress(b"".join(b"\x00" + row.tobytes() for row in rgba))


def apng(
    size: tuple[int, int],
    frames: list[PngFrame],
    *,
    plays: int = 0,
    default: Rgba | None = None,
    declared: int | None = None,
) -> bytes:
    """An 8-bit RGBA APNG; `default` is an IDAT image before the first fcTL (not part of the animation),
    else the first frame is the IDAT image and must cover the canvas. `declared` overrides acTL's count."""
    width, height = size
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    out += _chunk(b"acTL", struct.pack(">II", len(frames) if declared is None else declared, plays))
    if default is not None:
        out += _chunk(b"IDAT", _rgba_idat(default))
    sequence = 0
    for number, f in enumerate(frames):
        h, w = f.rgba.shape[:2]
        num, den = f.delay
        control = struct.pack(">IIIIIHHBB", sequence, w, h, f.x, f.y, num, den, f.dispose, f.blend)
        out += _chunk(b"fcTL", control)
        sequence += 1
        if number == 0 and default is None:
            out += _chunk(b"IDAT", _rgba_idat(f.rgba))
        else:
            out += _chunk(b"fdAT", struct.pack(">I", sequence) + _rgba_idat(f.rgba))
            sequence += 1
    return out + _chunk(b"IEND", b"")


# --- WebP ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebpFrame:
    """One ANMF frame: RGBA pixels at (x, y) (even offsets), shown `duration` ms; `blend` alpha-blends it
    over the canvas (else it replaces its rectangle), `dispose` clears its rectangle after it is shown."""

    rgba: Rgba
    x: int = 0
    y: int = 0
    duration: int = 100
    blend: bool = True
    dispose: bool = False
    lossy: bool = False


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return chunks


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _still(rgba: Rgba, lossy: bool) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {"quality": 90} if lossy else {"lossless": True, "exact": True}
    Image.fromarray(rgba, "RGBA").save(out, "WEBP", **options)
    return out.getvalue()


def _bitstream(rgba: Rgba, lossy: bool) -> bytes:
    """The frame's image chunks (VP8L, or ALPH + VP8) as a still WebP of it holds them."""
    kept = (b"ALPH", b"VP8 ", b"VP8L")
    chunks = _riff_chunks(_still(rgba, lossy))
    return b"".join(_riff_chunk(kind, body) for kind, body in chunks if kind in kept)


def decoded(frame: WebpFrame) -> Rgba:
    """The frame's pixels as its bitstream decodes (a lossy frame's differ from what was encoded)."""
    if not frame.lossy:
        return frame.rgba
    with Image.open(io.BytesIO(_still(frame.rgba, True))) as im:
        return np.asarray(im.convert("RGBA"), np.uint8)


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def webp(size: tuple[int, int], frames: list[WebpFrame], *, loop: int = 0, bgcolor: int = 0) -> bytes:
    """An animated WebP (VP8X with the animation and alpha flags, ANIM, one ANMF per frame)."""
    width, height = size
    body = b"WEBP" + _riff_chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))
    body += _riff_chunk(b"ANIM", struct.pack("<IH", bgcolor, loop))
    for f in frames:
        assert f.x % 2 == 0 and f.y % 2 == 0, "ANMF offsets are stored halved"
        h, w = f.rgba.shape[:2]
        flags = (0 if f.blend else 2) | (1 if f.dispose else 0)
        header = _u24(f.x // 2) + _u24(f.y // 2) + _u24(w - 1) + _u24(h - 1) + _u24(f.duration)
        body += _riff_chunk(b"ANMF", header + bytes([flags]) + _bitstream(f.rgba, f.lossy))
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- Reference compositors -------------------------------------------------------------------------------


def _table(palette: Palette | None) -> npt.NDArray[np.uint8]:
    colours = np.zeros((256, 3), np.uint8)
    if palette is None:
        colours[:] = np.arange(256, dtype=np.uint8)[:, None]  # no colour table: the index as gray
    else:
        colours[: len(palette)] = np.asarray(palette, np.uint8)
    return colours


def composite_gif(
    screen: tuple[int, int], frames: list[GifFrame], palette: Palette | None = COLOURS
) -> list[Rgba]:
    """Each frame's canvas as browsers show a GIF: the canvas starts transparent; a frame draws its
    non-transparent pixels, clipped to the canvas; then disposal 2 clears its rectangle to transparent
    (the background colour is not used), 3 and 4 restore the canvas from before it, others keep it. The
    canvas is the logical screen grown to the first frame's rectangle (as Pillow and Chromium do)."""
    first = frames[0]
    fw, fh = first.size or (first.indices.shape[1], first.indices.shape[0])
    width, height = max(screen[0], first.x + fw), max(screen[1], first.y + fh)
    canvas = np.zeros((height, width, 4), np.uint8)
    shown = []
    for f in frames:
        h, w = f.indices.shape if f.size is None else (f.size[1], f.size[0])
        before = canvas.copy()
        colours = _table(f.palette if f.palette is not None else palette)
        right, bottom = min(width, f.x + w), min(height, f.y + h)
        if right > f.x and bottom > f.y:
            index = f.indices[: bottom - f.y, : right - f.x]
            draw = np.ones(index.shape, bool) if f.transparent is None else index != f.transparent
            region = canvas[f.y : bottom, f.x : right]
            region[draw, :3] = colours[index[draw]]
            region[draw, 3] = 255
        shown.append(canvas.copy())
        if f.disposal == 2:
            canvas[f.y : bottom, f.x : right] = 0
        elif f.disposal in (3, 4):
            canvas = before
    return shown


def _over(dst: npt.NDArray[np.float64], src: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Non-premultiplied alpha OVER, in 0..1 (APNG's blend_op 1, WebP's alpha-blending)."""
    sa, da = src[..., 3:], dst[..., 3:]
    oa = sa + da * (1 - sa)
    colour = np.where(oa > 0, (src[..., :3] * sa + dst[..., :3] * da * (1 - sa)) / np.maximum(oa, 1e-12), 0)
    return np.concatenate([colour, oa], axis=2)


def composite_apng(size: tuple[int, int], frames: list[PngFrame]) -> list[npt.NDArray[np.float64]]:
    """Each APNG frame's canvas by the specification, RGBA in 0..255 (float: OVER is not integer): the
    canvas starts transparent black; a first frame's dispose_op 2 acts as 1; dispose and blend values it
    does not define are none and source. A default image outside the animation is not a frame."""
    width, height = size
    canvas = np.zeros((height, width, 4))
    shown = []
    for number, f in enumerate(frames):
        h, w = f.rgba.shape[:2]
        before = canvas.copy()
        region = (slice(f.y, f.y + h), slice(f.x, f.x + w))
        src = f.rgba.astype(np.float64) / 255
        canvas[region] = (src if f.blend != 1 else _over(canvas[region] / 255, src)) * 255
        shown.append(canvas.copy())
        dispose = 1 if number == 0 and f.dispose == 2 else f.dispose
        if dispose == 1:
            canvas[region] = 0
        elif dispose == 2:
            canvas = before
    return shown


def composite_webp(size: tuple[int, int], frames: list[WebpFrame]) -> list[npt.NDArray[np.float64]]:
    """Each WebP frame's canvas as libwebp's animation decoder and browsers show it, RGBA in 0..255: the
    canvas starts transparent (ANIM's background colour is not used), a frame alpha-blends over it or
    replaces its rectangle, and disposing clears the rectangle to transparent after the frame shows."""
    width, height = size
    canvas = np.zeros((height, width, 4))
    shown = []
    for f in frames:
        h, w = f.rgba.shape[:2]
        region = (slice(f.y, f.y + h), slice(f.x, f.x + w))
        src = decoded(f).astype(np.float64) / 255
        canvas[region] = (_over(canvas[region] / 255, src) if f.blend else src) * 255
        shown.append(canvas.copy())
        if f.dispose:
            canvas[region] = 0
    return shown
