"""What becomes of each of the input's audio and subtitle streams in the output container: copied packet by
packet where the container holds it; else re-encoded (audio to AAC, or to Opus where the container takes
no AAC, as WebM; text subtitles to the container's text format: mov_text in MP4 and MOV, WebVTT in WebM);
else left out (bitmap subtitles, or anything in a container with no format for it, as subtitles in AVI).

Whether a stream fits is asked of FFmpeg's muxer itself (a header written to memory with that stream):
its list of codecs takes some it then refuses, as FLAC and Opus in MOV or MP3 at 8 kHz in MP4.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import av
import av.logging
from av.audio.stream import AudioStream
from av.subtitles.stream import SubtitleStream

_AUDIO_ENCODERS = ("aac", "libopus")
_TEXT_ENCODERS = ("mov_text", "webvtt", "subrip", "ass")
_FALLBACK_RATE = 48000  # for an encoder that cannot take the input's sample rate (Opus: 8-48 kHz steps)


@dataclass(frozen=True)
class StreamChoice:
    """One input stream's fate: `copy`, `encode` (with `encoder`) or `drop`; `name` is type/codec."""

    index: int
    name: str
    action: Literal["copy", "encode", "drop"]
    encoder: str = ""

    def describe(self) -> str:
        """How the job's result and log name it: `audio/flac -> aac`, or the stream's name."""
        if self.action != "encode":
            return self.name
        return f"{self.name} -> {av.codec.Codec(self.encoder, 'w').canonical_name}"


def stream_name(stream: av.stream.Stream) -> str:
    context = stream.codec_context
    return f"{stream.type}/{context.codec.canonical_name if context is not None else '?'}"


def _muxer_takes(stream: av.stream.Stream, muxer: str) -> bool:
    """Whether `muxer` writes a header for a copy of `stream` (in memory: nothing reaches a file)."""
    try:
        with av.logging.Capture(), av.open(io.BytesIO(), "w", format=muxer) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True


def _encoder_for(stream: av.stream.Stream, muxer: str) -> str:
    """The first encoder this FFmpeg has whose codec `muxer` holds, for the stream's kind; "" if none."""
    context = stream.codec_context
    if isinstance(stream, AudioStream):
        names: tuple[str, ...] = _AUDIO_ENCODERS
    elif isinstance(stream, SubtitleStream) and context is not None and context.codec.text_sub:
        names = _TEXT_ENCODERS
    else:
        return ""
    with av.open(io.BytesIO(), "w", format=muxer) as probe:
        supported = probe.supported_codecs
    for name in names:
        try:
            codec = av.codec.Codec(name, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        if codec.canonical_name in supported:
            return name
    return ""


def choose_stream(stream: av.stream.Stream, muxer: str) -> StreamChoice:
    """What the output in container `muxer` does with the input's audio or subtitle `stream`."""
    name = stream_name(stream)
    if _muxer_takes(stream, muxer):
        return StreamChoice(stream.index, name, "copy")
    encoder = _encoder_for(stream, muxer)
    return StreamChoice(stream.index, name, "encode" if encoder else "drop", encoder)


class AudioReencoder:
    """An input audio stream decoded and encoded anew into an output stream. Timestamps are the decoded
    frames' own, so the sound starts when the input's did (the encoder's priming, as AAC's, is marked in
    the container as the input's was) and stays in sync."""

    def __init__(self, source: AudioStream, out: av.container.OutputContainer, encoder: str) -> None:
        decoder = source.codec_context
        rates = av.codec.Codec(encoder, "w").audio_rates
        rate = decoder.sample_rate
        if rates and rate not in rates:
            rate = _FALLBACK_RATE if _FALLBACK_RATE in rates else max(rates)
        stream = out.add_stream(encoder, rate=rate)
        assert isinstance(stream, AudioStream)
        stream.layout = decoder.layout
        stream.time_base = Fraction(1, rate)
        stream.metadata.update(source.metadata)
        self.stream, self._decoder = stream, decoder
        self._ended = False

    def packets(self, packet: av.Packet[Any] | None) -> Iterator[av.Packet[Any]]:
        """The encoded packets that `packet` (None: the end) completes."""
        if self._ended:
            return
        for frame in self._decoder.decode(packet):
            yield from self.stream.encode(frame)
        if packet is None:
            self._ended = True
            yield from self.stream.encode(None)


class SubtitleReencoder:
    """An input text subtitle stream converted cue by cue (FFmpeg's decoders read each into ASS events,
    which its text encoders write), each cue at its input packet's time and duration."""

    def __init__(self, source: SubtitleStream, out: av.container.OutputContainer, encoder: str) -> None:
        decoder = source.codec_context
        decoder.open(strict=False)  # a text decoder sets the ASS header its cues refer to
        stream = out.add_stream(encoder)
        assert isinstance(stream, SubtitleStream)
        assert source.time_base is not None
        stream.time_base = stream.codec_context.time_base = source.time_base
        stream.codec_context.subtitle_header = decoder.subtitle_header
        stream.codec_context.open()  # before the header is written, which takes its extradata
        stream.metadata.update(source.metadata)
        self.stream, self._decoder = stream, decoder

    def packets(self, packet: av.Packet[Any] | None) -> Iterator[av.Packet[Any]]:
        if packet is None:
            return
        cue = self._decoder.decode2(packet)
        if cue is None or not len(cue):
            return
        encoded = self.stream.codec_context.encode_subtitle(cue)
        encoded.stream = self.stream
        encoded.time_base = packet.time_base
        encoded.pts = encoded.dts = packet.pts
        encoded.duration = packet.duration or 0
        yield encoded


Reencoder = AudioReencoder | SubtitleReencoder


def reencoder(source: av.stream.Stream, out: av.container.OutputContainer, encoder: str) -> Reencoder:
    """The converter of `source` into a new stream of `out`, encoded by `encoder`."""
    if isinstance(source, AudioStream):
        return AudioReencoder(source, out, encoder)
    assert isinstance(source, SubtitleStream)
    return SubtitleReencoder(source, out, encoder)
