"""srd's video job against ncnn on the same decoded frames: frames per second, and the share of srd's wall
time spent outside the network (decoding, colour conversion, encoding, assembling: the goal is 10% or
less).

Run from the repository root:
``python bench/video_bench.py [--models upconv7-art realesr-animevideov3] [--seconds 2] [--fps 24]
[--size 854x480] [--threads 2] [--codec libx264 --crf 18 --preset medium]``

The clip is made here with PyAV: 480p (854x480) H.264 yuv420p, CRF 12, a moving pattern (no two frames
alike, so every frame runs the network) and a sine tone, ``--seconds`` long. Both models run at 2x,
480p -> 960p: waifu2x's ``upconv7-art``, and ``realesr-animevideov3``'s 2x model (the packaged
REALESRGAN_ANIMAVIDEOV3_UP2X: its 4x network followed by a bicubic downscale inside the graph, on both
sides).

- srd: ``srd.video.upscale_video`` of the clip into MP4 with ``--codec/--crf/--preset`` (the whole job:
  probe, decode, RGB, engine, encode, assemble with the audio copied), its engine warmed up first. The
  engine's calls are timed inside the job: that is the network (with srd's tiling); the rest of the
  job's wall time is what the share counts.
- ncnn: the reference program's CPU path on the same frames, decoded once beforehand to 8-bit RGB and
  not timed (waifu2x-ncnn-vulkan's 400 px tiles; realsr-ncnn-vulkan's 200 px tiles, prepadding 10, as
  tests/support/ncnn_peer.py and realsr_peer.py reproduce them), one warm-up frame first. It decodes
  and encodes nothing: a real ncnn video pipeline (FFmpeg piping frames) adds that on top.

Both are pinned to the same ``--threads`` cores (bench/speed.py's pin_cores, before JAX starts; ncnn's
num_threads the same). ratio = srd frames/s / ncnn frames/s (above 1: srd is faster); srd's is given
for the whole job and for its network alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from speed import Size, pin_cores  # bench/speed.py, beside this script; it sets the runtime up for JAX

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/support: the ncnn peers

from support import realsr_peer
from support.ncnn_peer import load_peer

from srd.imaging.raster import RasterImage
from srd.settings import VideoSettings

U8Image = npt.NDArray[np.uint8]
MODELS = ("upconv7-art", "realesr-animevideov3")
SAMPLE_RATE = 48000


def make_clip(path: Path, size: Size, fps: int, seconds: float) -> int:
    """Write the benchmark clip to `path`; returns its frame count."""
    frames = max(1, round(seconds * fps))
    x = np.arange(size.width, dtype=np.float32)[None, :]
    y = np.arange(size.height, dtype=np.float32)[:, None]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": "12", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = size.width, size.height, "yuv420p"
        audio = out.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "stereo"
        for index in range(frames):
            t = index / fps
            rgb = np.empty((size.height, size.width, 3), np.uint8)
            rgb[..., 0] = 127 + 120 * np.sin((x + 40 * t) / 37 + y / 91)
            rgb[..., 1] = 127 + 120 * np.sin((y - 25 * t) / 23)
            rgb[..., 2] = np.where(((x - 90 * t) // 64 + y // 64) % 2 == 0, 220, 30)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = round(seconds * SAMPLE_RATE)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(np.stack([tone[start : start + 1024]] * 2))
            sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            sound.sample_rate, sound.pts = SAMPLE_RATE, start
            out.mux(audio.encode(sound))
        out.mux(audio.encode(None))
    return frames


def decoded_rgb(path: Path) -> list[U8Image]:
    """Every frame of the clip as 8-bit RGB (what ncnn is given)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(container.streams.video[0])]


@dataclass(frozen=True)
class SrdRun:
    frames: int
    upscaled: int
    wall: float  # the whole job, seconds
    network: float  # inside the engine's calls


class TimedUpscale:
    """The engine's upscale, its calls counted and their time summed."""

    def __init__(self, upscale: Callable[[RasterImage], RasterImage]) -> None:
        self.upscale, self.calls, self.seconds = upscale, 0, 0.0

    def __call__(self, image: RasterImage) -> RasterImage:
        started = time.perf_counter()
        result = self.upscale(image)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return result


def run_srd(model: str, clip: Path, settings: VideoSettings, folder: Path) -> SrdRun:
    """srd's video job on the clip, its engine compiled and warmed up beforehand (not timed)."""
    from srd.engine import Engine
    from srd.settings import EngineSettings, ModelSettings
    from srd.video import upscale_video

    engine = Engine(
        ModelSettings(name=model, noise=-1, scale=2),  # type: ignore[arg-type]
        EngineSettings(batch=1, device="cpu"),
    )
    engine.warmup()
    with av.open(str(clip)) as container:
        first = next(container.decode(container.streams.video[0])).to_ndarray(format="rgb24")
    engine.upscale(RasterImage(pixels=first.astype(np.float32) / np.float32(255)))  # the frame's shapes
    timed = TimedUpscale(engine.upscale)
    started = time.perf_counter()
    result = upscale_video(
        clip,
        timed,
        folder / f"{model}.mp4",
        folder / f"{model}.work",
        settings,
        model=model,
        max_pixels=10**8,
        max_seconds=float("inf"),
    )
    wall = time.perf_counter() - started
    return SrdRun(result.frames, result.upscaled, wall, timed.seconds)


def run_ncnn(model: str, frames: list[U8Image], threads: int) -> float:
    """Seconds the reference program's CPU path takes over the frames, after one warm-up frame."""
    process: Callable[[U8Image], U8Image]
    if model == "upconv7-art":
        process = load_peer(model, -1, 2, num_threads=threads).process
    else:
        peer = realsr_peer.load("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP2X", threads)

        def process(image: U8Image) -> U8Image:
            return realsr_peer.realesrgan_like(image, peer, 2, 200)

    process(frames[0])
    started = time.perf_counter()
    for frame in frames:
        process(frame)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seconds", type=float, default=2.0, help="the clip's length (default 2)")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--size", type=Size.parse, default=Size(854, 480), help="the clip's WxH")
    parser.add_argument("--threads", type=int, default=2, help="cores for both srd and ncnn")
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--no-ncnn", action="store_true", help="time srd alone")
    args = parser.parse_args(argv)
    cores = pin_cores(args.threads)
    settings = VideoSettings(codec=args.codec, crf=args.crf, preset=args.preset, container="mp4")
    print(f"cores {cores}, load {' '.join(f'{v:.1f}' for v in os.getloadavg())}, {args.codec} crf {args.crf}")
    with tempfile.TemporaryDirectory(prefix="srd-video-bench-") as name:
        folder = Path(name)
        clip = folder / "clip.mp4"
        count = make_clip(clip, args.size, args.fps, args.seconds)
        print(f"clip: {args.size} {count} frames ({args.seconds:g} s at {args.fps} fps) -> 2x")
        frames = decoded_rgb(clip) if not args.no_ncnn else []
        for model in args.models:
            srd = run_srd(model, clip, settings, folder)
            outside = srd.wall - srd.network
            line = (
                f"{model:22s} srd {srd.frames / srd.wall:6.3f} frames/s (network alone"
                f" {srd.upscaled / srd.network:6.3f}), outside the network {outside:6.2f} s of"
                f" {srd.wall:6.2f} s = {100 * outside / srd.wall:4.1f}%"
            )
            if frames:
                ncnn_fps = len(frames) / run_ncnn(model, frames, args.threads)
                whole, network = srd.frames / srd.wall / ncnn_fps, srd.upscaled / srd.network / ncnn_fps
                line += (
                    f" | ncnn {ncnn_fps:6.3f} frames/s | ratio whole job {whole:5.2f}, network {network:5.2f}"
                )
            print(line, f"| load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
