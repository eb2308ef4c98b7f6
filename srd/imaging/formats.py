"""THE table of image formats srd knows: which it reads, which it writes, by which suffixes and magic bytes.

Everything that lists formats derives from FORMATS: the watcher's default inbox patterns, `srd upscale`'s
folder walk, the decoder's Pillow allow-list and its "corrupt, not foreign" recognition, the output
suffixes, and the choices of `output.format` / `-f`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    """One file format: its Pillow plugin name, suffixes (first is the one srd writes), magic prefixes."""

    name: str  # what srd calls it in settings and on the command line
    pillow: str  # Pillow's format name (Image.open(formats=...), Image.format)
    suffixes: tuple[str, ...]
    magic: tuple[bytes, ...]  # prefixes of the file's first bytes
    readable: bool = True
    writable: bool = False
    description: str = ""

    @property
    def suffix(self) -> str:
        """The suffix srd gives files it writes in this format."""
        return self.suffixes[0]


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("png", "PNG", (".png",), (b"\x89PNG\r\n\x1a\n",), writable=True, description="PNG"),
    ImageFormat(
        "jpg",
        "JPEG",
        (".jpg", ".jpeg", ".jpe", ".jfif"),
        (b"\xff\xd8\xff",),
        writable=True,
        description="JPEG",
    ),
    ImageFormat("webp", "WEBP", (".webp",), (), writable=True, description="WebP"),  # RIFF....WEBP
    ImageFormat("bmp", "BMP", (".bmp", ".dib"), (b"BM",), description="BMP"),
    ImageFormat("tiff", "TIFF", (".tif", ".tiff"), (b"II*\x00", b"MM\x00*", b"II+\x00"), description="TIFF"),
    ImageFormat("gif", "GIF", (".gif",), (b"GIF87a", b"GIF89a"), description="GIF"),
)

BY_NAME = {fmt.name: fmt for fmt in FORMATS}
READ_FORMATS = tuple(fmt for fmt in FORMATS if fmt.readable)
WRITE_FORMATS = tuple(fmt for fmt in FORMATS if fmt.writable)
WRITE_NAMES = tuple(fmt.name for fmt in WRITE_FORMATS)
PILLOW_READ_FORMATS = tuple(fmt.pillow for fmt in READ_FORMATS)
READ_SUFFIXES = frozenset(suffix for fmt in READ_FORMATS for suffix in fmt.suffixes)
DEFAULT_PATTERNS = tuple(f"*{suffix}" for fmt in READ_FORMATS for suffix in fmt.suffixes)


def output_format(name: str) -> ImageFormat:
    """The writable format called `name`; ValueError naming the choices otherwise."""
    fmt = BY_NAME.get(name)
    if fmt is None or not fmt.writable:
        raise ValueError(f"unknown output format {name!r}; choose one of {', '.join(WRITE_NAMES)}")
    return fmt


def sniff(data: bytes) -> ImageFormat | None:
    """The readable format whose magic bytes start `data`, or None."""
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return BY_NAME["webp"]
    for fmt in READ_FORMATS:
        if any(data.startswith(magic) for magic in fmt.magic):
            return fmt
    return None
