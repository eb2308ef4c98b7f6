"""Short real videos made with PyAV for the video tests: a moving test pattern (two consecutive frames
identical, so that duplicates are exercised), a sine tone, optionally a subtitle track, an attachment,
chapters and metadata, at constant or variable frame rate."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

TIME_BASE = Fraction(1, 1000)  # the encoder's time base; muxers may pick their own for the file
SAMPLE_RATE = 8000
DUPLICATES = (5, 6)  # frames that are identical to each other


@dataclass(frozen=True)
class VideoSpec:
    """What `make_video` writes."""

    frames: int = 12
    size: tuple[int, int] = (32, 24)
    frame_ms: int = 100  # CFR frame interval
    vfr: bool = False  # intervals of 50 and 170 ms instead
    gop: int = 4  # keyframe interval, in frames
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    audio: bool = True
    audio_codec: str = "aac"
    subtitles: bool = False  # three SubRip cues (Matroska)
    attachment: bool = False  # a small "font" (Matroska)
    chapters: bool = False
    rotation: int = 0  # display-matrix rotation, degrees
    title: str | None = "srd test clip"


def pattern(index: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """Frame `index` of the moving pattern, RGB."""
    if index in DUPLICATES:
        return np.full((height, width, 3), 128, np.uint8)
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[..., 0] = (x * 8 + index * 12) % 256
    rgb[..., 1] = (y * 10 + index * 5) % 256
    rgb[..., 2] = ((x + y + index * 3) * 6) % 256
    return rgb


def frame_times(spec: VideoSpec) -> list[int]:
    """Each frame's presentation time in milliseconds."""
    times, now = [], 0
    for index in range(spec.frames):
        times.append(now)
        now += (50 if index % 3 else 170) if spec.vfr else spec.frame_ms
    return times


def make_video(path: Path, spec: VideoSpec = VideoSpec()) -> Path:
    """Write the video `spec` describes to `path` (the container from its suffix)."""
    width, height = spec.size
    times = frame_times(spec)
    end_ms = times[-1] + (spec.frame_ms if not spec.vfr else 50)
    with av.open(str(path), "w") as out:
        if spec.title is not None:
            out.metadata["title"] = spec.title
        video = out.add_stream(spec.codec, rate=round(1000 / spec.frame_ms), options=_options(spec))
        video.width, video.height, video.pix_fmt = width, height, spec.pix_fmt
        video.time_base = video.codec_context.time_base = TIME_BASE
        if spec.rotation:
            video.set_display_rotation(spec.rotation)
        audio = None
        if spec.audio:
            audio = out.add_stream(spec.audio_codec, rate=SAMPLE_RATE)
            audio.layout = "mono"
        subtitles = out.add_mux_stream("subrip") if spec.subtitles else None
        if subtitles is not None:
            subtitles.time_base = TIME_BASE
            subtitles.language = "eng"
        if spec.attachment:
            out.add_attachment("font.ttf", "font/ttf", b"\x00\x01\x00\x00not really a font")
        if spec.chapters:
            out.set_chapters(_chapters(end_ms))
        for index, ms in enumerate(times):
            frame = av.VideoFrame.from_ndarray(pattern(index, width, height), format="rgb24")
            frame.pts, frame.time_base = ms, TIME_BASE
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            _write_tone(out, audio, end_ms)
        if subtitles is not None:
            for cue in range(3):
                packet = av.Packet(f"cue {cue}".encode())
                packet.stream, packet.time_base = subtitles, TIME_BASE
                packet.pts = packet.dts = cue * 300
                packet.duration = 250
                out.mux(packet)
    return path


def _options(spec: VideoSpec) -> dict[str, str]:
    if spec.codec in ("libx264", "libx265"):
        params = {"g": str(spec.gop), "keyint_min": str(spec.gop), "sc_threshold": "0"}
        if spec.codec == "libx265":
            params = {"x265-params": f"keyint={spec.gop}:min-keyint={spec.gop}:log-level=none"}
        return params
    return {"g": str(spec.gop)}


def _chapters(end_ms: int) -> list[dict[str, object]]:
    half = end_ms // 2
    return [
        {"id": 1, "start": 0, "end": half, "time_base": TIME_BASE, "metadata": {"title": "One"}},
        {"id": 2, "start": half, "end": end_ms, "time_base": TIME_BASE, "metadata": {"title": "Two"}},
    ]


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, end_ms: int) -> None:
    total = SAMPLE_RATE * end_ms // 1000
    t = np.arange(total) / SAMPLE_RATE
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, total, 1024):
        chunk = np.ascontiguousarray(samples[None, start : start + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def video_packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    """(pts in seconds x 1e6, payload) of each packet of the first stream of `kind` (audio, subtitle)."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        tb = stream.time_base
        assert tb is not None
        return [
            (None if p.pts is None else round(p.pts * tb * 1_000_000), bytes(p))
            for p in container.demux(stream)
            if p.size
        ]


def decoded_frames(path: Path) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    """(time in seconds, RGB pixels) of each decoded video frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
