"""The worker process's side: build the engine, then run jobs two deep until told to stop.

`worker_main` is what srd/workers/supervisor.py spawns (never forks: JAX is not fork-safe). Its main thread
decodes and upscales one job while an encoder thread encodes and writes the one before (see _Encoder);
a heartbeat thread tells the supervisor it is alive. Every message either way is a dataclass from
srd/jobs/messages.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from srd.jobs.messages import (
    SEGMENTS,
    Computed,
    Fatal,
    FromWorker,
    Heartbeat,
    JobSpec,
    Progress,
    Ready,
    ToWorker,
)
from srd.jobs.runner import ProgressFn, UpscaledJob, Upscaler, upscale_job, write_job
from srd.logs import configure_logging
from srd.runtime import configure_runtime, release_free_memory
from srd.settings import Config, EngineSettings, LoggingSettings, ModelSettings
from srd.workers.faults import frame_delay, inject_test_fault, tile_delay
from srd.workers.placement import Placement, apply_placement

_PR_SET_PDEATHSIG = 1
# Outputs up to this many pixels are encoded while the next job computes; a bigger one is finished first,
# so two huge images never sit in the worker's memory at once (a 16 Mpx RGB output is ~200 MB as float32).
PIPELINE_MAX_PIXELS = 16_000_000
IDLE_SECONDS = 1.0  # without a job for this long, the worker gives its free memory back
PROGRESS_INTERVAL = 0.5  # seconds between Progress messages for one job (the status file updates each 1 s)


@dataclass(frozen=True)
class WorkerSettings:
    """What the worker needs to build its engine: the config's own sections (they pickle across spawn)."""

    model: ModelSettings
    engine: EngineSettings
    logging: LoggingSettings
    heartbeat_interval: float = 1.0
    placement: Placement | None = None  # one of several workers: its device (srd/workers/placement.py)

    @classmethod
    def from_config(cls, config: Config) -> WorkerSettings:
        return cls(model=config.model, engine=config.engine, logging=config.logging)

    def placed(self, placement: Placement) -> WorkerSettings:
        """These settings for the worker on `placement`'s device."""
        engine = self.engine.model_copy(update={"device": placement.device})
        return dataclasses.replace(self, engine=engine, placement=placement)


def _die_with_parent(parent_pid: int) -> None:
    # If the daemon is SIGKILLed the worker must not finish the job behind the next daemon's back.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


class _Channel:
    """The worker's end of the pipe, shared by the job loop, the encoder and the heartbeat thread."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: FromWorker) -> None:
        with self.lock:
            self.conn.send(message)

    def progress_reporter(self, job_id: str, delay: float = 0.0, unit: str = "tiles") -> ProgressFn:
        """A callback for Engine.upscale (or an animation's frames, `unit` "frames") that sends a job's
        progress, at most every PROGRESS_INTERVAL (`delay`: the slow_tiles test fault's wait,
        srd/workers/faults.py)."""
        last = 0.0

        def report(done: int, total: int) -> None:
            nonlocal last
            if delay:
                time.sleep(delay)
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL or done == total:
                last = now
                self.send(Progress(job_id, done, total, unit))

        return report

    def segment_reporter(self, spec: JobSpec) -> ProgressFn:
        """A callback for each durable segment of a video job: tells the supervisor at once (a segment
        restarts the job's timeout: limits.job_timeout bounds one segment, not a whole film)."""

        def report(done: int, total: int) -> None:
            self.send(Progress(spec.job_id, done, total, SEGMENTS))
            if done < total:  # test-only: a no-op unless SRD_TEST_FAULT is set
                inject_test_fault(spec.input.name, "segment")

        return report

    def heartbeat_forever(self, interval: float) -> None:
        while True:
            try:
                self.send(Heartbeat())
            except OSError:
                os._exit(1)
            time.sleep(interval)


def worker_main(conn: Connection, settings: WorkerSettings, parent_pid: int) -> None:
    """Entry point of the spawned worker: build the engine, report ready, then run jobs until told to stop."""
    _die_with_parent(parent_pid)
    if settings.placement is not None:
        apply_placement(settings.placement)  # JAX reads its device environment once, when it starts
    configure_runtime()  # before the engine imports JAX
    # Ctrl-C on a terminal, or a SIGTERM sent to the whole process group (a shell, `timeout`), reaches the
    # worker too; only the daemon decides when it stops (a Stop message, or SIGKILL), so that a stop
    # lets the job in flight finish within the grace period, as under systemd's KillMode=mixed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channel = _Channel(conn)
    interval = settings.heartbeat_interval
    threading.Thread(target=channel.heartbeat_forever, args=(interval,), daemon=True).start()
    try:
        engine, model_id, device, conv = _build_engine(settings)
    except BaseException as exc:
        channel.send(Fatal.from_exception(exc))
        return
    placement = settings.placement
    if placement is not None and placement.label:
        device = placement.label  # gpu:1 is cuda:0 inside a worker that sees only that GPU
    channel.send(Ready(model_id=model_id, device=device, pid=os.getpid(), conv=conv))
    encoder = _Encoder(channel, device)
    while True:
        try:
            if not conn.poll(IDLE_SECONDS):
                # Idle: hand the heap's free memory back (srd/runtime.py keeps it for reuse between jobs),
                # so a worker that has upscaled one huge image does not sit on gigabytes until the next.
                encoder.wait_idle()
                release_free_memory()
            message: ToWorker = conn.recv()
        except (EOFError, OSError):
            return
        if not isinstance(message, JobSpec):  # Stop
            encoder.wait_idle()
            return
        inject_test_fault(message.input.name, "compute")  # test-only: a no-op unless SRD_TEST_FAULT is set
        reporter = channel.progress_reporter(message.job_id, tile_delay(message.input.name))
        frames = channel.progress_reporter(message.job_id, frame_delay(message.input.name), unit="frames")
        upscaled = upscale_job(engine, message, reporter, frames, channel.segment_reporter(message))
        if not isinstance(upscaled, UpscaledJob):
            channel.send(dataclasses.replace(upscaled, device=device))
            continue
        encoder.submit(upscaled)  # waits for the previous job's encode: one encodes while one computes
        if upscaled.output_pixels <= PIPELINE_MAX_PIXELS:
            channel.send(Computed(upscaled.job_id))
        else:
            encoder.wait_idle()  # a huge output: finish it before a second image is decoded beside it


def _build_engine(settings: WorkerSettings) -> tuple[Upscaler, str, str, str]:
    configure_logging(settings.logging.format, settings.logging.level)
    # JAX is imported here only, so the supervising daemon never initialises it.
    from srd.engine.engine import Engine, enable_compilation_cache

    if settings.engine.compile_cache is not None:
        enable_compilation_cache(settings.engine.compile_cache)

    engine = Engine(settings.model, settings.engine)
    engine.warmup()
    return engine, engine.model_id, engine.device, engine.conv_description


class _Encoder:
    """A thread that encodes and writes one upscaled job at a time while the worker computes the next.

    Encoding (numpy, the C PNG filter, zlib, file writes) and the network (XLA's own threads) release the
    GIL, so the two overlap; on 2 cores the encode fills the gaps the network leaves.
    """

    def __init__(self, channel: _Channel, device: str) -> None:
        self._channel = channel
        self._device = device
        self._jobs: queue.Queue[UpscaledJob] = queue.Queue(maxsize=1)
        self._idle = threading.Event()
        self._idle.set()
        threading.Thread(target=self._run, name="srd-encoder", daemon=True).start()

    def submit(self, job: UpscaledJob) -> None:
        self._idle.wait()
        self._idle.clear()
        self._jobs.put(job)

    def wait_idle(self) -> None:
        self._idle.wait()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            inject_test_fault(job.spec.input.name, "encode")
            message = dataclasses.replace(write_job(job), device=self._device)
            del job  # the pixels can go before the next job's arrive
            try:
                self._channel.send(message)
            except OSError:
                os._exit(1)  # the daemon is gone
            self._idle.set()
