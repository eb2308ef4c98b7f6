"""Decode untrusted image files into RasterImage under hard limits.

Every failure a hostile or damaged file can cause surfaces as an InputError subclass naming the reason:
UnsupportedFormatError, CorruptImageError or ImageTooLargeError. Only the formats of srd.imaging.formats
reach a Pillow decoder (no EPS/Ghostscript, no exotic plugins), and truncated data is never padded out
(ImageFile.LOAD_TRUNCATED_IMAGES must stay False, Pillow's default).
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, UnidentifiedImageError

from srd.errors import (
    CorruptImageError,
    ImageTooLargeError,
    NotARegularFileError,
    UnsupportedFormatError,
)
from srd.imaging.animation import DECODE_ERRORS, Animation
from srd.imaging.colour import to_upscalable
from srd.imaging.cursor import CUR_MAGIC, cur_as_ico
from srd.imaging.formats import ANIMATED_PILLOW, BY_PILLOW, PILLOW_READ_FORMATS, sniff
from srd.imaging.metadata import read_metadata
from srd.imaging.png import WIDE_RAWMODES, decode_png16, png_rawmode
from srd.imaging.raster import FloatArray, RasterImage, icc_matches
from srd.imaging.tiff import decode_tiff16, tiff16_rawmode

_DECODE_ERRORS = DECODE_ERRORS

_OTHER_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"qoif", "a QOI image"),
)
_FTYP_BRANDS = {
    b"avif": "an AVIF image",
    b"avis": "an AVIF image",
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image",
}


def _describe_unknown(data: bytes) -> str:
    """What an unidentified file is, in words, for the error message."""
    for magic, kind in _OTHER_MAGIC:
        if data.startswith(magic):
            return kind
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12], "an ISO media file (MP4/MOV family)")
    if data.startswith(b"RIFF") and data[8:12] != b"WEBP":
        return f"a RIFF {data[8:12].decode('latin-1')!r} file"
    return _describe_bytes(data[:4096])


def _describe_bytes(head: bytes) -> str:
    """Text or binary, judged from the first bytes."""
    if b"\x00" in head:
        return "binary data of an unknown format"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a multi-byte character cut by the 4 KiB window is still text
            return "binary data of an unknown format"
        text = head[: exc.start].decode("utf-8")
    return "an SVG (vector) image" if "<svg" in text[:1024] else "text, not an image"


def _read_bytes(path: Path, max_bytes: int | None) -> bytes:
    """The whole file, refusing anything not a regular file and anything over max_bytes before reading."""
    # O_NONBLOCK so that a FIFO named x.png cannot block us in open(); it is a no-op for regular files.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(f"{path}: not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ImageTooLargeError(f"{path}: file is {info.st_size} bytes, over the limit of {max_bytes}")
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:  # it grew while we read it
        raise ImageTooLargeError(f"{path}: file grew past the limit of {max_bytes} bytes while being read")
    return data


def _readable_formats() -> list[str]:
    """The allow-list, less the formats whose codec this Pillow build lacks."""
    Image.init()
    return [name for name in PILLOW_READ_FORMATS if name in Image.OPEN]


def _open_checked(path: Path, data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Image.open on the bytes with the pixel limit checked from the header, before any pixel is decoded."""
    fmt = sniff(data)
    if fmt is not None and not fmt.available:
        raise UnsupportedFormatError(
            f"{path}: {fmt.description} image, but this Pillow build has no {fmt.codec} codec"
        )
    # Pillow's own limit (89.5 Mpx by default) must not override srd's: its check in Image.open is off
    # while srd checks the same header size below, with srd's limit and message. It is put back after:
    # Pillow checks sizes in other places too (resizing), where srd's output may rightly be larger.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        im = Image.open(io.BytesIO(data), formats=_readable_formats())
    except UnidentifiedImageError:
        if fmt is not None:
            raise CorruptImageError(
                f"{path}: {fmt.description} data is corrupt or truncated in its header"
            ) from None
        raise UnsupportedFormatError(f"{path}: {_describe_unknown(data)}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    width, height = im.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    if width == 0 or height == 0:
        raise CorruptImageError(f"{path}: image declares an empty size {width}x{height}")
    return im


def read_media(
    path: Path,
    *,
    max_pixels: int,
    max_bytes: int | None = None,
    max_frames: int | None = None,
    pages: bool = False,
) -> RasterImage | Animation | Pages:
    """Decode a still image into float32 pixels in 0..1, or open an animation (GIF, APNG, animated WebP)
    whose frames are then decoded one at a time; files over max_bytes or max_pixels (per frame), and
    animations of more than max_frames frames, are refused.

    The limit is srd's, checked from the header before any pixel is decoded (Pillow's own check of the
    header, at PIL.Image.MAX_IMAGE_PIXELS, is off meanwhile: one thread decodes per process); Pillow's
    later checks, of what the header does not show (an animation's frames), keep Pillow's limit, and
    their warning is an error while the file is opened. Filesystem errors
    (missing file) propagate as OSError. A multi-page TIFF gives its first page (with `pages`, all its
    pages, each decoded when iterated), a PSD its composite, an ICO/CUR its largest image.
    """
    path = Path(path)
    data = _read_bytes(path, max_bytes)
    if not data:
        raise CorruptImageError(f"{path}: file is empty (0 bytes)")
    cursor = data.startswith(CUR_MAGIC)
    if cursor:  # through Pillow's ICO reader, which keeps alpha and reads PNG images (srd/imaging/cursor.py)
        data = cur_as_ico(data)
    try:
        # catch_warnings is process-wide while active; srd decodes in one thread per worker process.
        with warnings.catch_warnings():
            # Pillow warns (UserWarning) of damage it works around, e.g. a corrupt EXIF block in a TIFF.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = _open_checked(path, data, max_pixels)
            if cursor:
                im.format = "CUR"
            frames = int(getattr(im, "n_frames", 1))
            if frames > 1 and im.format in ANIMATED_PILLOW:
                _check_frames(path, im, frames, max_frames, "animation", "frames")
                return Animation.open(path, im, data)
            if frames > 1 and im.format == "TIFF" and pages:
                _check_frames(path, im, frames, max_frames, "TIFF", "pages")
                return Pages(path, im, data)
            with im:
                return _decode(path, im, data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{path}: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(f"{path}: cannot decode image data: {exc}") from None


def _check_frames(
    path: Path, im: ImageFile.ImageFile, frames: int, max_frames: int | None, what: str, unit: str
) -> None:
    if max_frames is not None and frames > max_frames:
        im.close()
        raise ImageTooLargeError(
            f"{path}: {what} has {frames} {unit}, over the limit of {max_frames} (limits.max_frames)"
        )


class Pages:
    """The pages of a multi-page TIFF, each decoded (as a still image) when iterated."""

    def __init__(self, path: Path, im: ImageFile.ImageFile, data: bytes) -> None:
        self.path, self._im, self._data = path, im, data
        self.count = int(getattr(im, "n_frames", 1))
        self.width, self.height = im.size  # the first page's, as stored

    def __iter__(self) -> Iterator[RasterImage]:
        for index in range(self.count):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    self._im.seek(index)
                    page = _decode(self.path, self._im, self._data)
            except DECODE_ERRORS as exc:
                raise CorruptImageError(f"{self.path}: cannot decode page {index + 1}: {exc}") from None
            yield page

    def close(self) -> None:
        self._im.close()

    def __enter__(self) -> Pages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_image(path: Path, *, max_pixels: int, max_bytes: int | None = None) -> RasterImage:
    """Decode a still image (as read_media); an animation gives its first frame as shown."""
    media = read_media(path, max_pixels=max_pixels, max_bytes=max_bytes)
    if isinstance(media, RasterImage):
        return media
    assert isinstance(media, Animation)
    with media:
        return next(iter(media)).image


def _decode(path: Path, im: ImageFile.ImageFile, data: bytes) -> RasterImage:
    source_format = str(im.format)
    rawmode = png_rawmode(im)
    icc = im.info.get("icc_profile") or None
    try:
        orientation = int(im.getexif().get(0x0112, 1))
        metadata = read_metadata(im)
    except _DECODE_ERRORS:  # a damaged EXIF block costs the orientation and metadata, not the image
        orientation = 1
        metadata = read_metadata(_without_exif(im))
    tiff_rawmode = tiff16_rawmode(im)
    if rawmode in WIDE_RAWMODES:
        pixels, alpha = _from_png16(decode_png16(data, rawmode), im.info.get("transparency"))
        bits = 16
    elif tiff_rawmode is not None:
        pixels, alpha = _from_png16(decode_tiff16(data, tiff_rawmode, im.tell()), None)
        bits = 16
    else:
        im.load()
        converted, icc = to_upscalable(im, icc)
        pixels, alpha, bits = _from_pillow(path, converted)
    pixels, alpha = _apply_orientation(orientation, pixels, alpha)
    return RasterImage(
        pixels=pixels,
        alpha=alpha,
        bits=bits,
        icc_profile=icc if icc_matches(icc, pixels.shape[2]) else None,
        source_format="JPEG" if source_format == "MPO" else source_format,
        metadata=metadata,
    )


def _without_exif(im: ImageFile.ImageFile) -> ImageFile.ImageFile:
    im.info.pop("exif", None)
    return im


def _key_mask(color: npt.NDArray[np.integer], key: object) -> npt.NDArray[np.bool_] | None:
    """Opacity from a tRNS colour key: pixels equal to the key are transparent."""
    # int64 because a hostile file may declare a key wider than its samples (1000 in an 8-bit PNG).
    if isinstance(key, int) and color.shape[2] == 1:
        return np.asarray(color[..., 0] != np.int64(key))
    if isinstance(key, tuple) and len(key) == color.shape[2]:
        return np.asarray((color != np.asarray(key, dtype=np.int64)).any(axis=2))
    return None


def _finish(
    color: npt.NDArray[np.integer], alpha: npt.NDArray[np.integer] | None, maxv: int
) -> tuple[FloatArray, FloatArray | None]:
    scale = np.float32(maxv)
    # In place: a second float copy of a 64 Mpx image would be another 768 MB at the peak (and, with
    # srd/heap.py's settings, stay in the heap afterwards).
    pixels = color.astype(np.float32)
    pixels /= scale
    if alpha is None or bool((alpha == maxv).all()):
        return pixels, None
    alpha_f = alpha.astype(np.float32)
    alpha_f /= scale
    return pixels, alpha_f


def _from_png16(samples: npt.NDArray[np.uint16], key: object) -> tuple[FloatArray, FloatArray | None]:
    C = samples.shape[2]
    if C in (2, 4):
        return _finish(samples[..., : C - 1], samples[..., C - 1], 65535)
    mask = _key_mask(samples, key)
    return _finish(samples, None if mask is None else mask.astype(np.uint16) * 65535, 65535)


def _from_pillow(path: Path, im: Image.Image) -> tuple[FloatArray, FloatArray | None, int]:
    """Pixels, alpha and bit depth of a loaded Pillow image of any mode (CMYK, LAB, ... converted by
    colour.to_upscalable without a profile, if _decode has not converted them through theirs already)."""
    im, _ = to_upscalable(im, None)
    mode = im.mode
    key = im.info.get("transparency")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or key is not None or (im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if has_alpha else "RGB")
        key = None
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(im, dtype=np.uint8)
        arr = arr[..., None] if arr.ndim == 2 else arr
        if mode in ("LA", "RGBA"):
            pixels, alpha = _finish(arr[..., :-1], arr[..., -1], 255)
        else:
            mask = _key_mask(arr, key)
            pixels, alpha = _finish(arr, None if mask is None else mask.astype(np.uint8) * 255, 255)
        return pixels, alpha, 8
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Mode I (32-bit) comes from TIFF and 16-bit PPM/PGM; values beyond 16 bits are clipped.
        gray = np.clip(np.asarray(im).astype(np.int64), 0, 65535).astype(np.uint16)[..., None]
        mask = _key_mask(gray, key)
        pixels, alpha = _finish(gray, None if mask is None else mask.astype(np.uint16) * 65535, 65535)
        return pixels, alpha, 16
    if mode == "F":
        # Float TIFF: taken as 0..1 and kept at 16 bits on output.
        gray_f = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0)
        return np.clip(gray_f, 0.0, 1.0)[..., None], None, 16
    fmt = BY_PILLOW.get(str(im.format))
    where = f" in this {fmt.description} file" if fmt is not None else ""
    raise UnsupportedFormatError(f"{path}: pixel mode {mode}{where} is not supported")


def _apply_orientation(
    orientation: int, pixels: FloatArray, alpha: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """Apply EXIF orientation 1..8 (as ImageOps.exif_transpose does) to H x W (x C) arrays."""

    def turn(a: FloatArray) -> FloatArray:
        if orientation == 2:
            a = a[:, ::-1]
        elif orientation == 3:
            a = a[::-1, ::-1]
        elif orientation == 4:
            a = a[::-1]
        elif orientation == 5:
            a = a.swapaxes(0, 1)
        elif orientation == 6:
            a = np.rot90(a, k=-1)
        elif orientation == 7:
            a = a.swapaxes(0, 1)[::-1, ::-1]
        elif orientation == 8:
            a = np.rot90(a, k=1)
        return np.ascontiguousarray(a)

    if orientation not in range(2, 9):
        return pixels, alpha
    return turn(pixels), None if alpha is None else turn(alpha)
