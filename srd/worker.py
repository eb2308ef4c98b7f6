"""The supervised worker: a spawned process that compiles the model once, then runs jobs two deep: while
one job's output is encoded and written on a thread, the next is decoded and upscaled.

The daemon never imports JAX itself. It talks to the worker over a pipe, watches its heartbeat and the
per-job deadline, and kills and restarts it when it crashes or hangs; JAX is not fork-safe, so the worker
is always spawned, never forked.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
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
from srd.raster import RasterImage

Message = tuple[str, dict[str, Any]]
_PR_SET_PDEATHSIG = 1
# Outputs up to this many pixels are encoded while the next job computes; a bigger one is finished first,
# so two huge images never sit in the worker's memory at once (a 16 Mpx RGB output is ~200 MB as float32).
PIPELINE_MAX_PIXELS = 16_000_000


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
    """Something the supervisor observed: a message from the worker or its death.

    `job_ids` names the job a done/failed message is about, or every job that was in flight when the
    worker was lost (none, one, or two when it was pipelining).
    """

    kind: str  # ready, done, failed, fatal, crashed, timeout, hung, start_timeout
    payload: dict[str, Any] = field(default_factory=dict)
    job_ids: tuple[str, ...] = ()

    @property
    def job_id(self) -> str | None:
        return self.job_ids[0] if self.job_ids else None


class WorkerSupervisor:
    """Starts the worker, hands it jobs, and turns crashes, hangs and timeouts into events.

    The worker runs up to two jobs at once: one being decoded and upscaled, the one before it being
    encoded and written (see worker_main). It asks for the next job with a "computed" message; the
    supervisor hands it one only then, so at most one job computes and one encodes.
    """

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
        self.state = "stopped"  # stopped, starting, ready
        self.info: dict[str, Any] = {}
        self.jobs: dict[str, float] = {}  # in flight: job id -> when it was handed over (monotonic)
        self.computing: str | None = None  # the job the worker is decoding or upscaling
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._started_at = 0.0
        self._last_seen = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def accepting(self) -> bool:
        """Whether the worker can take another job now (it is started and not computing one)."""
        return self.state == "ready" and self.computing is None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_main, args=(child_end, self.settings, os.getpid()), name="srd-worker", daemon=True
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        self.state, self.jobs, self.computing = "starting", {}, None
        self._started_at = self._last_seen = time.monotonic()

    def submit(self, job_id: str, spec: dict[str, Any]) -> None:
        if not self.accepting or self._conn is None:
            raise RuntimeError(f"worker is {self.state}, computing {self.computing}: cannot take a job")
        self._conn.send(("job", {**spec, "job_id": job_id}))
        self.jobs[job_id] = time.monotonic()
        self.computing = job_id

    def job_started(self, job_id: str) -> float:
        """When (time.time()) the job was handed to the worker."""
        return time.time() - (time.monotonic() - self.jobs.get(job_id, time.monotonic()))

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
            self.state, self.info = "ready", payload
            return [WorkerEvent("ready", payload)]
        job_id = payload.get("job_id")
        if kind == "computed":
            if job_id == self.computing:
                self.computing = None
            return []
        if kind in ("done", "failed") and job_id in self.jobs:
            del self.jobs[job_id]
            if job_id == self.computing:
                self.computing = None
            return [WorkerEvent(kind, payload, (job_id,))]
        if kind == "fatal":
            return [self._reap("fatal", payload)]
        raise RuntimeError(f"unexpected worker message {kind!r} about {job_id!r}")

    def _overdue(self) -> tuple[str, dict[str, Any]] | None:
        now = time.monotonic()
        if self.state == "starting" and now - self._started_at > self.startup_timeout:
            return "start_timeout", {"seconds": self.startup_timeout}
        late = [job_id for job_id, since in self.jobs.items() if now - since > self.job_timeout]
        if late:
            return "timeout", {"seconds": self.job_timeout, "overdue": late}
        if now - self._last_seen > self.heartbeat_timeout:
            return "hung", {"seconds": self.heartbeat_timeout}
        return None

    def _reap(self, kind: str, payload: dict[str, Any]) -> WorkerEvent:
        phase = "starting" if self.state == "starting" else "busy" if self.jobs else "idle"
        event = WorkerEvent(kind, {**payload, "phase": phase}, tuple(self.jobs))
        self.kill()
        return event

    def kill(self) -> None:
        """Stop the worker at once; a job in flight stays in work/ for the caller to requeue."""
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        self.state, self.jobs, self.computing = "stopped", {}, None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """Ask an idle worker to exit, killing it if it does not within a few seconds."""
        if self._conn is not None and self._process is not None and self.state == "ready" and not self.jobs:
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
    encoder = _Encoder(channel)
    while True:
        try:
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
    configure_logging(settings.log_format, settings.log_level)
    # JAX is imported here only, so the supervising daemon never initialises it.
    from srd.engine import Engine, enable_compilation_cache

    if settings.compile_cache:
        enable_compilation_cache(Path(settings.compile_cache))

    engine = Engine(settings.engine)
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
