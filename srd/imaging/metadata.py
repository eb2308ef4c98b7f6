"""What an image carries besides its pixels and ICC profile, read from the input and written with the output.

`output.metadata: keep` keeps EXIF (the orientation tag dropped, because the decoder applies it; the Exif
pixel dimensions updated), XMP, the resolution (DPI, multiplied by the scale so the printed size stays the
same) and PNG text chunks; `strip` drops all of it. The ICC profile is not metadata in this sense: it says
what the pixel values mean, so it stays either way (srd/imaging/raster.py).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

from PIL import Image

ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
# Formats whose EXIF is a block of its own (a TIFF's tags are its image structure, not portable EXIF).
_EXIF_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "AVIF"})


@dataclass(frozen=True)
class Metadata:
    """EXIF (TIFF-structured bytes without the `Exif\\0\\0` prefix), XMP, DPI and PNG text of one image."""

    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: tuple[tuple[str, str], ...] = ()

    def scaled(self, width: int, height: int, sx: float, sy: float) -> Metadata:
        """The metadata of this image upscaled by sx, sy to width x height: DPI and Exif sizes follow."""
        dpi = None if self.dpi is None else (self.dpi[0] * sx, self.dpi[1] * sy)
        exif = self.exif
        if exif is not None:
            parsed = Image.Exif()
            parsed.load(exif)
            ifd = parsed.get_ifd(_EXIF_IFD)
            if _PIXEL_X in ifd or _PIXEL_Y in ifd:
                ifd[_PIXEL_X], ifd[_PIXEL_Y] = width, height
            exif = parsed.tobytes()[6:]
        return replace(self, dpi=dpi, exif=exif)


NONE = Metadata()


def read_metadata(im: Image.Image, *, orientation_applied: bool = True) -> Metadata:
    """The metadata of an opened image (before its pixels are loaded); the EXIF orientation tag is dropped
    when the decoder applies it (still images), kept otherwise (animations, whose frames are not turned)."""
    exif: bytes | None = None
    if im.format in _EXIF_FORMATS and im.info.get("exif"):
        parsed = im.getexif()
        if orientation_applied:
            parsed.pop(ORIENTATION, None)
        exif = parsed.tobytes()[6:] if len(parsed) or parsed.get_ifd(_EXIF_IFD) else None
    xmp = im.info.get("xmp")
    xmp = xmp.encode() if isinstance(xmp, str) else xmp
    dpi = _dpi(im.info.get("dpi"))
    text = getattr(im, "text", None) if im.format == "PNG" else None
    pairs = tuple((str(k), str(v)) for k, v in (text or {}).items() if k != "XML:com.adobe.xmp")
    return Metadata(exif=exif or None, xmp=xmp or None, dpi=dpi, text=pairs)


def _dpi(value: object) -> tuple[float, float] | None:
    if isinstance(value, tuple) and len(value) == 2:
        try:
            x, y = float(value[0]), float(value[1])
        except (TypeError, ValueError):
            return None
        if x > 0 and y > 0:
            return x, y
    return None


def _text_chunk(key: str, value: str) -> tuple[bytes, bytes]:
    name = key.encode("latin-1", "replace")[:79] or b"Comment"
    try:
        return b"tEXt", name + b"\0" + value.encode("latin-1")
    except UnicodeEncodeError:  # iTXt: compressed UTF-8 with empty language and translated keyword
        return b"iTXt", name + b"\0\1\0\0\0" + zlib.compress(value.encode("utf-8"))


def png_chunks(meta: Metadata) -> list[tuple[bytes, bytes]]:
    """The ancillary PNG chunks (type, body) that carry `meta`: pHYs, eXIf, tEXt/iTXt and XMP."""
    chunks: list[tuple[bytes, bytes]] = []
    if meta.dpi is not None:
        ppm = (max(1, round(meta.dpi[0] / 0.0254)), max(1, round(meta.dpi[1] / 0.0254)))
        chunks.append((b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if meta.exif is not None:
        chunks.append((b"eXIf", meta.exif))
    chunks += [_text_chunk(key, value) for key, value in meta.text]
    if meta.xmp is not None:
        chunks.append((b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + meta.xmp))
    return chunks


# What Pillow's writers accept of the metadata, by srd's format name.
_SAVE_KEYS = {
    "jpg": ("exif", "xmp", "dpi"),
    "webp": ("exif", "xmp"),
    "avif": ("exif", "xmp"),
    "tiff": ("dpi",),
    "bmp": ("dpi",),
    "jp2": (),
}


def pillow_options(meta: Metadata, fmt: str) -> dict[str, object]:
    """Keyword options for PIL.Image.save in format `fmt` that write `meta`."""
    keys = _SAVE_KEYS.get(fmt, ())
    options: dict[str, object] = {}
    if "exif" in keys and meta.exif is not None:
        options["exif"] = b"Exif\0\0" + meta.exif
    if "xmp" in keys and meta.xmp is not None:
        options["xmp"] = meta.xmp
    if "dpi" in keys and meta.dpi is not None:
        options["dpi"] = (round(meta.dpi[0]), round(meta.dpi[1]))
    return options
