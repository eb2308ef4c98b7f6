"""The supervised worker: a spawned process that compiles the model once and upscales one job at a time.

The daemon never imports JAX itself. It talks to the worker over a pipe, watches its heartbeat and the
per-job deadline, and kills and restarts it when it crashes or hangs; JAX is not fork-safe, so the worker
is always spawned, never forked.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from srd.config import Config
from srd.engine_settings import EngineSettings
from srd.errors import InputError, SrdError
from srd.image_io import encode_image, read_image
from srd.logs import configure_logging
from srd.publish import write_file_synced

Message = tuple[str, dict[str, Any]]
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker needs to build its engine; plain values so it pickles across spawn."""

    engine: EngineSettings
    compile_cache: str | None
    log_format: str
    log_level: str
    heartbeat_interval: float = 1.0

    @classmethod
    def from_config(cls, config: Config) -> WorkerSettings:
        return cls(
            engine=EngineSettings(
                model=config.model.name,
                noise=config.model.noise,
                scale=config.model.scale,
                tta=config.model.tta,
                device=config.engine.device,
                tile=config.engine.tile,
                batch=config.engine.batch,
                conv_algorithm=config.engine.conv,
            ),
            compile_cache=str(config.engine.compile_cache) if config.engine.compile_cache else None,
            log_format=config.logging.format,
            log_level=config.logging.level,
        )


@dataclass(frozen=True)
class WorkerEvent:
    """Something the supervisor observed: a message from the worker or its death."""

    kind: str  # ready, done, failed, fatal, crashed, timeout, hung, start_timeout
    payload: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None


class WorkerSupervisor:
    """Starts the worker, hands it jobs, and turns crashes, hangs and timeouts into events."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        job_timeout: float,
        startup_timeout: float,
        heartbeat_timeout: float,
    ) -> None:
        self.settings = settings
        self.job_timeout = job_timeout
        self.startup_timeout = startup_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.state = "stopped"  # stopped, starting, idle, busy
        self.in_flight: str | None = None
        self.info: dict[str, Any] = {}
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._started_at = 0.0
        self._job_started_at = 0.0
        self._last_seen = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_main, args=(child_end, self.settings, os.getpid()), name="srd-worker", daemon=True
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        self.state, self.in_flight = "starting", None
        self._started_at = self._last_seen = time.monotonic()

    def submit(self, job_id: str, spec: dict[str, Any]) -> None:
        if self.state != "idle" or self._conn is None:
            raise RuntimeError(f"worker is {self.state}, cannot take a job")
        self._conn.send(("job", spec))
        self.state, self.in_flight = "busy", job_id
        self._job_started_at = time.monotonic()

    def job_elapsed(self) -> float:
        return time.monotonic() - self._job_started_at if self.state == "busy" else 0.0

    def poll(self, timeout: float) -> list[WorkerEvent]:
        """Wait up to `timeout` for the worker; return what happened (possibly nothing)."""
        if self._conn is None or self._process is None:
            time.sleep(timeout)  # nothing to wait on; keep the caller's loop from spinning
            return []
        events: list[WorkerEvent] = []
        conn, process = self._conn, self._process
        try:
            if conn.poll(timeout):
                # A "fatal" message reaps the worker and closes the pipe, ending this loop.
                while self._conn is conn and conn.poll(0):
                    events.extend(self._receive(conn.recv()))
        except (EOFError, OSError):
            pass  # the worker is gone; is_alive below reports it
        if self._conn is not conn:
            return events
        if not process.is_alive():
            events.append(self._reap("crashed", {"exitcode": process.exitcode}))
        else:
            overdue = self._overdue()
            if overdue is not None:
                events.append(self._reap(*overdue))
        return events

    def _receive(self, message: Message) -> list[WorkerEvent]:
        kind, payload = message
        self._last_seen = time.monotonic()
        if kind == "heartbeat":
            return []
        if kind == "ready":
            self.state, self.info = "idle", payload
            return [WorkerEvent("ready", payload)]
        if kind in ("done", "failed"):
            job_id, self.state, self.in_flight = self.in_flight, "idle", None
            return [WorkerEvent(kind, payload, job_id)]
        if kind == "fatal":
            return [self._reap("fatal", payload)]
        raise RuntimeError(f"unexpected worker message {kind!r}")

    def _overdue(self) -> tuple[str, dict[str, Any]] | None:
        now = time.monotonic()
        if self.state == "starting" and now - self._started_at > self.startup_timeout:
            return "start_timeout", {"seconds": self.startup_timeout}
        if self.state == "busy" and now - self._job_started_at > self.job_timeout:
            return "timeout", {"seconds": self.job_timeout}
        if now - self._last_seen > self.heartbeat_timeout:
            return "hung", {"seconds": self.heartbeat_timeout}
        return None

    def _reap(self, kind: str, payload: dict[str, Any]) -> WorkerEvent:
        event = WorkerEvent(kind, {**payload, "phase": self.state}, self.in_flight)
        self.kill()
        return event

    def kill(self) -> None:
        """Stop the worker at once; a job in flight stays in work/ for the caller to requeue."""
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        self.state, self.in_flight = "stopped", None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """Ask an idle worker to exit, killing it if it does not within a few seconds."""
        if self._conn is not None and self._process is not None and self.state == "idle":
            with contextlib.suppress(OSError):
                self._conn.send(("stop", {}))
            self._process.join(timeout=5)
        self.kill()


# ---------------------------------------------------------------------------------------------------------
# The worker process.


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
    while True:
        try:
            kind, spec = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        kind, payload = run_job(engine, spec)
        channel.send(kind, payload)


def _build_engine(settings: WorkerSettings) -> Any:
    configure_logging(settings.log_format, settings.log_level)
    # JAX is imported here only, so the supervising daemon never initialises it.
    from srd.engine import Engine, enable_compilation_cache

    if settings.compile_cache:
        enable_compilation_cache(Path(settings.compile_cache))

    engine = Engine(settings.engine)
    engine.warmup()
    return engine


def run_job(engine: Any, spec: dict[str, Any]) -> Message:
    """Decode, upscale and encode one input into its fsynced temporary output; errors become messages."""
    started = time.monotonic()
    input_bytes = 0
    try:
        _inject_test_fault(Path(spec["input"]).name)  # test-only: a no-op unless SRD_TEST_FAULT is set
        input_bytes = os.lstat(spec["input"]).st_size
        image = read_image(Path(spec["input"]), max_pixels=spec["max_pixels"], max_bytes=spec["max_bytes"])
        upscaled = engine.upscale(image)
        data = encode_image(
            upscaled,
            spec["format"],
            quality=spec["quality"],
            png_level=spec["png_level"],
            png_strategy=spec["png_strategy"],
        )
        write_file_synced(Path(spec["temp"]), data)
    except InputError as exc:
        return "failed", {"permanent": True, "type": type(exc).__name__, "message": str(exc)}
    except Exception as exc:
        return "failed", {
            "permanent": False,
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
            # ENOSPC/EDQUOT are the machine's fault, not the file's: the daemon retries without an attempt.
            "errno": exc.errno if isinstance(exc, OSError) else None,
        }
    return "done", {
        "input_size": [image.width, image.height],
        "output_size": [upscaled.width, upscaled.height],
        "input_bytes": input_bytes,
        "output_bytes": len(data),
        "ms": round((time.monotonic() - started) * 1000, 1),
    }


TEST_FAULT_VARIABLE = "SRD_TEST_FAULT"


def _inject_test_fault(name: str) -> None:
    """Fault injection for the reliability tests (tests/test_chaos.py, bench/chaos.py); off by default.

    SRD_TEST_FAULT=ACTION:NAME[,ACTION:NAME...] makes the worker misbehave on the input file called NAME:
    `kill` (SIGKILL itself, as the OOM killer would), `abort` (SIGABRT, as a crashing native library
    would) or `hang` (block forever while the heartbeat goes on, as a stuck computation would). Only the
    worker reads it, from the environment the admin started the daemon with; an inbox writer cannot set it.
    """
    actions = [
        action
        for action, _, target in (
            item.partition(":") for item in os.environ.get(TEST_FAULT_VARIABLE, "").split(",")
        )
        if target == name
    ]
    action = actions[0] if actions else None
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "abort":
        os.abort()
    elif action == "hang":
        threading.Event().wait()
