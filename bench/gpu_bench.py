"""srd against PyTorch on one GPU (issue 17): Mpx/s of output for the same networks and weights, in one run.

    python bench/gpu_bench.py [--models ...] [--tiles 256 512] [--batches 1 4]
                              [--precisions float32 bfloat16] [--compile] [--out table.md]
    python bench/gpu_bench.py --smoke        # a tiny CPU run that shows the script works (no figures)

Each row is one network at one padded tile shape and batch: srd's compiled tile runner (the Engine's own,
engine.device gpu, engine.precision as the row says) on a batch already on the device, against
tests/support/torch_net.py's torch module with the same weights (cuDNN, cudnn.benchmark, channels_last,
inference_mode; with --compile also torch.compile). Both get the same input shape; Mpx/s counts the useful
output (batch x (tile x scale)^2) per second; each side is warmed up, then timed in groups of calls closed
by a synchronisation (block_until_ready / torch.cuda.synchronize), the best group counting. "image" is
Engine.upscale of a whole --image x --image picture (host tiling, copies both ways, output float32): what
the daemon's network stage gets. float32 rows let both sides use TF32 tensor cores (JAX's default
precision, torch's cudnn.allow_tf32 default); --f32 highest asks both for full float32.
Rows are printed as they are measured, so a run cut short still leaves its table so far.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# JAX takes 75% of the GPU at start by default; torch shares the card in this process.
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tests/support: the torch twin of srd's networks

from srd.runtime import configure_runtime  # noqa: E402

configure_runtime()  # before JAX starts, as the worker has it

import jax  # noqa: E402
import numpy as np  # noqa: E402

from srd.engine import Engine  # noqa: E402
from srd.imaging.raster import RasterImage  # noqa: E402
from srd.models import BUILTINS  # noqa: E402
from srd.settings import EngineSettings, ModelSettings, Precision  # noqa: E402

try:
    import torch
    from support.torch_net import TorchNetwork
except ImportError:  # srd alone: the torch columns stay empty
    torch = None  # type: ignore[assignment]

# The four networks of the comparison and their scale.
MODELS = {"upconv7-art": 2, "cunet": 2, "realcugan-se": 2, "realesrgan-x4plus": 4}
TORCH_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class Row:
    model: str
    tile: int
    batch: int
    precision: str
    srd: float
    torch: float | None = None
    compiled: float | None = None
    image: float | None = None
    tflops: float | None = None

    def cells(self) -> list[str]:
        ratio = f"{self.srd / self.torch:.2f}" if self.torch else "-"
        best_torch = max(v for v in (self.torch, self.compiled, 0.0) if v is not None)
        vs_best = f"{self.srd / best_torch:.2f}" if best_torch else "-"

        def fmt(v: float | None) -> str:
            if v is None:
                return "-"
            return f"{v:.1f}" if v >= 10 else f"{v:.3f}"

        return [
            self.model,
            str(self.tile),
            str(self.batch),
            self.precision,
            fmt(self.srd),
            fmt(self.torch),
            fmt(self.compiled),
            ratio,
            vs_best,
            fmt(self.image),
            fmt(self.tflops),
        ]


HEADER = [
    "model",
    "tile",
    "batch",
    "precision",
    "srd Mpx/s",
    "torch Mpx/s",
    "torch.compile Mpx/s",
    "srd / torch",
    "srd / best torch",
    "srd image Mpx/s",
    "srd TFLOP/s",
]


def seconds_per_call(call: Callable[[], Any], sync: Callable[[Any], None], iters: int, groups: int) -> float:
    """Best over `groups` of the mean time of `iters` calls issued back to back, synchronised at the end."""
    sync(call())  # warm-up (compiles, autotunes)
    sync(call())
    best = float("inf")
    for _ in range(groups):
        started = time.perf_counter()
        result = None
        for _ in range(iters):
            result = call()
        sync(result)
        best = min(best, (time.perf_counter() - started) / iters)
    return best


def srd_engine(name: str, tile: int, batch: int, precision: Precision, device: str) -> Engine:
    # lax.conv, what "auto" is on a GPU (on the CPU, for --smoke, it would pick srd's native kernel)
    settings = EngineSettings(device=device, tile=tile, batch=batch, precision=precision, conv="direct")
    return Engine(ModelSettings(name=name, scale=MODELS[name]), settings)  # type: ignore[arg-type]


def srd_network(engine: Engine, args: argparse.Namespace) -> tuple[float, tuple[int, ...], int]:
    """Seconds per batch of srd's tile runner on device-resident tiles, the input shape, the output side."""
    step = engine.passes[0]
    runner = engine.tile_runner(step)
    side = runner.tile + 2 * runner.geometry.context
    shape = (runner.batch, side, side, step.spec.in_channels)
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.random(shape, dtype=np.float32), runner.device)
    valid = jax.device_put(np.tile(np.array([side, side], np.int32), (runner.batch, 1)), runner.device)
    t = seconds_per_call(lambda: runner.run_tiles(x, valid), jax.block_until_ready, args.iters, args.groups)
    return t, shape, runner.tile * step.spec.scale


def torch_network(
    name: str, shape: tuple[int, ...], precision: str, args: argparse.Namespace
) -> tuple[float, float | None]:
    """Seconds per batch of the torch twin (eager; and torch.compile'd with --compile) on the same shape."""
    from srd.models import load_step

    step = load_step(name, -1, MODELS[name])
    device = torch.device("cuda" if args.device == "gpu" else "cpu")
    dtype = getattr(torch, precision)
    net = TorchNetwork(step.spec, step.weights).eval().to(device=device, dtype=dtype)
    net = net.to(memory_format=torch.channels_last)
    b, h, w, c = shape
    x = torch.rand((b, c, h, w), device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    def sync(_: object) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        eager = seconds_per_call(lambda: net(x), sync, args.iters, args.groups)
    compiled = None
    if args.compile:
        fast = torch.compile(net)
        with torch.inference_mode():
            compiled = seconds_per_call(lambda: fast(x), sync, args.iters, args.groups)
    return eager, compiled


def image_rate(engine: Engine, size: int) -> float:
    """Output Mpx/s of Engine.upscale on one size x size image (best of 3 after a warm-up)."""
    rng = np.random.default_rng(1)
    image = RasterImage(rng.random((size, size, 3), dtype=np.float32))
    engine.upscale(image)
    best = min(_timed(lambda: engine.upscale(image)) for _ in range(3))
    return (size * engine.scale) ** 2 / best / 1e6


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(name: str, tile: int, batch: int, precision: Precision, args: argparse.Namespace) -> Row:
    engine = srd_engine(name, tile, batch, precision, args.device)
    t_srd, shape, out_side = srd_network(engine, args)
    mpx = shape[0] * out_side**2 / 1e6
    row = Row(name, engine.tile_runner(engine.passes[0]).tile, batch, precision, mpx / t_srd)
    gflop = dict(BUILTINS[name].gflop_per_mpx).get(MODELS[name])
    if gflop:
        row.tflops = gflop * row.srd / 1e3
    if torch is not None and precision in TORCH_DTYPES:
        eager, compiled = torch_network(name, shape, precision, args)
        row.torch = mpx / eager
        row.compiled = None if compiled is None else mpx / compiled
    if args.image:
        row.image = image_rate(engine, args.image)
    return row


def describe(args: argparse.Namespace) -> list[str]:
    lines = [
        f"host: {platform.node()} {os.cpu_count()} CPUs, python {platform.python_version()}",
        f"jax {jax.__version__}: {jax.devices()[0].device_kind} ({jax.devices()[0].platform})",
    ]
    if torch is not None:
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
        lines.append(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}: {gpu}")
    lines.append(
        f"float32 convolutions: {'full float32' if args.f32 == 'highest' else 'TF32 allowed'} on both sides;"
        f" {args.iters} calls x {args.groups} groups per figure, best group"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", choices=list(MODELS), help="default: all four")
    parser.add_argument("--tiles", nargs="*", type=int, default=[256, 512])
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 4])
    parser.add_argument(
        "--shapes", nargs="*", default=[], help="TILExBATCH pairs, in this order (instead of the product)"
    )
    parser.add_argument("--precisions", nargs="*", default=["float32", "bfloat16"], choices=TORCH_DTYPES)
    parser.add_argument("--device", default="gpu", help="srd's engine.device (torch uses cuda for gpu)")
    parser.add_argument("--iters", type=int, default=10, help="calls per timed group")
    parser.add_argument("--groups", type=int, default=3, help="timed groups; the best counts")
    parser.add_argument("--image", type=int, default=1024, help="Engine.upscale image side (0: skip)")
    parser.add_argument("--compile", action="store_true", help="add torch.compile'd torch")
    parser.add_argument("--f32", choices=["default", "highest"], default="default", help="float32 precision")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run: shows the script works")
    args = parser.parse_args()
    if args.smoke:  # realesrgan-x4plus only when asked: XLA takes minutes to compile it for a CPU
        args.device, args.shapes, args.iters, args.groups, args.image = "cpu", ["16x2"], 1, 1, 16
        args.models = args.models or [name for name in MODELS if name != "realesrgan-x4plus"]
    args.models = args.models or list(MODELS)
    if args.f32 == "highest":
        jax.config.update("jax_default_matmul_precision", "highest")  # type: ignore[no-untyped-call]
    if torch is not None:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = args.f32 != "highest"
        torch.backends.cuda.matmul.allow_tf32 = args.f32 != "highest"
    lines = [*describe(args), "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    print("\n".join(lines), flush=True)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    shapes = shapes or [(tile, batch) for tile in args.tiles for batch in args.batches]
    for tile, batch in shapes:  # every model at both precisions first: a run cut short still compares
        for precision in args.precisions:
            for name in args.models:
                line = "| " + " | ".join(measure(name, tile, batch, precision, args).cells()) + " |"
                lines.append(line)
                print(line, flush=True)
                if args.out:
                    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
