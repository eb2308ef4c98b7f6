"""Tests for srd.video.upscale_video: short real clips through the engine, segments, the copied streams,
and resuming after a crash without recomputing the finished segments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs
from support.videos import DUPLICATES, VideoSpec, decoded_frames, make_video, video_packets

from srd.engine.engine import Engine
from srd.imaging.raster import RasterImage, quantize
from srd.jobs import FailureKind, JobDone, JobFailed, JobSpec
from srd.jobs.runner import run_job
from srd.settings import EngineSettings, ModelSettings, OutputSettings, VideoSettings
from srd.video import VideoResult, probe_video, upscale_video

FFV1 = VideoSettings(codec="ffv1", pix_fmt="bgr0", container="mkv", segment_seconds=0.3)
X264 = VideoSettings(segment_seconds=0.3)
LIMITS = {"max_pixels": 1_000_000, "max_seconds": 3600.0}


class Counted:
    """An upscale callable that counts its calls (network runs) and can fail after some."""

    def __init__(self, upscale: Callable[[RasterImage], RasterImage], fail_after: int | None = None) -> None:
        self.upscale, self.calls, self.fail_after = upscale, 0, fail_after

    def __call__(self, image: RasterImage) -> RasterImage:
        if self.fail_after is not None and self.calls == self.fail_after:
            raise RuntimeError("the worker died here")
        self.calls += 1
        return self.upscale(image)


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The cheapest model, tiny tiles."""
    return Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))


def _run(
    source: Path, upscale: Callable[[RasterImage], RasterImage], settings: VideoSettings
) -> tuple[Path, VideoResult]:
    temp = source.with_name(f".{source.name}.out")
    result = upscale_video(
        source, upscale, temp, source.with_name(f"{source.name}.work"), settings, model="m", **LIMITS
    )
    return temp.rename(source.with_name(f"{source.stem}_x2{result.suffix}")), result


def _times(path: Path) -> list[float]:
    info = probe_video(path, **LIMITS)
    return [round(float(p * info.time_base), 4) for p in info.pts]


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("cfr.mp4", VideoSpec()),
        ("vfr.mp4", VideoSpec(vfr=True)),
        (
            "odd.mkv",
            VideoSpec(size=(31, 17), pix_fmt="yuv444p", subtitles=True, attachment=True, chapters=True),
        ),
        ("clip.webm", VideoSpec(codec="libvpx-vp9", audio_codec="libopus")),
        ("clip.avi", VideoSpec(codec="mpeg4", audio_codec="pcm_s16le", title=None)),
        ("clip.mov", VideoSpec(rotation=90)),
    ],
)
def test_frames_times_and_streams_are_kept(
    tmp_path: Path, engine: Engine, name: str, spec: VideoSpec
) -> None:
    """Every frame is upscaled 2x at its input time; audio and subtitles are bit-identical copies;
    attachments, chapters, metadata and rotation are kept; duplicates are upscaled once."""
    source = make_video(tmp_path / name, spec)
    counted = Counted(engine.upscale)
    output, result = _run(source, counted, X264)
    before, after = probe_video(source, **LIMITS), probe_video(output, **LIMITS)
    assert after.frames == before.frames == result.frames
    assert (after.width, after.height) == (2 * spec.size[0], 2 * spec.size[1]) == result.size
    assert _times(output) == _times(source)
    assert after.seconds == pytest.approx(before.seconds, abs=0.11)
    assert counted.calls == result.upscaled == spec.frames - (len(DUPLICATES) - 1)
    assert result.segments > 1 and result.reused == 0
    assert video_packets(output, "audio") == video_packets(source, "audio")
    assert after.rotation == spec.rotation
    with av.open(str(source)) as a, av.open(str(output)) as b:
        assert b.metadata.get("title") == a.metadata.get("title")
        assert len(b.chapters()) == len(a.chapters())
        assert [s.type for s in b.streams] == [s.type for s in a.streams]
    if spec.subtitles:
        assert video_packets(output, "subtitle") == video_packets(source, "subtitle")


def test_webm_with_h264_is_written_as_matroska(tmp_path: Path, engine: Engine) -> None:
    """container `same` for a WebM input and the default libx264: WebM cannot hold H.264, so .mkv."""
    source = make_video(tmp_path / "clip.webm", VideoSpec(codec="libvpx-vp9", audio_codec="libopus"))
    output, result = _run(source, engine.upscale, X264)
    assert result.suffix == ".mkv" and output.suffix == ".mkv"


def test_lossless_output_equals_the_still_upscale_of_each_decoded_frame(
    tmp_path: Path, engine: Engine
) -> None:
    """ffv1 (RGB) output: every decoded frame equals srd's still-image upscale of the input frame. (MP4 to
    Matroska: times move as a whole by the AAC priming, which Matroska cannot start before zero.)"""
    source = make_video(tmp_path / "in.mp4", VideoSpec(frames=10))
    output, _ = _run(source, engine.upscale, FFV1)
    inputs, outputs = decoded_frames(source), decoded_frames(output)
    assert len(inputs) == len(outputs) == 10
    shift = outputs[0][0] - inputs[0][0]
    for (t_in, rgb), (t_out, got) in zip(inputs, outputs, strict=True):
        still = engine.upscale(RasterImage(pixels=rgb.astype(np.float32) / 255))
        assert t_out - shift == pytest.approx(t_in)
        np.testing.assert_array_equal(got, quantize(still.pixels, 255, np.uint8))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_a_lossy_codec_stays_within_its_loss_of_the_lossless_run(
    tmp_path: Path, engine: Engine, codec: str
) -> None:
    """A lossy codec's frames decode within its loss of the lossless (ffv1) run's: the first, a middle and
    the last frame at their own times, PSNR >= 40 dB. (crf 8 and 4:4:4: the test pattern's sawtooth wraps
    are hard content, 35-36 dB at crf 18 at this size; at crf 0 the colour conversions alone give 53 dB.)"""
    source = make_video(tmp_path / "in.mkv", VideoSpec(frames=12, size=(48, 32)))
    lossless, _ = _run(source, engine.upscale, FFV1)
    lossy_source = source.with_name("again.mkv")
    lossy_source.write_bytes(source.read_bytes())
    lossy, _ = _run(
        lossy_source,
        engine.upscale,
        VideoSettings(codec=codec, crf=8, pix_fmt="yuv444p", segment_seconds=0.3),
    )
    exact, coded = decoded_frames(lossless), decoded_frames(lossy)
    assert len(exact) == len(coded) == 12
    for index in (0, 6, 11):
        assert coded[index][0] == pytest.approx(exact[index][0], abs=1e-3)
        assert _psnr(coded[index][1], exact[index][1]) >= 40.0, (codec, index)


def test_a_ten_bit_input_stays_ten_bit(tmp_path: Path, engine: Engine) -> None:
    """yuv420p10le in, pix_fmt yuv420p10le out: upscaled at 16 bits, written at 10."""
    source = make_video(tmp_path / "deep.mkv", VideoSpec(pix_fmt="yuv420p10le", frames=6))
    output, _ = _run(source, engine.upscale, VideoSettings(pix_fmt="yuv420p10le", segment_seconds=0.3))
    assert probe_video(output, **LIMITS).pix_fmt == "yuv420p10le"


def _video_packets(path: Path) -> list[tuple[int | None, int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.dts, bytes(p)) for p in container.demux(container.streams.video[0]) if p.size]


def test_a_failed_job_resumes_at_its_first_unfinished_segment(tmp_path: Path, engine: Engine) -> None:
    """A job that dies in its second segment reruns only from there (counted network calls) and its
    output equals an uninterrupted run's, packet for packet."""
    source = make_video(tmp_path / "in.mkv", VideoSpec(frames=12, gop=4))
    reference, _ = _run(make_video(tmp_path / "ref.mkv", VideoSpec(frames=12, gop=4)), engine.upscale, FFV1)
    with pytest.raises(RuntimeError, match="died"):
        _run(source, Counted(engine.upscale, fail_after=6), FFV1)
    resumed = Counted(engine.upscale)
    output, result = _run(source, resumed, FFV1)
    assert result.reused == 1  # frames 0-3
    assert resumed.calls == 8 - (len(DUPLICATES) - 1)  # frames 4-11, 5 and 6 the same
    assert _video_packets(output) == _video_packets(reference)


def test_other_settings_discard_the_finished_segments(tmp_path: Path, engine: Engine) -> None:
    """A rerun with another video setting (or model) does not reuse segments made with the first."""
    source = make_video(tmp_path / "in.mkv", VideoSpec(frames=8, gop=4))
    with pytest.raises(RuntimeError):
        _run(source, Counted(engine.upscale, fail_after=5), FFV1)
    _, result = _run(source, engine.upscale, FFV1.model_copy(update={"crf": 20}))
    assert result.reused == 0


_KILLED_RUN = """
import os, signal, sys
from dataclasses import replace
from pathlib import Path
import numpy as np
from srd.settings import VideoSettings
from srd.video import upscale_video

def nearest(image):
    return replace(image, pixels=np.repeat(np.repeat(image.pixels, 2, 0), 2, 1))

def stop(done, total):
    if done == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)

source = Path(sys.argv[1])
settings = VideoSettings(codec="ffv1", pix_fmt="bgr0", container="mkv", segment_seconds=0.3)
temp, work = source.with_name(f".{source.name}.out"), source.with_name(f"{source.name}.work")
upscale_video(source, nearest, temp, work, settings, model="m", max_pixels=1_000_000, max_seconds=3600.0,
              on_segment=stop)
"""


def _nearest(image: RasterImage) -> RasterImage:
    return RasterImage(pixels=np.repeat(np.repeat(image.pixels, 2, 0), 2, 1), bits=image.bits)


def test_sigkill_after_a_segment_keeps_it(tmp_path: Path) -> None:
    """A process SIGKILLed right after its second segment is durable: the rerun upscales only the third."""
    source = make_video(tmp_path / "in.mkv", VideoSpec(frames=12, gop=4))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(source), "2"], env=env, check=False)
    assert run.returncode == -signal.SIGKILL
    counted = Counted(_nearest)
    output, result = _run(source, counted, FFV1)
    assert result.reused == 2 and counted.calls == 4
    reference, _ = _run(make_video(tmp_path / "ref.mkv", VideoSpec(frames=12, gop=4)), _nearest, FFV1)
    assert _video_packets(output) == _video_packets(reference)


class _Nearest:
    """An engine without JAX: 2x by repeating pixels."""

    model_id = "nearest"

    def upscale(self, image: RasterImage, target_size: object = None, progress: object = None) -> RasterImage:
        return _nearest(image)


def _video_spec(tmp_path: Path, source: Path, work: Path | None = None) -> JobSpec:
    output = OutputSettings(video=FFV1)
    return JobSpec("j", source, tmp_path / ".out.tmp", output, 1_000_000, 10**8, work=work)


def test_the_job_runner_takes_videos_and_reports_their_frames(tmp_path: Path) -> None:
    """run_job on a video: JobDone with its frames, sizes and the container's suffix; frames reported;
    without a work folder of its own, the segments beside the output are gone afterwards."""
    source = make_video(tmp_path / "clip.mp4", VideoSpec(frames=8))
    reports: list[tuple[int, int]] = []
    spec = _video_spec(tmp_path, source)
    result = run_job(_Nearest(), spec, frames=lambda done, total: reports.append((done, total)))
    assert isinstance(result, JobDone), result
    assert (result.frames, result.input_size, result.output_size) == (8, (32, 24), (64, 48))
    assert result.suffix == ".mkv" and result.output_bytes == spec.temp.stat().st_size
    assert reports[-1] == (8, 8)
    assert not spec.staging.exists()


def test_a_job_work_folder_keeps_the_segments(tmp_path: Path) -> None:
    """With spec.work (the daemon's work/<job>/.video), the segments stay there for a resumed try."""
    source = make_video(tmp_path / "clip.mkv", VideoSpec(frames=8))
    spec = _video_spec(tmp_path, source, tmp_path / "work")
    assert isinstance(run_job(_Nearest(), spec), JobDone)
    assert sorted(p.name for p in (tmp_path / "work").glob("segment-*.nut")) == [
        "segment-00000.nut",
        "segment-00001.nut",
    ]


@pytest.mark.parametrize("data", [b"PK\x03\x04" + bytes(200), b"\x00\x00\x00\x20ftypisom" + bytes(100), b""])
def test_bad_videos_fail_as_the_inputs_fault(tmp_path: Path, data: bytes) -> None:
    """A zip named .mp4, a truncated MP4 and an empty file: JobFailed of kind INPUT, with the reason."""
    source = tmp_path / "bad.mp4"
    source.write_bytes(data)
    result = run_job(_Nearest(), _video_spec(tmp_path, source))
    assert isinstance(result, JobFailed) and result.kind is FailureKind.INPUT, result
    assert "bad.mp4" in result.message


def _decoded_audio(path: Path) -> tuple[str, float, float]:
    """The first audio stream's codec, when its first decoded sample plays and when its sound ends (s)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        end = float(frames[-1].time or 0) + frames[-1].samples / frames[-1].sample_rate
        return stream.codec_context.codec.canonical_name, float(frames[0].time or 0), end


@pytest.mark.parametrize(
    ("audio", "container", "codec", "encoder"),
    [("flac", "mov", "libx264", "aac"), ("pcm_s16le", "webm", "libvpx-vp9", "opus")],
)
def test_audio_the_container_cannot_hold_is_reencoded_in_sync(
    tmp_path: Path, audio: str, container: str, codec: str, encoder: str
) -> None:
    """FLAC in MKV -> MOV (MOV's muxer refuses FLAC) becomes AAC, PCM -> WebM becomes Opus (WebM takes no
    AAC): said in the result and a log line, starting when the input's sound did and ending with it."""
    source = make_video(tmp_path / "in.mkv", VideoSpec(frames=8, audio_codec=audio))
    settings = VideoSettings(codec=codec, container=container, segment_seconds=0.3)
    with capture_logs() as logs:
        output, result = _run(source, _nearest, settings)
    assert result.converted == (f"audio/{audio} -> {encoder}",) and result.dropped == ()
    assert [e["stream"] for e in logs if e["event"] == "video.stream_reencoded"] == [result.converted[0]]
    name, start, end = _decoded_audio(output)
    _, source_start, source_end = _decoded_audio(source)
    assert name == encoder
    assert start == pytest.approx(source_start, abs=0.001)
    assert end == pytest.approx(source_end, abs=0.13)  # the encoder's last frame is padded
    assert probe_video(output, **LIMITS).frames == 8


def test_subrip_becomes_mov_text_in_mp4_and_is_dropped_in_avi(tmp_path: Path) -> None:
    """SubRip cues in MKV -> MP4: mov_text cues with the same text, times and durations; -> AVI, which
    holds no subtitles: left out, and said so."""
    source = make_video(tmp_path / "in.mkv", VideoSpec(frames=8, subtitles=True))
    output, result = _run(source, _nearest, VideoSettings(container="mp4", segment_seconds=0.3))
    assert result.converted == ("subtitle/subrip -> mov_text",)
    cues = [(t, data[2:]) for t, data in video_packets(output, "subtitle") if len(data) > 2]
    assert cues == [(t, data) for t, data in video_packets(source, "subtitle")]
    with capture_logs() as logs:
        _, in_avi = _run(source, _nearest, VideoSettings(codec="mpeg4", container="avi", segment_seconds=0.3))
    assert in_avi.dropped == ("subtitle/subrip",) and in_avi.converted == ()
    assert [e["stream"] for e in logs if e["event"] == "video.stream_dropped"] == ["subtitle/subrip"]
