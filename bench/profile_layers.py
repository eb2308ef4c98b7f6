"""Where a network call's time goes on the CPU: srd's native 3x3 layers against everything else.

Run from the repository root: ``python bench/profile_layers.py [--models cunet ...] [--sizes 256 512]
[--conv native native-bf16] [--threads 2] [--repeat 5]``. For each model, size and convolution path it
runs the network on one tile the size of the image (as ``bench/speed.py``'s "network" column does) and
reads the native kernel's own clock (``srd.nn.conv.native.layer_time``: wall time from each layer's call
to its last block's end, on the calling thread) before and after each call. Of the fastest call it prints
the total, the 3x3 layers' time (Winograd, and direct for layers with at most 4 outputs:
srd.nn.conv.narrow), the 2x2 stride-2 layers' (srd.nn.conv.patch) and the rest (XLA's other
ops: squeeze-excitation, element-wise ops, crops and copies, plus srd's host-side padding and copies),
which is what bfloat16 (it shortens the big layers' multiplies only) and kernel work cannot reach.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import numpy as np

from srd.runtime import configure_runtime

configure_runtime()  # XLA_FLAGS and malloc settings before JAX starts, as `srd upscale` has them

from srd.engine import Engine  # noqa: E402 -- after configure_runtime()
from srd.nn.conv import native  # noqa: E402 -- after configure_runtime()
from srd.settings import EngineSettings, ModelSettings  # noqa: E402 -- after configure_runtime()

MODELS = ("upconv7-art", "cunet", "realcugan-se", "realesr-animevideov3")
SCALES = {"realesr-animevideov3": 4}


def profile(model: str, size: int, conv: str, repeat: int) -> tuple[float, float, int, float]:
    """(seconds, seconds in the native 3x3 layers, 3x3 layers per call, seconds in the native 2x2
    stride-2 layers) of the fastest of `repeat` calls."""
    engine = Engine(
        ModelSettings(name=model, noise=-1, scale=SCALES.get(model, 2)),  # type: ignore[arg-type]
        EngineSettings(tile=size, batch=1, device="cpu", conv=conv),  # type: ignore[arg-type]
    )
    runner = engine.tile_runner(engine.passes[0])
    image = np.random.default_rng(0).random((size, size, runner.spec.in_channels), dtype=np.float32)
    runner.upscale(image)  # compile and warm up
    best = (float("inf"), 0.0, 0, 0.0)
    for _ in range(repeat):
        layer_s, layers, patch_s = native.layer_time()
        started = time.perf_counter()
        runner.upscale(image)
        total = time.perf_counter() - started
        after_s, after, after_patch = native.layer_time()
        if total < best[0]:
            best = (total, after_s - layer_s, after - layers, after_patch - patch_s)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 512])
    parser.add_argument("--conv", nargs="*", default=["native"], choices=["native", "native-bf16"])
    parser.add_argument("--threads", type=int, default=2, help="cores to pin the process to")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not native.available():
        raise SystemExit("srd's native kernel is not built")
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    print(f"pinned to {sorted(os.sched_getaffinity(0))}, best of {args.repeat} after a warm-up")
    print(
        f"{'model':<22}{'conv':<13}{'size':>6}{'total s':>9}{'3x3 s':>8}{'layers':>7}{'2x2 s':>8}"
        f"{'rest s':>8}{'rest':>6}"
    )
    for model in args.models:
        for conv in args.conv:
            for size in args.sizes:
                total, layers_s, layers, patch_s = profile(model, size, conv, args.repeat)
                rest = total - layers_s - patch_s
                print(
                    f"{model:<22}{conv:<13}{size:>6}{total:>9.3f}{layers_s:>8.3f}{layers:>7}{patch_s:>8.3f}"
                    f"{rest:>8.3f}{rest / total:>6.0%}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
