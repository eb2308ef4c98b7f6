"""srd against ncnn on the same model and image, on the CPU, float32, the same number of cores.

Run from the repository root:
``python bench/speed.py [--models ...] [--sizes 256 512 333x517] [--big] [--threads 2]`` (a size is N
for N x N, or W x H).

Models: waifu2x's ``upconv7-art`` and ``cunet`` (2x) against waifu2x-ncnn-vulkan's CPU path
(tests/support/ncnn_peer.py), and ``realcugan-se`` (2x, noise -1 = conservative, the reference default),
``realesr-animevideov3`` (4x) and ``realesrgan-x4plus`` (4x) against realcugan-ncnn-vulkan's and
realsr-ncnn-vulkan's CPU pipelines (tests/support/realsr_peer.py), on the same packaged model files.

Both run pinned to the same ``--threads`` cores (the process's CPU affinity is set before JAX starts,
and ncnn gets ``num_threads`` equal to it, Winograd on, fp16/bf16/int8 off). For each model and size:

- network: the best of ``--repeat`` timed runs after a warm-up (each side's runs back to back, see
  ``best_times``), the whole image as one tile. ncnn:
  ``Extractor.extract`` on the padded float tile. srd: ``Engine.upscale`` with its tile set to the image
  size, so it is one jitted call plus srd's own padding and copies (slightly favours ncnn);
- whole image: the reference program's CPU path (uint8 in and out) against ``Engine.upscale`` (float
  pixels in and out: srd's 8-bit conversions belong to image I/O and are not timed). waifu2x: ncnn's
  400 px tiles, srd's default tile. Real-CUGAN: 400 px tiles on both sides (the program's CPU tile; over
  400 px the tiles share their squeeze-excitation vectors, syncgap 3, on both sides). Real-ESRGAN: 200 px
  tiles on both sides (realsr-ncnn-vulkan's CPU tile; ``--srd-tile`` changes srd's only);
- ratio = srd seconds / ncnn seconds (below 1 means srd is faster), and the largest 8-bit difference
  between the two outputs, for the one-tile and the whole-image runs.

The image is a real photograph (Set14 monarch, mirrored out to the size) when the shared data is there,
otherwise seeded uniform noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/support: the ncnn peer

from support import realsr_peer
from support.ncnn_peer import load_peer

from srd.imaging.raster import RasterImage
from srd.runtime import configure_runtime

configure_runtime()  # XLA_FLAGS and malloc settings before JAX starts, as `srd upscale` has them

U8Image = npt.NDArray[np.uint8]
DEFAULT_IMAGE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "set14" / "monarch.png"
WAIFU2X_MODELS = ("upconv7-art", "cunet")


@dataclass(frozen=True)
class FamilyModel:
    """A Real-CUGAN / Real-ESRGAN model as benchmarked: its package files, scale and both sides' tile."""

    package: str
    stem: str
    scale: int
    tile: int


FAMILY_MODELS = {
    "realcugan-se": FamilyModel("realcugan", "REALCUGAN_SE_UP2X_CONSERVATIVE", 2, 400),
    "realesr-animevideov3": FamilyModel("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP4X", 4, 200),
    "realesrgan-x4plus": FamilyModel("realesrgan", "REALESRGAN_X4PLUS_UP4X", 4, 200),
}
MODELS = (*WAIFU2X_MODELS, *FAMILY_MODELS)
DEFAULT_MODELS = WAIFU2X_MODELS


def pin_cores(count: int) -> list[int]:
    """Restrict this process (and the threads it starts later) to ``count`` cores; return them."""
    available = sorted(os.sched_getaffinity(0))
    if count > len(available):
        raise SystemExit(f"--threads {count} but only {len(available)} cores are available")
    chosen = available[:count]
    os.sched_setaffinity(0, chosen)
    return chosen


@dataclass(frozen=True)
class Size:
    """An image size as given on the command line: ``512`` (square) or ``333x517`` (width x height)."""

    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Size:
        """``N`` or ``WxH``, both positive."""
        width, _, height = text.partition("x")
        try:
            size = cls(int(width), int(height or width))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: a size is N or WxH, e.g. 512 or 333x517") from None
        if size.width < 1 or size.height < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: sizes are positive")
        return size

    @property
    def longest(self) -> int:
        return max(self.width, self.height)

    def __str__(self) -> str:
        return str(self.width) if self.width == self.height else f"{self.width}x{self.height}"


def test_image(size: Size, source: Path | None, seed: int = 0) -> tuple[U8Image, str]:
    """A uint8 RGB image of the size: ``source`` mirrored out to it, or seeded noise."""
    h, w = size.height, size.width
    if source is not None and source.is_file():
        with Image.open(source) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        reps_h, reps_w = -(-h // rgb.shape[0]), -(-w // rgb.shape[1])
        big = np.pad(
            rgb, ((0, (reps_h - 1) * rgb.shape[0]), (0, (reps_w - 1) * rgb.shape[1]), (0, 0)), "symmetric"
        )
        return np.ascontiguousarray(big[:h, :w]), source.name
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f"noise(seed={seed})"


def best_times(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Minimum wall time of each run over ``repeat`` timed calls, after one untimed warm-up call.

    Each side runs its calls back to back, as it would alone: both live in this process, and taking
    turns call by call made each side's big allocations land in memory the other had just freed and
    returned to the system (srd's cunet on one 1024 tile measured 6.8 s taking turns with ncnn, 4.3 s
    alone). Load from elsewhere is then not shared alike: run on a quiet machine, and compare the
    load average printed with each line.
    """
    best = dict.fromkeys(runs, float("inf"))
    for name, run in runs.items():
        run()
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


class SrdRunner:
    """srd's public engine for one model and tile, warmed up, on float pixels made once from 8 bits."""

    def __init__(
        self, model: str, tile: int | None, rgb: U8Image, conv: str = "auto", scale: int = 2
    ) -> None:
        from srd.engine import Engine
        from srd.settings import EngineSettings, ModelSettings

        self.engine = Engine(
            ModelSettings(name=model, noise=-1, scale=scale),  # type: ignore[arg-type]
            EngineSettings(tile=tile, batch=1, device="cpu", conv=conv),  # type: ignore[arg-type]
        )
        self.engine.warmup()
        self.image = RasterImage(pixels=rgb.astype(np.float32) / np.float32(255.0))

    def run(self) -> RasterImage:
        """One ``Engine.upscale`` of the image (what is timed)."""
        return self.engine.upscale(self.image)

    def output_u8(self) -> U8Image:
        """The result as 8-bit RGB, rounded half up like srd's encoder."""
        pixels: U8Image = np.floor(np.clip(self.run().pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return pixels


def max_diff(a: U8Image, b: U8Image) -> int:
    """Largest absolute difference between two 8-bit images of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


class FamilyPeer:
    """The reference pipeline of a Real-CUGAN / Real-ESRGAN model (tests/support/realsr_peer.py) on one
    image: the network alone on the one-tile input, and the whole program at a tile size."""

    def __init__(self, model: FamilyModel, threads: int) -> None:
        self.model = model
        self.net = realsr_peer.load(model.package, model.stem, threads)

    def padded_tile(self, image: U8Image) -> npt.NDArray[np.float32]:
        """The network input of the image as one tile (CHW float32), cut and padded as the program does."""
        if self.model.package == "realcugan":
            tile, _, _ = realsr_peer._cugan_tile(image, 0, 0, max(image.shape[:2]), self.model.scale)
            return tile
        pad = realsr_peer.ESRGAN_PREPADDING
        chw = image.transpose(2, 0, 1).astype(np.float32) * (np.float32(1.0) / np.float32(255.0))
        return np.pad(chw, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")

    def run_float(self, tile: npt.NDArray[np.float32]) -> object:
        """One network run (what "network" times)."""
        return realsr_peer._run(self.net, tile, {}, (self.net.output,))

    def process(self, image: U8Image, tile: int) -> U8Image:
        """The reference program's 8-bit output with `tile` px tiles."""
        if self.model.package == "realcugan":
            return realsr_peer.realcugan(image, self.net, self.model.scale, tile=tile)
        return realsr_peer.realesrgan_like(image, self.net, self.model.scale, tile=tile)


def bench_family(model: str, size: Size, args: argparse.Namespace) -> str:
    """Time one (Real-CUGAN / Real-ESRGAN model, size) pair and return its report line."""
    spec = FAMILY_MODELS[model]
    image, label = test_image(size, args.image)
    peer = FamilyPeer(spec, args.threads)
    tile = peer.padded_tile(image)
    load = f"load {os.getloadavg()[0]:.1f}"
    name = f"{model} {spec.scale}x"
    whole_tile = args.srd_tile or spec.tile
    if args.no_srd:
        t = best_times(
            args.repeat,
            {"net": lambda: peer.run_float(tile), "whole": lambda: peer.process(image, spec.tile)},
        )
        return f"{name:<26}{size!s:>8}{t['net']:>9.3f}{'-':>22}{t['whole']:>10.3f}{'-':>22}   {label}, {load}"
    srd_one = SrdRunner(model, size.longest, image, args.conv, spec.scale)
    net = best_times(args.repeat, {"ncnn": lambda: peer.run_float(tile), "srd": srd_one.run})
    one_diff = max_diff(srd_one.output_u8(), peer.process(image, size.longest))
    del srd_one
    srd_full = SrdRunner(model, whole_tile, image, args.conv, spec.scale)
    whole = best_times(args.repeat, {"ncnn": lambda: peer.process(image, spec.tile), "srd": srd_full.run})
    whole_diff = max_diff(srd_full.output_u8(), peer.process(image, spec.tile))
    return (
        f"{name:<26}{size!s:>8}"
        f"{net['ncnn']:>9.3f}{net['srd']:>9.3f}{net['srd'] / net['ncnn']:>7.2f}{one_diff:>6}"
        f"{whole['ncnn']:>10.3f}{whole['srd']:>9.3f}{whole['srd'] / whole['ncnn']:>7.2f}{whole_diff:>6}"
        f"   tile {spec.tile}/{whole_tile}, {label}, {load}"
    )


def bench_one(model: str, size: Size, args: argparse.Namespace) -> str:
    """Time one (model, size) pair and return its report line."""
    if model in FAMILY_MODELS:
        return bench_family(model, size, args)
    image, label = test_image(size, args.image)
    peer_full = load_peer(model, num_threads=args.threads, winograd=True)
    peer_one = load_peer(model, tilesize=size.longest, num_threads=args.threads, winograd=True)
    tile, _, _ = peer_one.padded_tile(image, 0, 0)
    load = f"load {os.getloadavg()[0]:.1f}"
    if args.no_srd:
        t = best_times(
            args.repeat, {"net": lambda: peer_one.run_float(tile), "whole": lambda: peer_full.process(image)}
        )
        return (
            f"{model:<26}{size!s:>8}{t['net']:>9.3f}{'-':>22}{t['whole']:>10.3f}{'-':>22}   {label}, {load}"
        )
    srd_one = SrdRunner(model, size.longest, image, args.conv)
    net = best_times(args.repeat, {"ncnn": lambda: peer_one.run_float(tile), "srd": srd_one.run})
    one_diff = max_diff(srd_one.output_u8(), peer_one.process(image))
    del srd_one  # one big-tile engine at a time: cunet at 1024 is several GB
    srd_full = SrdRunner(model, args.srd_tile, image, args.conv)
    whole = best_times(args.repeat, {"ncnn": lambda: peer_full.process(image), "srd": srd_full.run})
    whole_diff = max_diff(srd_full.output_u8(), peer_full.process(image))
    return (
        f"{model + ' 2x':<26}{size!s:>8}"
        f"{net['ncnn']:>9.3f}{net['srd']:>9.3f}{net['srd'] / net['ncnn']:>7.2f}{one_diff:>6}"
        f"{whole['ncnn']:>10.3f}{whole['srd']:>9.3f}{whole['srd'] / whole['ncnn']:>7.2f}{whole_diff:>6}"
        f"   {label}, {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS), choices=MODELS)
    parser.add_argument(
        "--sizes", nargs="*", type=Size.parse, default=[Size(256, 256), Size(512, 512)], help="N or WxH"
    )
    parser.add_argument("--big", action="store_true", help="add 1024x1024")
    parser.add_argument("--threads", type=int, default=2, help="cores for both ncnn and srd")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs after the warm-up; the best counts")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="source photo (noise if absent)")
    parser.add_argument(
        "--srd-tile",
        type=int,
        default=None,
        help="srd's tile for the whole-image run (default: its own for waifu2x, the reference's otherwise)",
    )
    parser.add_argument("--no-srd", action="store_true", help="time ncnn alone")
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="also draw this run as a chart (PNG; bench/charts.py, matplotlib)",
    )
    parser.add_argument(
        "--conv",
        default="auto",
        help="srd's convolution (as `srd upscale --conv`): native-bf16 times its bfloat16 kernel (then the"
        " diff column shows bfloat16's rounding too)",
    )
    args = parser.parse_args(argv)
    cores = pin_cores(args.threads)
    sizes = [*args.sizes, *([Size(1024, 1024)] if args.big else [])]
    print(
        f"os.cpu_count()={os.cpu_count()}, pinned to cores {cores}, threads={args.threads}, srd --conv "
        f"{args.conv} (ncnn fp32), best of "
        f"{args.repeat} after warm-up; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    print(
        f"{'model':<26}{'size':>8}{'ncnn':>9}{'srd':>9}{'ratio':>7}{'diff':>6}"
        f"{'ncnn':>10}{'srd':>9}{'ratio':>7}{'diff':>6}"
    )
    print(f"{'':<34}{'--- network, one tile (s) ---':<31}{'--- whole image (s) ---':<31}")
    lines = []
    for model in args.models:
        for size in sizes:
            lines.append(bench_one(model, size, args))
            print(lines[-1], flush=True)
    if args.plot is not None:
        import charts  # bench/charts.py, beside this script

        machine = f"{charts.cpu_name()}, {args.threads} threads, load {os.getloadavg()[0]:.1f} at the end"
        charts.speed_chart(charts.parse_speed("\n".join(lines)), machine, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
