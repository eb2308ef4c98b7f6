"""What a video file holds, read once before a job plans its segments: the video stream's every frame time
(from its packets, without decoding them), its keyframes, size, pixel format, colour tags and rotation, and
the other streams; a file that is not a readable video, or is over the limits, is refused here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from srd.errors import CorruptImageError, ImageTooLargeError, UnsupportedFormatError
from srd.imaging.formats import BY_VIDEO_SUFFIX
from srd.video._codecs import sample_bits

# Container signatures: a file with one of these that FFmpeg cannot read is damaged, not foreign.
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"RIFF")  # Matroska/WebM (EBML), AVI
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # MP4/MOV's first box
# A header duration longer than the demuxed streams by more than this (seconds) means a truncated file.
_TRUNCATION_SLACK = 1.0


@dataclass(frozen=True)
class Colour:
    """The video stream's colour tags, as FFmpeg numbers them (AVColorRange, AVColorSpace, ...)."""

    range: int
    space: int
    primaries: int
    trc: int


@dataclass(frozen=True)
class VideoInfo:
    """One video file's video stream, frame by frame in presentation order, and what else it holds."""

    path: Path
    container: str  # srd's name for the container (mp4, mkv, webm, mov, avi), from the suffix
    codec: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    rate: Fraction | None  # the average frame rate, where the file says (the encoder's rate control uses it)
    pts: tuple[int, ...]  # every frame's presentation time, ascending, in time_base units
    durations: tuple[int, ...]  # each frame's duration (its packet's; 0 where the file does not say)
    keyframes: frozenset[int]  # indexes (into pts) of the frames decoding can start at
    rotation: int  # the display matrix's rotation in degrees, kept on the output
    colour: Colour
    other_streams: tuple[str, ...]  # the types of the streams copied beside the video (audio, subtitle, ...)
    # AVI keeps decoding times only (a frame's presentation time is a guess there): frames are timed by them.
    dts_timed: bool = False

    @property
    def frames(self) -> int:
        return len(self.pts)

    @property
    def bits(self) -> int:
        """8, or 16 for a deeper pixel format (10-bit video is carried at 16 bits)."""
        return sample_bits(self.pix_fmt)

    @property
    def end(self) -> int:
        """When the last frame stops showing, in time_base units."""
        last = self.durations[-1] or (self.pts[-1] - self.pts[-2] if self.frames > 1 else 1)
        return self.pts[-1] + last

    @property
    def seconds(self) -> float:
        return float((self.end - self.pts[0]) * self.time_base)

    @property
    def vfr(self) -> bool:
        """Whether the frames are not evenly spaced (variable frame rate)."""
        return len({b - a for a, b in zip(self.pts, self.pts[1:], strict=False)}) > 1


def _unreadable(path: Path, exc: Exception) -> Exception:
    """The error for a file FFmpeg cannot open: corrupt when it starts like a video container."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        head = b""
    if head.startswith(_VIDEO_MAGIC) or head[4:8] in _ISO_BOXES:
        return CorruptImageError(f"{path}: a damaged or truncated video ({exc})")
    return UnsupportedFormatError(f"{path}: not a video FFmpeg can read ({exc})")


def _container_name(path: Path) -> str:
    """srd's name for the input's container, from its suffix (Matroska for one srd does not list)."""
    fmt = BY_VIDEO_SUFFIX.get(path.suffix.lower())
    return fmt.name if fmt is not None else "mkv"


def probe_video(path: Path, *, max_pixels: int, max_seconds: float) -> VideoInfo:
    """Read `path`'s video stream and streams list; InputError subclasses for files srd cannot take."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from None
    with container:
        if not container.streams.video:
            raise UnsupportedFormatError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None or not context.name or stream.time_base is None:
            raise UnsupportedFormatError(f"{path}: its video codec is unknown to this FFmpeg")
        width, height = context.width, context.height
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"{path}: {width}x{height} frames are over limits.max_pixels ({max_pixels})"
            )
        if container.duration is not None and container.duration / 1e6 > max_seconds:
            raise ImageTooLargeError(
                f"{path}: {container.duration / 1e6:.1f} s of video is over limits.max_video_seconds"
                f" ({max_seconds:g})"
            )
        others = tuple(s.type for s in container.streams if s.index != stream.index)
        dts_timed = container.format.name == "avi"
        frames, keys, demuxed_end = _demux_times(path, container, stream, dts_timed)
        rotation, colour = _first_frame(path, container, stream)
        header_seconds = None if container.duration is None else container.duration / 1e6
        rate = stream.average_rate or stream.guessed_rate
        time_base, codec = stream.time_base, context.name
        pix_fmt = context.format.name if context.format is not None else "yuv420p"
    if not frames:
        raise CorruptImageError(f"{path}: the video stream holds no frames")
    if header_seconds is not None and header_seconds - demuxed_end > _TRUNCATION_SLACK:
        raise CorruptImageError(
            f"{path}: truncated: the header says {header_seconds:.2f} s, the streams end at"
            f" {demuxed_end:.2f} s"
        )
    frames.sort()
    pts = tuple(t for t, _ in frames)
    if len(set(pts)) != len(pts):
        raise CorruptImageError(f"{path}: two video frames share a timestamp")
    info = VideoInfo(
        path=path,
        container=_container_name(path),
        codec=codec,
        width=width,
        height=height,
        pix_fmt=pix_fmt,
        time_base=time_base,
        rate=rate,
        pts=pts,
        durations=tuple(d for _, d in frames),
        keyframes=frozenset(i for i, t in enumerate(pts) if t in keys),
        rotation=rotation,
        colour=colour,
        other_streams=others,
        dts_timed=dts_timed,
    )
    if info.seconds > max_seconds:
        raise ImageTooLargeError(
            f"{path}: {info.seconds:.1f} s of video is over limits.max_video_seconds ({max_seconds:g})"
        )
    return info


def _demux_times(
    path: Path, container: av.container.InputContainer, stream: av.VideoStream, dts_timed: bool
) -> tuple[list[tuple[int, int]], set[int], float]:
    """(pts, duration) of each video packet, the keyframes' pts, and when the last stream ends (s)."""
    frames: list[tuple[int, int]] = []
    keys: set[int] = set()
    ends: Counter[int] = Counter()
    try:
        for packet in container.demux():
            if not packet.size:
                continue
            time = packet.pts if packet.pts is not None and not dts_timed else packet.dts
            if time is None or packet.time_base is None:
                continue
            end = float((time + (packet.duration or 0)) * packet.time_base)
            ends[packet.stream.index] = max(ends[packet.stream.index], round(end * 1e6))
            if packet.stream.index == stream.index:
                frames.append((time, packet.duration or 0))
                if packet.is_keyframe:
                    keys.add(time)
    except av.FFmpegError as exc:
        raise CorruptImageError(f"{path}: cannot read the video's packets: {exc}") from None
    return frames, keys, max(ends.values(), default=0) / 1e6


def _first_frame(
    path: Path, container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[int, Colour]:
    """The rotation and colour tags of the first decoded frame (which carries the stream's)."""
    try:
        container.seek(0, stream=stream)
        frame = next(container.decode(stream), None)
    except av.FFmpegError as exc:
        raise CorruptImageError(f"{path}: cannot decode the first video frame: {exc}") from None
    if frame is None:
        raise CorruptImageError(f"{path}: no video frame decodes")
    colour = Colour(
        range=int(frame.color_range),
        space=int(frame.colorspace),
        primaries=int(frame.color_primaries),
        trc=int(frame.color_trc),
    )
    return round(frame.rotation) % 360, colour
