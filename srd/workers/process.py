"""The worker process's side: build the engine, then run jobs two deep until told to stop.

`worker_main` is what srd/worker.py's supervisor spawns (never forks: JAX is not fork-safe). Its main thread
decodes and upscales one job while an encoder thread encodes and writes the one before (see _Encoder);
a heartbeat thread tells the supervisor it is alive. Messages to the supervisor: ready, fatal,
heartbeat, computed (ready for the next job), done and failed (with the job's id).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from srd.errors import InputError, SrdError
from srd.imaging.decode import read_image
from srd.imaging.encode import encode_image
from srd.imaging.raster import RasterImage
from srd.jobs.fsops import write_file_synced
from srd.logs import configure_logging
from srd.runtime import configure_runtime, release_free_memory
from srd.settings import Config, EngineSettings, LoggingSettings, ModelSettings

Message = tuple[str, dict[str, Any]]
_PR_SET_PDEATHSIG = 1
# Outputs up to this many pixels are encoded while the next job computes; a bigger one is finished first,
# so two huge images never sit in the worker's memory at once (a 16 Mpx RGB output is ~200 MB as float32).
PIPELINE_MAX_PIXELS = 16_000_000
IDLE_SECONDS = 1.0  # without a job for this long, the worker gives its free memory back


@dataclass(frozen=True)
class WorkerSettings:
    """What the worker needs to build its engine: the config's own sections (they pickle across spawn)."""

    model: ModelSettings
    engine: EngineSettings
    logging: LoggingSettings
    heartbeat_interval: float = 1.0

    @classmethod
    def from_config(cls, config: Config) -> WorkerSettings:
        return cls(model=config.model, engine=config.engine, logging=config.logging)


def _die_with_parent(parent_pid: int) -> None:
    # If the daemon is SIGKILLed the worker must not finish the job behind the next daemon's back.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


class _Channel:
    """The worker's end of the pipe, shared by the job loop and the heartbeat thread."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.conn.send((kind, payload))

    def heartbeat_forever(self, interval: float) -> None:
        while True:
            try:
                self.send("heartbeat", {})
            except OSError:
                os._exit(1)
            time.sleep(interval)


def worker_main(conn: Connection, settings: WorkerSettings, parent_pid: int) -> None:
    """Entry point of the spawned worker: build the engine, report ready, then run jobs until told to stop."""
    _die_with_parent(parent_pid)
    configure_runtime()  # before the engine imports JAX
    # Ctrl-C on a terminal, or a SIGTERM sent to the whole process group (a shell, `timeout`), reaches the
    # worker too; only the daemon decides when it stops (a "stop" message, or SIGKILL), so that a stop
    # lets the job in flight finish within the grace period, as under systemd's KillMode=mixed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channel = _Channel(conn)
    interval = settings.heartbeat_interval
    threading.Thread(target=channel.heartbeat_forever, args=(interval,), daemon=True).start()
    try:
        engine = _build_engine(settings)
    except BaseException as exc:
        exit_code = exc.exit_code if isinstance(exc, SrdError) else 70  # EX_SOFTWARE
        channel.send(
            "fatal",
            {
                "type": type(exc).__name__,
                "message": str(exc),
                "exit_code": exit_code,
                "traceback": traceback.format_exc(),
            },
        )
        return
    channel.send("ready", {"model_id": engine.model_id, "device": engine.device, "pid": os.getpid()})
    encoder = _Encoder(channel)
    while True:
        try:
            if not conn.poll(IDLE_SECONDS):
                # Idle: hand the heap's free memory back (srd/heap.py keeps it for reuse between jobs),
                # so a worker that has upscaled one huge image does not sit on gigabytes until the next.
                encoder.wait_idle()
                release_free_memory()
            kind, spec = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            encoder.wait_idle()
            return
        computed = compute_job(engine, spec)
        if not isinstance(computed, Computed):
            channel.send(*computed)
            continue
        encoder.submit(computed)  # waits for the previous job's encode: one encodes while one computes
        if computed.output_pixels <= PIPELINE_MAX_PIXELS:
            channel.send("computed", {"job_id": computed.job_id})
        else:
            encoder.wait_idle()  # a huge output: finish it before a second image is decoded beside it


def _build_engine(settings: WorkerSettings) -> Any:
    configure_logging(settings.logging.format, settings.logging.level)
    # JAX is imported here only, so the supervising daemon never initialises it.
    from srd.engine.engine import Engine, enable_compilation_cache

    if settings.engine.compile_cache is not None:
        enable_compilation_cache(settings.engine.compile_cache)

    engine = Engine(settings.model, settings.engine)
    engine.warmup()
    return engine


@dataclass(frozen=True)
class Computed:
    """A job whose image is upscaled and waits to be encoded and written."""

    spec: dict[str, Any]
    image: RasterImage
    upscaled: RasterImage
    input_bytes: int
    started: float

    @property
    def job_id(self) -> str:
        return str(self.spec["job_id"])

    @property
    def output_pixels(self) -> int:
        return self.upscaled.width * self.upscaled.height


class _Encoder:
    """A thread that encodes and writes one computed job at a time while the worker computes the next.

    Encoding (numpy, the C PNG filter, zlib, file writes) and the network (XLA's own threads) release the
    GIL, so the two overlap; on 2 cores the encode fills the gaps the network leaves.
    """

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._jobs: queue.Queue[Computed] = queue.Queue(maxsize=1)
        self._idle = threading.Event()
        self._idle.set()
        threading.Thread(target=self._run, name="srd-encoder", daemon=True).start()

    def submit(self, computed: Computed) -> None:
        self._idle.wait()
        self._idle.clear()
        self._jobs.put(computed)

    def wait_idle(self) -> None:
        self._idle.wait()

    def _run(self) -> None:
        while True:
            computed = self._jobs.get()
            message = finish_job(computed)
            del computed  # the pixels can go before the next job's arrive
            try:
                self._channel.send(*message)
            except OSError:
                os._exit(1)  # the daemon is gone
            self._idle.set()


def compute_job(engine: Any, spec: dict[str, Any]) -> Computed | Message:
    """Decode and upscale one input; an error becomes a "failed" message."""
    started = time.monotonic()
    try:
        _inject_test_fault(Path(spec["input"]).name, "compute")  # test-only: no-op unless SRD_TEST_FAULT
        input_bytes = os.lstat(spec["input"]).st_size
        image = read_image(Path(spec["input"]), max_pixels=spec["max_pixels"], max_bytes=spec["max_bytes"])
        upscaled = engine.upscale(image)
    except Exception as exc:
        return _failure(spec, exc)
    return Computed(spec, image, upscaled, input_bytes, started)


def finish_job(computed: Computed) -> Message:
    """Encode a computed job into its fsynced temporary output; an error becomes a "failed" message."""
    spec, upscaled = computed.spec, computed.upscaled
    try:
        _inject_test_fault(Path(spec["input"]).name, "encode")
        data = encode_image(
            upscaled,
            spec["format"],
            quality=spec["quality"],
            png_level=spec["png_level"],
            png_strategy=spec["png_strategy"],
        )
        write_file_synced(Path(spec["temp"]), data)
    except Exception as exc:
        return _failure(spec, exc)
    return "done", {
        "job_id": computed.job_id,
        "input_size": [computed.image.width, computed.image.height],
        "output_size": [upscaled.width, upscaled.height],
        "input_bytes": computed.input_bytes,
        "output_bytes": len(data),
        "ms": round((time.monotonic() - computed.started) * 1000, 1),
    }


def _failure(spec: dict[str, Any], exc: Exception) -> Message:
    if isinstance(exc, InputError):
        return "failed", {
            "job_id": spec["job_id"],
            "permanent": True,
            "type": type(exc).__name__,
            "message": str(exc),
        }
    return "failed", {
        "job_id": spec["job_id"],
        "permanent": False,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        # ENOSPC/EDQUOT are the machine's fault, not the file's: the daemon retries without an attempt.
        "errno": exc.errno if isinstance(exc, OSError) else None,
    }


TEST_FAULT_VARIABLE = "SRD_TEST_FAULT"


SLOW_WRITE_SECONDS = 5.0


def _inject_test_fault(name: str, stage: str) -> None:
    """Fault injection for the reliability tests (tests/test_chaos.py, bench/chaos.py); off by default.

    SRD_TEST_FAULT=ACTION:NAME[,ACTION:NAME...] makes the worker misbehave on the input file called NAME.
    When the job starts (stage "compute"): `kill` (SIGKILL itself, as the OOM killer would), `abort`
    (SIGABRT, as a crashing native library would) or `hang` (block forever while the heartbeat goes on,
    as a stuck computation would). When its output is encoded (stage "encode"): `slow_write` (take
    SLOW_WRITE_SECONDS longer, as a slow disk would, so the next job computes meanwhile). Only the worker
    reads it, from the environment the admin started the daemon with; an inbox writer cannot set it.
    """
    actions = [
        action
        for action, _, target in (
            item.partition(":") for item in os.environ.get(TEST_FAULT_VARIABLE, "").split(",")
        )
        if target == name
    ]
    action = actions[0] if actions else None
    if stage == "encode":
        if action == "slow_write":
            time.sleep(SLOW_WRITE_SECONDS)
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "abort":
        os.abort()
    elif action == "hang":
        threading.Event().wait()
