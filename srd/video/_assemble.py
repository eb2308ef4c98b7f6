"""The last step of a video job: the segments' video packets joined into one stream, beside the input's
audio, subtitle and attachment streams copied packet by packet (bit-identical, their timestamps kept),
with the input's metadata, chapters and rotation, into the job's temporary output.

The packets of the two sources are merged by decoding time, so the muxer interleaves them as it goes
(holding a whole video's audio in memory otherwise). A stream the output container cannot hold is
re-encoded where it can be (FLAC in MOV to AAC, SubRip in MP4 to mov_text: srd/video/_streams.py) and
left out otherwise; the result names both.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.stream import AttachmentStream

from srd.errors import CorruptImageError
from srd.jobs.fsops import fsync_file
from srd.video._plan import Segment
from srd.video._probe import VideoInfo
from srd.video._streams import Reencoder, StreamChoice, choose_stream, reencoder

_COPIED = ("audio", "subtitle")


@dataclass(frozen=True)
class Assembled:
    """What the output holds beside the video: the streams copied, re-encoded (`audio/flac -> aac`) and
    left out (type/codec)."""

    copied: tuple[str, ...]
    converted: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


def _time(packet: av.Packet[Any]) -> Fraction:
    """When the muxer wants the packet: its decoding time in seconds (presentation time where unset)."""
    time = packet.dts if packet.dts is not None else packet.pts
    assert packet.time_base is not None
    return Fraction(time or 0) * packet.time_base


def _segment_packets(
    info: VideoInfo, segments: Iterable[tuple[Path, Segment]], target: av.VideoStream
) -> Iterator[av.Packet[Any]]:
    """Every video packet of the segment files in decoding order, for `target`, timed as the input's
    frames were.

    A segment file's own timestamps are not used as they are: its muxer may shift them (NUT moves a
    B-frame encoder's negative start to zero) and leave decoding times out. The k-th earliest packet is the
    segment's k-th frame (an encoder neither drops nor adds frames), so it takes that frame's time and
    duration; decoding times are the presentation times in order, moved back by the least that keeps each
    packet decoded before it shows, and kept increasing across a join.
    """
    last_dts: int | None = None
    for path, segment in segments:
        with av.open(str(path)) as container:
            packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        times = info.pts[segment.first : segment.first + segment.count]
        durations = info.durations[segment.first : segment.first + segment.count]
        if len(packets) != len(times):
            raise CorruptImageError(f"{path}: {len(packets)} packets for {len(times)} frames; discard it")
        rank = sorted(range(len(packets)), key=lambda i: packets[i].pts or 0)
        frame_of = {packet_index: frame for frame, packet_index in enumerate(rank)}
        pts = [times[frame_of[i]] for i in range(len(packets))]
        shift = max(0, *(times[i] - pts[i] for i in range(len(packets))))
        for i, packet in enumerate(packets):
            packet.stream = target
            dts = times[i] - shift
            if last_dts is not None and dts <= last_dts:
                dts = last_dts + 1
            packet.time_base = info.time_base
            packet.pts, packet.dts = pts[i], min(dts, pts[i])
            packet.duration = durations[frame_of[i]] or 0
            last_dts = packet.dts
            yield packet


def _tag_colour(stream: av.VideoStream, info: VideoInfo) -> None:
    """The input's colour tags on the output stream (the segment files' container keeps none)."""
    context = stream.codec_context
    colour = info.colour
    context.color_range = colour.range or 1  # unspecified is limited range, as decoders read it
    context.colorspace, context.color_primaries, context.color_trc = (
        colour.space,
        colour.primaries,
        colour.trc,
    )


def _copied_packets(
    source: av.container.InputContainer,
    copied: dict[int, av.stream.Stream],
    converted: dict[int, Reencoder],
) -> Iterator[av.Packet[Any]]:
    """The input's packets of the copied streams, in file order, each for its output stream, and those
    of the re-encoded ones as their encoders give them."""
    if not copied and not converted:
        return
    for packet in source.demux(*(source.streams[index] for index in (*copied, *converted))):
        index = packet.stream.index
        if index in converted:
            yield from converted[index].packets(packet if packet.size else None)
        elif packet.size:
            time_base = packet.time_base
            packet.stream = copied[index]
            packet.time_base = time_base
            yield packet


def assemble_video(
    info: VideoInfo, segments: list[tuple[Path, Segment]], temp: Path, muxer: str
) -> Assembled:
    """Write the output video to `temp` and fsync it (`muxer` is FFmpeg's name for its container)."""
    with ExitStack() as stack:
        source = stack.enter_context(av.open(str(info.path)))
        first = stack.enter_context(av.open(str(segments[0][0])))
        out = stack.enter_context(av.open(str(temp), "w", format=muxer))
        out.metadata.update({k: v for k, v in source.metadata.items() if k.lower() != "encoder"})
        video_in = source.streams.video[0]
        video = out.add_stream_from_template(first.streams.video[0])
        assert isinstance(video, av.VideoStream)
        video.time_base = info.time_base
        _tag_colour(video, info)
        video.metadata.update(video_in.metadata)
        if info.rotation:
            video.set_display_rotation(info.rotation)
        copied: dict[int, av.stream.Stream] = {}
        converted: dict[int, Reencoder] = {}
        choices: list[StreamChoice] = []
        for stream in source.streams:
            if stream.index == video_in.index:
                continue
            if isinstance(stream, AttachmentStream):
                if muxer == "matroska":
                    out.add_attachment(stream.name or "attachment", stream.mimetype or "", bytes(stream.data))
                else:
                    choices.append(StreamChoice(stream.index, "attachment", "drop"))
                continue
            choice = choose_stream(stream, muxer) if stream.type in _COPIED else None
            choices.append(choice or StreamChoice(stream.index, stream.type, "drop"))
            if choice is not None and choice.action == "copy":
                target = out.add_stream_from_template(stream)
                target.metadata.update(stream.metadata)
                copied[stream.index] = target
            elif choice is not None and choice.action == "encode":
                converted[stream.index] = reencoder(stream, out, choice.encoder)
        chapters = source.chapters()
        if chapters:
            out.set_chapters(chapters)
        videos = _segment_packets(info, segments, video)
        for packet in heapq.merge(videos, _copied_packets(source, copied, converted), key=_time):
            out.mux(packet)
    fsync_file(temp)
    return Assembled(
        copied=tuple(c.name for c in choices if c.action == "copy"),
        converted=tuple(c.describe() for c in choices if c.action == "encode"),
        dropped=tuple(c.name for c in choices if c.action == "drop"),
    )
