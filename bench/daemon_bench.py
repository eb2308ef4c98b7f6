"""Daemon-level figures for issue 4: time to READY=1 (cold and warm compilation cache) and throughput of
N images dropped at once, against the network-only rate of the same engine measured in this run.

    python bench/daemon_bench.py [--count 100] [--size 512] [--model upconv7-art]
                                 [--device gpu] [--precision bfloat16] [--tile 512] [--batch 4]

It starts the real `srd run` on temporary folders, with a fake NOTIFY_SOCKET to see READY=1. The
network-only rate is printed two ways: the best single Engine.upscale call (optimistic: the daemon's rate is
an average over the whole queue) and up to 20 calls back to back (the like-for-like baseline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def _image(size: int, seed: int) -> Image.Image:
    """A photo-like test image: smooth gradients, edges and mild noise (compresses like real content)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([np.sin(6 * xx + seed) * 0.5 + 0.5, yy, (xx * yy + 0.3 * ((xx * 8).astype(int) % 2))], 2)
    pixels = np.clip(base * 255 + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _engine_keys(args: argparse.Namespace) -> dict[str, object]:
    """The engine settings the options ask for (a GPU run: --device gpu, --precision, --tile, --batch)."""
    keys: dict[str, object] = {"conv": args.conv, "device": args.device, "precision": args.precision}
    keys |= {name: getattr(args, name) for name in ("tile", "batch") if getattr(args, name) is not None}
    return keys


def _config(root: Path, model: str, cache: Path, png_level: int, engine: dict[str, object]) -> Path:
    config = {
        "inbox": str(root / "inbox"),
        "outbox": str(root / "outbox"),
        "errors": str(root / "errors"),
        "work": str(root / "work"),
        "archive": "delete",
        "watch": {"mode": "inotify", "settle_seconds": 0.2, "rescan_interval": 60},
        "model": {"name": model},
        "engine": {"compile_cache": str(cache), **engine},
        "output": {"png_level": png_level},
        "logging": {"format": "json", "level": "warning"},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class _Daemon:
    def __init__(self, config: Path, root: Path) -> None:
        self.sock_path = root / "notify.sock"
        self.sock_path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        env = {**os.environ, "NOTIFY_SOCKET": str(self.sock_path)}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            # The installed console script: `python -m srd` from a checkout would import its srd/ first.
            [str(Path(sys.executable).parent / "srd"), "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 600) -> float:
        self.sock.settimeout(timeout)
        while True:
            data = self.sock.recv(4096).decode()
            if "READY=1" in data.split("\n"):
                return time.monotonic() - self.started

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.sock.close()


def network_rates(
    model: str, size: int, repeat: int, sustained: int, engine_keys: dict[str, object]
) -> tuple[float, float]:
    """Images per second of Engine.upscale alone on one size x size image: the best single call of
    `repeat`, and `sustained` calls back to back (what a queue of images gets from the network alone)."""
    from srd.runtime import configure_runtime

    configure_runtime()  # as the worker process has it
    from srd.engine.engine import Engine
    from srd.imaging.raster import RasterImage
    from srd.settings import EngineSettings, ModelSettings

    engine = Engine(ModelSettings(name=model), EngineSettings.model_validate(engine_keys))
    image = RasterImage(np.asarray(_image(size, 0), np.float32) / 255)
    engine.upscale(image)
    best = min(_timed(lambda: engine.upscale(image)) for _ in range(repeat))
    total = _timed(lambda: [engine.upscale(image) for _ in range(sustained)])
    return 1.0 / best, sustained / total


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="upconv7-art")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--png-level", type=int, default=4, help="output.png_level (zlib level)")
    parser.add_argument("--conv", default="auto", help="engine.conv, e.g. native-bf16")
    parser.add_argument("--device", default="auto", help="engine.device, e.g. gpu")
    parser.add_argument("--precision", default="float32", help="engine.precision, e.g. bfloat16")
    parser.add_argument("--tile", type=int, help="engine.tile (default: the model's on that device)")
    parser.add_argument("--batch", type=int, help="engine.batch")
    args = parser.parse_args()
    engine_keys = _engine_keys(args)
    load = os.getloadavg()[0]
    print(
        f"cpus={os.cpu_count()} model={args.model} engine={engine_keys} images={args.count}x{args.size}px"
        f" load={load:.1f}"
    )
    root = Path(tempfile.mkdtemp(prefix="srd-bench-"))
    cache = root / "cache"
    try:
        config = _config(root, args.model, cache, args.png_level, engine_keys)
        cold = _Daemon(config, root)
        print(f"ready (cold compile cache): {cold.wait_ready():.2f} s")
        cold.stop()
        warm = _Daemon(config, root)
        print(f"ready (warm compile cache): {warm.wait_ready():.2f} s")
        staging = root / "staging"
        staging.mkdir()
        for i in range(args.count):
            _image(args.size, i).save(staging / f"img{i:04d}.png")
        started = time.monotonic()
        for path in sorted(staging.iterdir()):
            os.rename(path, root / "inbox" / path.name)
        outbox = root / "outbox"
        while len([p for p in outbox.iterdir() if not p.name.startswith(".")]) < args.count:
            if warm.proc.poll() is not None:
                raise SystemExit("daemon exited early")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        warm.stop()
        daemon_rate = args.count / elapsed
        sustained_calls = min(args.count, 20)
        best, sustained = network_rates(args.model, args.size, args.repeat, sustained_calls, engine_keys)
        print(f"daemon: {args.count} images in {elapsed:.1f} s = {daemon_rate:.3f} img/s")
        print(
            f"network only: best call {best:.3f} img/s (daemon / network = {daemon_rate / best:.2f}); "
            f"{min(args.count, 20)} calls back to back {sustained:.3f} img/s ({daemon_rate / sustained:.2f})"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
