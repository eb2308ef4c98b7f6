"""THE table of image formats srd knows: which it reads, which it writes, by which suffixes and magic bytes,
and what each written format can hold (alpha, gray, 16-bit samples, animation); and the video containers
(srd/video), known by suffix.

Everything that lists formats derives from FORMATS: the watcher's default inbox patterns, `srd upscale`'s
folder walk, the decoder's Pillow allow-list and its "corrupt, not foreign" recognition, the output
suffixes, the encoder's choice of sample layout, and the choices of `output.format` / `-f`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

from PIL import features


@dataclass(frozen=True)
class ImageFormat:
    """One file format: its Pillow plugin name, suffixes (first is the one srd writes), magic prefixes,
    and, when srd writes it, what the written file can hold."""

    name: str  # what srd calls it in settings and on the command line
    pillow: str  # Pillow's format name (Image.open(formats=...), Image.format)
    suffixes: tuple[str, ...]
    magic: tuple[bytes, ...]  # prefixes of the file's first bytes
    description: str
    writable: bool = False
    alpha: bool = False  # written with an alpha channel (otherwise composited onto output.background)
    gray: bool = False  # written as 1-channel gray (otherwise gray is written as RGB)
    # The sample layouts (channels, alpha included: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) it keeps at 16 bits.
    deep: frozenset[int] = frozenset()
    animated: bool = False  # srd writes animations in it
    codec: str | None = None  # the Pillow feature its codec needs (PIL.features.check)

    @property
    def suffix(self) -> str:
        """The suffix srd gives files it writes in this format."""
        return self.suffixes[0]

    @property
    def available(self) -> bool:
        """Whether this Pillow build has the codec."""
        return self.codec is None or _has_feature(self.codec)


@cache
def _has_feature(name: str) -> bool:
    with warnings.catch_warnings():  # an older Pillow warns of features it does not know (AVIF before 11.2)
        warnings.simplefilter("ignore")
        return bool(features.check(name))


_ISO_BRAND = b"ftyp"
FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat(
        "png",
        "PNG",
        (".png", ".apng"),
        (b"\x89PNG\r\n\x1a\n",),
        "PNG",
        writable=True,
        alpha=True,
        gray=True,
        deep=frozenset({1, 2, 3, 4}),
        animated=True,
        codec="zlib",
    ),
    ImageFormat(
        "jpg",
        "JPEG",
        (".jpg", ".jpeg", ".jpe", ".jfif"),
        (b"\xff\xd8\xff",),
        "JPEG",
        writable=True,
        gray=True,
        codec="jpg",
    ),
    ImageFormat(
        "webp",
        "WEBP",
        (".webp",),
        (),
        "WebP",  # RIFF....WEBP, see sniff
        writable=True,
        alpha=True,
        animated=True,
        codec="webp",
    ),
    ImageFormat(
        "gif",
        "GIF",
        (".gif",),
        (b"GIF87a", b"GIF89a"),
        "GIF",
        writable=True,
        alpha=True,
        gray=False,
        animated=True,
    ),
    ImageFormat(
        "tiff",
        "TIFF",
        (".tif", ".tiff"),
        (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
        "TIFF",
        writable=True,
        alpha=True,
        gray=True,
        deep=frozenset({1, 3, 4}),
    ),
    ImageFormat("bmp", "BMP", (".bmp", ".dib"), (b"BM",), "BMP", writable=True, gray=True),
    ImageFormat(
        "ppm",
        "PPM",
        (".ppm", ".pgm", ".pbm", ".pnm"),
        (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"),
        "PPM/PGM/PBM",
        writable=True,
        gray=True,
        deep=frozenset({1}),
    ),
    ImageFormat(
        "tga", "TGA", (".tga", ".icb", ".vda", ".vst"), (), "TGA", writable=True, alpha=True, gray=True
    ),
    ImageFormat(
        "jp2",
        "JPEG2000",
        (".jp2", ".j2k", ".jpc", ".jpf", ".jpx", ".j2c"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"),
        "JPEG 2000",
        writable=True,
        alpha=True,
        gray=True,
        deep=frozenset({1}),
        codec="jpg_2000",
    ),
    ImageFormat(
        "avif",
        "AVIF",
        (".avif",),
        (),
        "AVIF",  # ....ftypavif, see sniff
        writable=True,
        alpha=True,
        codec="avif",
    ),
    ImageFormat("ico", "ICO", (".ico",), (b"\x00\x00\x01\x00",), "ICO icon (its largest image)"),
    ImageFormat("cur", "CUR", (".cur",), (b"\x00\x00\x02\x00",), "CUR cursor (its largest image)"),
    ImageFormat("psd", "PSD", (".psd",), (b"8BPS",), "Photoshop PSD (its composite image)"),
)
# Formats whose files can hold several frames that srd reads as an animation.
ANIMATED_PILLOW = frozenset({"GIF", "PNG", "WEBP"})


@dataclass(frozen=True)
class VideoContainer:
    """A video container srd reads and writes through PyAV (srd/video): its suffixes (first is the one
    srd writes) and FFmpeg's muxer name."""

    name: str  # what output.video.container calls it
    suffixes: tuple[str, ...]
    muxer: str

    @property
    def suffix(self) -> str:
        return self.suffixes[0]


VIDEO_FORMATS: tuple[VideoContainer, ...] = (
    VideoContainer("mp4", (".mp4", ".m4v"), "mp4"),
    VideoContainer("mkv", (".mkv",), "matroska"),
    VideoContainer("webm", (".webm",), "webm"),
    VideoContainer("mov", (".mov",), "mov"),
    VideoContainer("avi", (".avi",), "avi"),
)
VIDEO_BY_NAME = {fmt.name: fmt for fmt in VIDEO_FORMATS}
BY_VIDEO_SUFFIX = {suffix: fmt for fmt in VIDEO_FORMATS for suffix in fmt.suffixes}

BY_NAME = {fmt.name: fmt for fmt in FORMATS}
BY_PILLOW = {fmt.pillow: fmt for fmt in FORMATS}
BY_SUFFIX = {suffix: fmt for fmt in FORMATS for suffix in fmt.suffixes}
WRITE_FORMATS = tuple(fmt for fmt in FORMATS if fmt.writable)
SAME = "same"
WRITE_NAMES = (*(fmt.name for fmt in WRITE_FORMATS), SAME)
ANIMATION_NAMES = (SAME, "png", "webp", "gif")
# TGA has no magic and Pillow's TGA check accepts much: tried last (FORMATS order is Pillow's order).
PILLOW_READ_FORMATS = (*(fmt.pillow for fmt in FORMATS if fmt.pillow != "TGA"), "MPO", "TGA")
READ_SUFFIXES = frozenset(BY_SUFFIX) | frozenset(BY_VIDEO_SUFFIX)
DEFAULT_PATTERNS = tuple(f"*{suffix}" for fmt in FORMATS for suffix in fmt.suffixes) + tuple(
    f"*{suffix}" for video in VIDEO_FORMATS for suffix in video.suffixes
)


def is_video(name: str) -> bool:
    """Whether a file called `name` is taken as a video (by its suffix: srd/video reads it)."""
    return "." in name and "." + name.rsplit(".", 1)[-1].lower() in BY_VIDEO_SUFFIX


def output_format(name: str) -> ImageFormat:
    """The writable format called `name` (not `same`); ValueError naming the choices otherwise."""
    fmt = BY_NAME.get(name)
    if fmt is None or not fmt.writable:
        raise ValueError(f"unknown output format {name!r}; choose one of {', '.join(WRITE_NAMES)}")
    if not fmt.available:
        raise ValueError(f"this Pillow build cannot write {fmt.description} (no {fmt.codec} codec)")
    return fmt


def same_format(source: str) -> ImageFormat:
    """What `same` writes for an input of Pillow format `source`: that format where srd writes it and this
    Pillow has its codec, PNG otherwise (PSD, ICO, CUR)."""
    fmt = BY_PILLOW.get("JPEG" if source == "MPO" else source)
    if fmt is None or not fmt.writable or not fmt.available:
        return BY_NAME["png"]
    return fmt


def resolve_output(name: str, source: str) -> ImageFormat:
    """The format written for `output.format` (or `output.animation`) `name` and an input of Pillow format
    `source`."""
    return same_format(source) if name == SAME else output_format(name)


def suffix_guess(name: str, input_name: str) -> str:
    """The output suffix expected before the input is decoded (the daemon's temporary name): the named
    format's, or for `same` the format its suffix says."""
    if name != SAME:
        return output_format(name).suffix
    fmt = BY_SUFFIX.get("." + input_name.rsplit(".", 1)[-1].lower()) if "." in input_name else None
    return same_format(fmt.pillow if fmt is not None else "").suffix


def sniff(data: bytes) -> ImageFormat | None:
    """The readable format whose magic bytes start `data`, or None."""
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return BY_NAME["webp"]
    if data[4:8] == _ISO_BRAND and data[8:12] in (b"avif", b"avis"):
        return BY_NAME["avif"]
    for fmt in FORMATS:
        if any(data.startswith(magic) for magic in fmt.magic):
            return fmt
    return None
