"""Animations (GIF, APNG, animated WebP) read one composited frame at a time and upscaled frame by frame.

Each frame is the whole canvas, RGBA, composited as a viewer shows it: Pillow's `seek` does that for WebP
(libwebp's compositor); GIF is composited by srd/imaging/gif_frames.py, since Pillow's GIF reader departs
from browsers (disposal to an opaque background, frames past the canvas growing the image, ...), and APNG
by srd/imaging/apng.py, since Pillow's OVER blend gets alpha wrong. Only the current frame (and the
previous one, to upscale identical consecutive frames once) is ever in memory, whatever the animation's
length: the writers (srd/imaging/animation_writers.py) stream each upscaled frame to the output file.

A 16-bit APNG's frames are composited and upscaled at 16 bits and, written as an APNG, stay 16-bit; GIF and
WebP hold 8 bits, so frames written to them are rounded to 8 bits from the upscaled pixels.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile

from srd.errors import CorruptImageError, ImageTooLargeError
from srd.imaging.apng import Canvas, apng_bits, apng_frame_count, apng_frames
from srd.imaging.gif_frames import gif_frames, gif_layout
from srd.imaging.metadata import Metadata, read_metadata
from srd.imaging.raster import RasterImage, icc_matches, quantize

# Exceptions Pillow's decoders raise on damaged data (struct/zlib errors escape some plugins unwrapped).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)
Rgba = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    """One composited frame: its pixels as srd upscales them, as RGBA (uint8, or uint16 for a 16-bit APNG),
    and how long it shows."""

    index: int
    image: RasterImage
    rgba: Canvas
    duration: int  # milliseconds


def gif_plays(loop: int | None) -> int:
    """How many times a GIF plays, 0 for forever: its NETSCAPE count is repeats after the first play
    (browsers' reading) and its absence means once."""
    return 1 if loop is None else (0 if loop == 0 else loop + 1)


def _plays(im: ImageFile.ImageFile) -> int:
    """How many times an APNG or WebP plays, 0 for forever: APNG's num_plays and WebP's loop are plays."""
    loop = im.info.get("loop")
    return int(loop) if loop is not None else 0


def frame_image(rgba: Canvas, icc: bytes | None, metadata: Metadata, source_format: str) -> RasterImage:
    """An RGBA frame (uint8, or uint16: 16-bit) as a RasterImage (alpha dropped where fully opaque)."""
    wide = rgba.dtype == np.uint16
    maxv = np.float32(65535 if wide else 255)
    pixels = rgba[..., :3].astype(np.float32) / maxv
    alpha_samples = rgba[..., 3]
    opaque = bool((alpha_samples == (65535 if wide else 255)).all())
    return RasterImage(
        pixels=pixels,
        alpha=None if opaque else alpha_samples.astype(np.float32) / maxv,
        bits=16 if wide else 8,
        icc_profile=icc if icc_matches(icc, 3) else None,
        source_format=source_format,
        metadata=metadata,
    )


def _rgba_floats(image: RasterImage) -> npt.NDArray[np.float32]:
    rgb = image.pixels if image.channels == 3 else np.repeat(image.pixels, 3, axis=2)
    alpha = np.ones(rgb.shape[:2], np.float32) if image.alpha is None else image.alpha
    return np.concatenate([rgb, alpha[..., None]], axis=2)


def to_rgba8(image: RasterImage) -> Rgba:
    """An upscaled frame as 8-bit RGBA, rounded as every srd output is (encode.quantize)."""
    return quantize(_rgba_floats(image), 255, np.uint8)


def to_rgba(image: RasterImage, bits: int) -> Canvas:
    """An upscaled frame as RGBA of `bits` samples: uint8 at 8, uint16 at 16 (rounded as to_rgba8)."""
    if bits == 16:
        return quantize(_rgba_floats(image), 65535, np.uint16)
    return to_rgba8(image)


class Animation:
    """An opened animated file; iterating it decodes and composites one frame at a time."""

    def __init__(self, path: Path, im: ImageFile.ImageFile, data: bytes) -> None:
        self.path = path
        self._im = im
        self._data = data
        self.source_format = str(im.format)
        self.frames = int(getattr(im, "n_frames", 1))
        self.width, self.height = im.size
        self.bits = apng_bits(data) if im.format == "PNG" else 8  # the depth frames are composited at
        self.plays = _plays(im)
        if im.format == "PNG":
            self.frames = apng_frame_count(data)
        elif im.format == "GIF":  # as srd/imaging/gif_frames.py reads the blocks, not as Pillow does
            layout = gif_layout(data)
            self.frames, (self.width, self.height) = layout.frames, layout.size
            self.plays = gif_plays(layout.loop)
        icc = im.info.get("icc_profile") or None
        self.icc_profile: bytes | None = icc if icc_matches(icc, 3) else None
        self.metadata = read_metadata(im, orientation_applied=False)

    @classmethod
    def open(cls, path: Path, im: ImageFile.ImageFile, data: bytes) -> Animation:
        """The animation in `data`, opened by Pillow as `im`."""
        try:
            return cls(path, im, data)
        except DECODE_ERRORS as exc:
            im.close()
            raise CorruptImageError(f"{path}: cannot read the animation: {exc}") from None

    def __iter__(self) -> Iterator[Frame]:
        done = 0
        try:
            for rgba, duration in self._canvases():
                image = frame_image(rgba, self.icc_profile, self.metadata, self.source_format)
                yield Frame(done, image, rgba, max(0, duration))
                done += 1
        except DECODE_ERRORS as exc:
            raise CorruptImageError(f"{self.path}: cannot decode frame {done + 1}: {exc}") from None
        except Image.DecompressionBombError as exc:  # a frame's rectangle far larger than the canvas
            raise ImageTooLargeError(f"{self.path}: frame {done + 1}: {exc}") from None
        if done != self.frames:
            raise CorruptImageError(f"{self.path}: the file declares {self.frames} frames but holds {done}")

    def _canvases(self) -> Iterator[tuple[Canvas, int]]:
        """Each composited frame and its duration, by the compositor of the animation's format."""
        if self.source_format == "PNG":
            return apng_frames(self._data)
        if self.source_format == "GIF":
            return gif_frames(self._data)
        return self._webp_frames()

    def _webp_frames(self) -> Iterator[tuple[Canvas, int]]:
        """WebP frames composited by libwebp's animation decoder, through Pillow."""
        for index in range(self.frames):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # damage Pillow works around
                self._im.seek(index)
                rgba = np.asarray(self._im.convert("RGBA"), dtype=np.uint8)
            yield rgba, round(float(self._im.info.get("duration", 0) or 0))

    def close(self) -> None:
        self._im.close()

    def __enter__(self) -> Animation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FrameSource(Protocol):
    """What upscale_frames reads frames from: an Animation, or a segment of a video (srd/video)."""

    path: Path
    frames: int  # how many it yields

    def __iter__(self) -> Iterator[Frame]: ...


class FrameSink(Protocol):
    """What upscale_frames writes to: srd.imaging.animation_writers' writers. `rgba` is uint8, or uint16
    where the sink was opened for 16 bits (only an APNG writer is)."""

    def add(self, rgba: Canvas, duration: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class AnimationResult:
    """What upscaling an animation did: frames written, frames the network ran on, the output size."""

    frames: int
    upscaled: int
    size: tuple[int, int]


def upscale_frames(
    animation: FrameSource,
    upscale: Callable[[RasterImage], RasterImage],
    open_sink: Callable[[int, int], FrameSink],
    on_frame: Callable[[int, int], None] | None = None,
    bits: int = 8,
) -> AnimationResult:
    """Upscale every frame with `upscale` and write it, as RGBA of `bits` samples, to the sink
    `open_sink(width, height)` makes at the first frame; a frame identical to the one before it reuses that
    frame's result."""
    sink: FrameSink | None = None
    previous: tuple[Canvas, Canvas] | None = None
    upscaled = written = 0
    size = (0, 0)
    for frame in animation:
        if previous is not None and np.array_equal(previous[0], frame.rgba):
            out = previous[1]
        else:
            out = to_rgba(upscale(frame.image), bits)
            upscaled += 1
        if sink is None:
            size = (int(out.shape[1]), int(out.shape[0]))
            sink = open_sink(*size)
        sink.add(out, frame.duration)
        written += 1
        previous = (frame.rgba, out)
        if on_frame is not None:
            on_frame(written, animation.frames)
    if sink is None:
        raise CorruptImageError(f"{animation.path}: the animation has no frames")
    sink.close()
    return AnimationResult(written, upscaled, size)


def write_animation(
    animation: Animation,
    upscale: Callable[[RasterImage], RasterImage],
    out: BinaryIO,
    fmt: str,
    *,
    quality: int = 95,
    lossless: bool = False,
    keep_metadata: bool = True,
    on_frame: Callable[[int, int], None] | None = None,
) -> AnimationResult:
    """Upscale `animation` into `out` as an animation in format `fmt` (png = APNG, webp or gif); a 16-bit
    APNG written as an APNG stays 16-bit."""
    from srd.imaging.animation_writers import open_writer

    bits = animation.bits if fmt == "png" else 8

    def open_sink(width: int, height: int) -> FrameSink:
        metadata = animation.metadata if keep_metadata else Metadata()
        if keep_metadata:
            metadata = metadata.scaled(width, height, width / animation.width, height / animation.height)
        return open_writer(
            fmt,
            out,
            (width, height),
            frames=animation.frames,
            plays=animation.plays,
            icc=animation.icc_profile,
            metadata=metadata,
            quality=quality,
            lossless=lossless,
            bits=bits,
        )

    return upscale_frames(animation, upscale, open_sink, on_frame, bits)
