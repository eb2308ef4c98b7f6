"""Daemon-level figures for issue 4: time to READY=1 (cold and warm compilation cache) and throughput of
N images dropped at once, against the network-only rate of the same engine measured in this run.

    python bench/daemon_bench.py [--count 100] [--size 512] [--model upconv7-art]
        [--workers N] [--backend local|celery] [--quick]
        [--device gpu] [--precision bfloat16] [--tile 512] [--batch 4]

`--workers N`: N worker processes (local: engine.workers N on the CPU's cores; celery: N `srd worker`
processes, one worker each). `--backend celery` starts a redis-server (from PATH) on a free loopback port in
the temporary folder and sends every job through it. `--quick` skips the cold start and the network-only
rates (for comparing backends and worker counts).

It starts the real `srd run` on temporary folders, with a fake NOTIFY_SOCKET to see READY=1. The
network-only rate is printed two ways: the best single Engine.upscale call (optimistic: the daemon's rate is
an average over the whole queue) and up to 20 calls back to back (the like-for-like baseline).
"""

from __future__ import annotations

import argparse
import json
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


def _config(
    root: Path,
    model: str,
    cache: Path,
    png_level: int,
    conv: str,
    workers: int,
    broker: str | None,
    thumbnails: bool = True,
    engine: dict[str, object] | None = None,
) -> Path:
    config: dict[str, object] = {
        "inbox": str(root / "inbox"),
        "outbox": str(root / "outbox"),
        "errors": str(root / "errors"),
        "work": str(root / "work"),
        "archive": "delete",
        "watch": {"mode": "inotify", "settle_seconds": 0.2, "rescan_interval": 60},
        "model": {"name": model},
        "engine": {
            "compile_cache": str(cache),
            "conv": conv,
            "workers": 1 if broker else workers,
            **(engine or {}),
        },
        "output": {"png_level": png_level},
        "web": {"thumbnails": thumbnails},
        "logging": {"format": "json", "level": "warning"},
    }
    if broker is not None:
        config["queue"] = {"backend": "celery", "broker": broker}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _srd(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # The installed console script: `python -m srd` from a checkout would import its srd/ first.
    command = [str(Path(sys.executable).parent / "srd"), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _start_redis(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("--backend celery needs redis-server on PATH (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = root / "redis"
    folder.mkdir()
    command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def _start_worker_hosts(config: Path, root: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """`count` `srd worker` processes; returns once every one shows its worker ready in work/.workers/."""
    hosts = [_srd("worker", "--config", str(config)) for _ in range(count)]
    folder = root / "work" / ".workers"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready = 0
        for path in folder.glob("*.json") if folder.is_dir() else []:
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            ready += all(worker["state"] == "ready" for worker in document["workers"])
        if ready >= count:
            return hosts
        if any(host.poll() is not None for host in hosts):
            raise SystemExit("an srd worker exited early")
        time.sleep(0.1)
    raise SystemExit("the srd workers did not get ready")


def _wait_local_workers(root: Path, count: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            workers = json.loads((root / "work" / "status.json").read_text()).get("workers") or []
        except (OSError, ValueError):
            workers = []
        if len([worker for worker in workers if worker["state"] == "ready"]) >= count:
            return
        time.sleep(0.1)
    raise SystemExit("the workers did not get ready")


class _Daemon:
    def __init__(self, config: Path, root: Path) -> None:
        self.sock_path = root / "notify.sock"
        self.sock_path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        env = {**os.environ, "NOTIFY_SOCKET": str(self.sock_path)}
        self.started = time.monotonic()
        self.proc = _srd("run", "--config", str(config), env=env)

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


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="engine.device, e.g. gpu")
    parser.add_argument("--precision", default="float32", help="engine.precision, e.g. bfloat16")
    parser.add_argument("--tile", type=int, help="engine.tile (default: the model's on that device)")
    parser.add_argument("--batch", type=int, help="engine.batch")


def _engine_keys(args: argparse.Namespace) -> dict[str, object]:
    """The engine settings beyond conv the options ask for (a GPU run: --device gpu, --precision, --tile,
    --batch)."""
    keys: dict[str, object] = {"device": args.device, "precision": args.precision}
    keys |= {name: getattr(args, name) for name in ("tile", "batch") if getattr(args, name) is not None}
    return keys


def network_rates(
    model: str, size: int, repeat: int, sustained: int, conv: str, engine_keys: dict[str, object]
) -> tuple[float, float]:
    """Images per second of Engine.upscale alone on one size x size image: the best single call of
    `repeat`, and `sustained` calls back to back (what a queue of images gets from the network alone)."""
    from srd.runtime import configure_runtime

    configure_runtime()  # as the worker process has it
    from srd.engine.engine import Engine
    from srd.imaging.raster import RasterImage
    from srd.settings import EngineSettings, ModelSettings

    engine = Engine(ModelSettings(name=model), EngineSettings.model_validate({"conv": conv, **engine_keys}))
    image = RasterImage(np.asarray(_image(size, 0), np.float32) / 255)
    engine.upscale(image)
    best = min(_timed(lambda: engine.upscale(image)) for _ in range(repeat))
    total = _timed(lambda: [engine.upscale(image) for _ in range(sustained)])
    return 1.0 / best, sustained / total


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def _process_tree(pid: int) -> list[int]:
    """pid and its descendants (Linux /proc)."""
    tree, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            tree += children
            frontier += children
    return tree


def _cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of pid and each descendant, with its command line's tail."""
    ticks = os.sysconf("SC_CLK_TCK")
    times: dict[int, tuple[str, float]] = {}
    for process in _process_tree(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{process}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = " ".join(a.decode(errors="replace") for a in argv[1:4] if a)
        times[process] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return times


def _drain(root: Path, daemon: _Daemon, count: int, size: int) -> tuple[float, float]:
    """Seconds for the daemon to publish `count` images moved into its inbox at once, and its steady
    rate: images per second from the first output written to the last (the outputs' mtimes, set as the
    worker writes each), which leaves out the settle delay and the first image's latency before the queue
    fills, as the network's calls back to back have none."""
    staging = root / "staging"
    staging.mkdir()
    for i in range(count):
        _image(size, i).save(staging / f"img{i:04d}.png")
    before = _cpu_seconds(daemon.proc.pid)
    started = time.monotonic()
    for path in sorted(staging.iterdir()):
        os.rename(path, root / "inbox" / path.name)
    outbox = root / "outbox"
    while len([p for p in outbox.iterdir() if not p.name.startswith(".")]) < count:
        if daemon.proc.poll() is not None:
            raise SystemExit("daemon exited early")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    # Where the cores went meanwhile: the scheduler process (watching, queueing, publishing) and the worker
    # (decode, network, encode, thumbnails); what is not the network competes with it for the same cores.
    for process, (name, seconds) in _cpu_seconds(daemon.proc.pid).items():
        spent = seconds - before.get(process, (name, 0.0))[1]
        print(f"  cpu: pid {process} ({name}): {spent:.1f} s ({spent / count * 1000:.0f} ms per image)")
    written = sorted(p.stat().st_mtime_ns for p in outbox.iterdir() if not p.name.startswith("."))
    steady = (count - 1) / max((written[-1] - written[0]) / 1e9, 1e-9) if count > 1 else float("nan")
    return elapsed, steady


def _compare_with_network(
    args: argparse.Namespace, engine_keys: dict[str, object], daemon_rate: float, steady: float
) -> None:
    """Print the network-only rates of the same engine and the daemon's rates as fractions of them."""
    calls = min(args.count, 20)
    best, sustained = network_rates(args.model, args.size, args.repeat, calls, args.conv, engine_keys)
    print(
        f"network only: best call {best:.3f} img/s (daemon / network = {daemon_rate / best:.2f}); "
        f"{calls} calls back to back {sustained:.3f} img/s ({daemon_rate / sustained:.2f})"
    )
    print(
        f"steady daemon / network: {steady / best:.2f} of the best call, "
        f"{steady / sustained:.2f} of the calls back to back"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="upconv7-art")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--png-level", type=int, default=4, help="output.png_level (zlib level)")
    parser.add_argument("--conv", default="auto", help="engine.conv, e.g. native-bf16")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--backend", choices=("local", "celery"), default="local", help="queue.backend")
    parser.add_argument("--quick", action="store_true", help="no cold start, no network-only rates")
    parser.add_argument(
        "--thumbnails", choices=("on", "off"), default="on", help="web.thumbnails: the status page's previews"
    )
    _add_engine_options(parser)
    args = parser.parse_args()
    engine_keys = _engine_keys(args)
    load = os.getloadavg()[0]
    print(
        f"cpus={os.cpu_count()} model={args.model} conv={args.conv} images={args.count}x{args.size}px"
        f" backend={args.backend} workers={args.workers} thumbnails={args.thumbnails} engine={engine_keys}"
        f" load={load:.1f}"
    )
    root = Path(tempfile.mkdtemp(prefix="srd-bench-"))
    cache = root / "cache"
    redis: subprocess.Popen[bytes] | None = None
    hosts: list[subprocess.Popen[bytes]] = []
    try:
        broker = None
        if args.backend == "celery":
            redis, broker = _start_redis(root)
        thumbnails = args.thumbnails == "on"
        config = _config(
            root, args.model, cache, args.png_level, args.conv, args.workers, broker, thumbnails, engine_keys
        )
        if not args.quick:
            cold = _Daemon(config, root)
            print(f"ready (cold compile cache): {cold.wait_ready():.2f} s")
            cold.stop()
        warm = _Daemon(config, root)
        print(f"ready (warm compile cache): {warm.wait_ready():.2f} s")
        if broker is not None:
            hosts = _start_worker_hosts(config, root, args.workers)
        else:
            _wait_local_workers(root, args.workers)  # READY=1 follows the first worker to be ready
        elapsed, steady = _drain(root, warm, args.count, args.size)
        warm.stop()
        daemon_rate = args.count / elapsed
        print(f"daemon: {args.count} images in {elapsed:.1f} s = {daemon_rate:.3f} img/s")
        print(f"daemon steady (first output to last): {steady:.3f} img/s")
        if args.quick:
            return 0
        _compare_with_network(args, engine_keys, daemon_rate, steady)
    finally:
        for process in [*hosts, *([redis] if redis is not None else [])]:
            process.terminate()
            process.wait(timeout=120)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
