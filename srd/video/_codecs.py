"""Which encoders srd can write a video with, and the options each takes for a quality (CRF) and a speed
preset: the libx264/libx265/libsvtav1/libvpx-vp9 wrappers spell them differently, ffv1 (lossless) takes
neither."""

from __future__ import annotations

import av
from av.video.format import VideoFormat

# Encoders whose `preset` option takes names (x264 and x265's ultrafast..placebo); SVT-AV1 takes 0..13.
_NAMED_PRESETS = frozenset({"libx264", "libx265"})
_CRF = frozenset({"libx264", "libx265", "libsvtav1", "libvpx-vp9", "libvpx", "libaom-av1"})


def check_encoder(codec: str, pix_fmt: str) -> None:
    """ValueError unless `codec` is a video encoder of this PyAV build that writes `pix_fmt`."""
    try:
        encoder = av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        raise ValueError(f"this FFmpeg (PyAV {av.__version__}) has no encoder {codec!r}") from None
    if encoder.type != "video":
        raise ValueError(f"{codec!r} is an {encoder.type} encoder, not a video one")
    formats = [fmt.name for fmt in encoder.video_formats or ()]
    if formats and pix_fmt not in formats:
        raise ValueError(f"{codec} does not write pix_fmt {pix_fmt!r}; it writes {', '.join(formats)}")


def encoder_options(codec: str, crf: int, preset: str, muxer: str = "matroska") -> dict[str, str]:
    """The FFmpeg options that ask `codec` for quality `crf` at speed `preset`, where it has them, for a
    stream in container `muxer`."""
    options: dict[str, str] = {}
    if muxer == "avi":
        options["bf"] = "0"  # AVI keeps no presentation times: frames must be stored in display order
    if codec in _CRF:
        options["crf"] = str(crf)
    if codec in ("libvpx-vp9", "libvpx", "libaom-av1"):
        options["b"] = "0"  # constant quality: without a zero bitrate the CRF is only a ceiling
    if codec in _NAMED_PRESETS or (codec == "libsvtav1" and preset.isdigit()):
        options["preset"] = preset
    if codec == "libx265":
        options["x265-params"] = "log-level=error"
    return options


def sample_bits(pix_fmt: str) -> int:
    """16 when frames of `pix_fmt` have more than 8 bits a sample (carried at 16 bits through srd), else 8."""
    return 16 if max(component.bits for component in VideoFormat(pix_fmt).components) > 8 else 8


def fits_container(codec: str, muxer: str) -> bool:
    """Whether FFmpeg's container `muxer` can hold video encoded by `codec`."""
    with av.open("/dev/null", "w", format=muxer) as probe:
        return av.codec.Codec(codec, "w").canonical_name in probe.supported_codecs
