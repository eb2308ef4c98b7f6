"""One segment of a video job: its frames decoded from the keyframe before it, each upscaled through the
engine as a still image is (srd/imaging/animation.py's upscale_frames, which also upscales a frame
identical to the one before it once), and encoded into a segment file of its own (NUT: it keeps any codec
and the input's exact time base), written under a temporary name, fsynced and renamed.

Frames are converted to RGB with their own colour matrix and range and back with the same ones, tagged as
the input was, so that a BT.709 or full-range input stays one. A segment's frames keep the presentation
times the input gave them; srd/video/_assemble.py joins the segments' packets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from srd.errors import CorruptImageError
from srd.imaging.animation import AnimationResult, Frame, FrameSink, upscale_frames
from srd.imaging.apng import Canvas
from srd.imaging.raster import RasterImage
from srd.jobs.fsops import fsync_dir, fsync_file
from srd.settings import VideoSettings
from srd.video._codecs import encoder_options, sample_bits
from srd.video._plan import Segment
from srd.video._probe import VideoInfo

SEGMENT_MUXER = "nut"
# AVColorSpace (the tags) -> swscale's matrices; anything else (unspecified) converts as BT.601, as FFmpeg.
_MATRICES = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601}
_MATRICES |= {7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
_FULL = 2  # AVCOL_RANGE_JPEG
Upscale = Callable[[RasterImage], RasterImage]


def _matrix(colour_space: int) -> Colorspace | None:
    return _MATRICES.get(colour_space)


def _range(colour_range: int) -> ColorRange:
    return ColorRange.JPEG if colour_range == _FULL else ColorRange.MPEG


class SegmentFrames:
    """A segment's frames as upscale_frames reads an animation's: decoded one at a time, RGB."""

    def __init__(self, info: VideoInfo, segment: Segment) -> None:
        self.info, self.segment = info, segment
        self.path = info.path
        self.frames = segment.count
        self._reformatter = VideoReformatter()

    def __iter__(self) -> Iterator[Frame]:
        info, segment = self.info, self.segment
        expected = info.pts[segment.first : segment.first + segment.count]
        done = 0
        try:
            for frame in self._decoded():
                if self._time(frame) != expected[done]:
                    raise CorruptImageError(
                        f"{self.path}: frame {segment.first + done + 1} decodes at {self._time(frame)},"
                        f" not at {expected[done]} as its packet said"
                    )
                yield self._frame(frame, done)
                done += 1
                if done == segment.count:
                    return
        except av.FFmpegError as exc:
            raise CorruptImageError(
                f"{self.path}: cannot decode frame {segment.first + done + 1}: {exc}"
            ) from None
        raise CorruptImageError(
            f"{self.path}: segment {segment.index + 1} decodes {done} of its {segment.count} frames"
        )

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The decoded frames from the segment's first on (seeking to the keyframe before it; from the
        start of the file where the seek lands after it)."""
        start = self.segment.start_pts
        for from_start in (False, True):
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                container.seek(0 if from_start else start, stream=stream, backward=True)
                frames = (f for f in container.decode(stream) if self._time(f) >= start)
                first = next(frames, None)
                if first is None or (self._time(first) != start and not from_start):
                    continue
                yield first
                yield from frames
                return

    def _time(self, frame: av.VideoFrame) -> int:
        """The frame's time as the probe took it (-1 where the decoder gives none)."""
        time = frame.dts if self.info.dts_timed else frame.pts
        return -1 if time is None else time

    def _frame(self, frame: av.VideoFrame, number: int) -> Frame:
        wide = self.info.bits == 16
        rgb_frame = self._reformatter.reformat(
            frame,
            format="rgb48le" if wide else "rgb24",
            src_colorspace=_matrix(self.info.colour.space),
            src_color_range=_range(self.info.colour.range),
            dst_color_range=ColorRange.JPEG,
        )
        rgb = rgb_frame.to_ndarray()
        assert rgb.dtype in (np.uint8, np.uint16)
        pixels = rgb.astype(np.float32) / np.float32(65535 if wide else 255)
        image = RasterImage(pixels=pixels, bits=16 if wide else 8, source_format="video")
        return Frame(number, image, rgb, 0)  # type: ignore[arg-type]  # uint8 or uint16, as checked


def _depth(rgba: Canvas, wide: bool) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
    """The RGB of an upscaled RGBA frame at 16 bits (`wide`) or 8, contiguous as FFmpeg takes it."""
    rgb = rgba[..., :3]
    if wide:
        return np.ascontiguousarray(rgb.astype(np.uint16) * np.uint16(257) if rgb.dtype == np.uint8 else rgb)
    if rgb.dtype == np.uint16:
        return ((rgb.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


class SegmentWriter:
    """Encodes upscaled RGBA frames (alpha dropped) into a segment file, each at its input frame's time."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        segment: Segment,
        settings: VideoSettings,
        size: tuple[int, int],
        muxer: str,
    ) -> None:
        self._pts = iter(info.pts[segment.first : segment.first + segment.count])
        self._colour = info.colour
        self._container = av.open(str(path), "w", format=SEGMENT_MUXER)
        stream = self._container.add_stream(
            settings.codec,
            rate=info.rate,
            options=encoder_options(settings.codec, settings.crf, settings.preset, muxer),
        )
        assert isinstance(stream, av.VideoStream)  # check_encoder: a video encoder
        stream.width, stream.height = size
        stream.pix_fmt = settings.pix_fmt
        # Never read back from the stream once muxing starts: the muxer may change its time base.
        self._time_base = info.time_base
        stream.time_base = stream.codec_context.time_base = info.time_base
        context = stream.codec_context
        context.color_range = _FULL if info.colour.range == _FULL else 1
        context.colorspace, context.color_primaries = info.colour.space, info.colour.primaries
        context.color_trc = info.colour.trc
        self._stream = stream
        self._wide = sample_bits(settings.pix_fmt) == 16
        self._reformatter = VideoReformatter()

    def add(self, rgba: Canvas, duration: int) -> None:
        frame = av.VideoFrame.from_ndarray(
            _depth(rgba, self._wide), format="rgb48le" if self._wide else "rgb24"
        )
        stream = self._stream
        out = self._reformatter.reformat(
            frame,
            format=stream.pix_fmt,
            src_color_range=ColorRange.JPEG,
            dst_colorspace=_matrix(self._colour.space),
            dst_color_range=_range(self._colour.range),
        )
        out.pts, out.time_base = next(self._pts), self._time_base
        out.color_range = int(_range(self._colour.range))
        out.colorspace = self._colour.space
        self._container.mux(stream.encode(out))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def abandon(self) -> None:
        """Close the file after a failure (it is then removed)."""
        self._container.close()


def encode_segment(
    info: VideoInfo,
    segment: Segment,
    upscale: Upscale,
    settings: VideoSettings,
    final: Path,
    muxer: str,
    on_frame: Callable[[int, int], None] | None = None,
) -> AnimationResult:
    """Upscale `segment`'s frames into the segment file `final`, encoded for the output container `muxer`:
    written as `.final.tmp`, fsynced, renamed (a crash leaves either no segment file or a whole one)."""
    temp = final.with_name(f".{final.name}.tmp")
    writer: SegmentWriter | None = None

    def open_sink(width: int, height: int) -> FrameSink:
        nonlocal writer
        writer = SegmentWriter(temp, info, segment, settings, (width, height), muxer)
        return writer

    try:
        result = upscale_frames(SegmentFrames(info, segment), upscale, open_sink, on_frame, bits=info.bits)
    except BaseException:
        if writer is not None:
            writer.abandon()
        temp.unlink(missing_ok=True)
        raise
    fsync_file(temp)
    os.rename(temp, final)
    fsync_dir(final.parent)
    return result
