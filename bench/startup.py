"""srd's start-up: how long the commands people type take before and around the work itself.

Run from the repository root: ``python bench/startup.py [--repeat 5] [--model upconv7-art]``.

Every figure is the best of ``--repeat`` fresh processes (start-up is what is measured, so nothing is
reused between runs except what srd itself keeps on disk: the compile cache, warmed by one run first, in
a temporary folder):

- whole commands: ``python -c pass`` (the interpreter alone), ``srd --version``, ``srd --help``,
  ``srd models`` and ``srd upscale`` of a 16x16 PNG with a warm cache (2x, ``--model``);
- the phases of that upscale inside one process: ``import ml_dtypes``, ``import jax``, srd's engine
  imports, JAX's device, the model (read, geometry, weights prepared), the first call (the compiled
  program from the cache, run once) and a second call;
- the peer: the same 16x16 image through ncnn's Python binding (PyPI ``ncnn``) with the same packaged
  model in a fresh process (import, load, run, write the PNG), waifu2x-ncnn-vulkan's CPU path
  (tests/support/ncnn_peer.py); ratio = srd / ncnn.

Goals (issue 32): warm 16x16 ``srd upscale`` <= 1.2 s, ``srd models`` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ml_dtypes
import numpy
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SRD = [sys.executable, "-m", "srd"]

PHASES = """
import json, sys, time
t0 = time.perf_counter()
marks = {}
import ml_dtypes
marks["import ml_dtypes"] = time.perf_counter()
import jax
marks["import jax"] = time.perf_counter()
from srd.runtime import configure_runtime
configure_runtime()
from pathlib import Path
import numpy as np
from srd.engine import Engine, enable_compilation_cache
from srd.imaging.raster import RasterImage
from srd.settings import ModelSettings
marks["import srd engine"] = time.perf_counter()
enable_compilation_cache(Path(sys.argv[1]))
jax.devices()
marks["device"] = time.perf_counter()
engine = Engine(ModelSettings(name=sys.argv[2], scale=2))
marks["model"] = time.perf_counter()
image = RasterImage(np.random.default_rng(0).random((16, 16, 3), dtype=np.float32))
engine.upscale(image)
marks["first call"] = time.perf_counter()
engine.upscale(image)
marks["second call"] = time.perf_counter()
previous, steps = t0, {}
for name, at in marks.items():
    steps[name] = at - previous
    previous = at
print(json.dumps(steps))
"""

PEER = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from PIL import Image
from support.ncnn_peer import load_peer
peer = load_peer(sys.argv[2], num_threads=int(sys.argv[5]))
rgb = np.asarray(Image.open(sys.argv[3]).convert("RGB"))
Image.fromarray(peer.process(rgb)).save(sys.argv[4])
"""


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return took, done.stdout


def _best(argv: list[str], env: dict[str, str], repeat: int) -> float:
    return min(_timed(argv, env)[0] for _ in range(repeat))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--model", default="upconv7-art", help="a waifu2x model ncnn runs too")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="srd-startup-"))
    cache = work / "cache"
    image = work / "in16.png"
    Image.new("RGB", (16, 16), (200, 80, 40)).save(image)
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "xdg"))
    upscale = [*SRD, "upscale", "--overwrite", "--cache-dir", str(cache), "-m", args.model, "-s", "2"]
    upscale += ["-o", str(work / "out"), str(image)]
    _timed(upscale, env)  # warms the compile cache (and the geometry kept beside it)

    print(
        f"CPU: {_cpu()}, {args.threads} threads; Python {platform.python_version()}, numpy "
        f"{numpy.__version__}, ml_dtypes {ml_dtypes.__version__}; best of {args.repeat}"
    )
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ("srd --version", [*SRD, "--version"], None),
        ("srd --help", [*SRD, "--help"], None),
        ("srd models", [*SRD, "models"], 0.5),
        (f"srd upscale 16x16 {args.model} (warm)", upscale, 1.2),
    ]
    srd_upscale = 0.0
    for label, argv, goal in rows:
        took = _best(argv, env, args.repeat)
        note = f"  goal <= {goal} s: {'met' if took <= goal else 'MISSED'}" if goal else ""
        print(f"  {label:<40} {took:6.2f} s{note}")
        if argv is upscale:
            srd_upscale = took
    peer_argv = [sys.executable, "-c", PEER, str(ROOT / "tests"), args.model, str(image)]
    peer_argv += [str(work / "peer.png"), str(args.threads)]
    peer = _best(peer_argv, env, args.repeat)
    print(f"  {'ncnn one-shot 16x16 (peer)':<40} {peer:6.2f} s  srd/ncnn = {srd_upscale / peer:.2f}")

    phases = [
        json.loads(_timed([sys.executable, "-c", PHASES, str(cache), args.model], env)[1])
        for _ in range(args.repeat)
    ]
    print("  phases of the upscale, in one process (best of each):")
    for name in phases[0]:
        print(f"    {name:<22} {min(p[name] for p in phases):6.3f} s")


if __name__ == "__main__":
    main()
