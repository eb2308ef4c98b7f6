"""One supervised worker: a spawned process that compiles the model once, then runs jobs two deep: while
one job's output is encoded and written on a thread, the next is decoded and upscaled
(srd/workers/process.py is the process's side).

The daemon never imports JAX itself. The supervisor talks to the worker over a pipe in the typed messages
of srd/jobs/messages.py, watches its heartbeat and the per-job deadline, and kills and restarts it when
it crashes or hangs; JAX is not fork-safe, so the worker is always spawned, never forked.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from srd.jobs.messages import (
    SEGMENTS,
    Computed,
    Fatal,
    FromWorker,
    Heartbeat,
    JobDone,
    JobFailed,
    JobSpec,
    Progress,
    Ready,
    Stop,
)
from srd.workers.process import WorkerSettings, worker_main


class LossReason(Enum):
    """How the supervisor lost its worker."""

    CRASHED = "crashed"  # the process died (killed, aborted, exited)
    TIMEOUT = "timeout"  # a job outlived limits.job_timeout
    HUNG = "hung"  # no heartbeat for limits.heartbeat_timeout
    START_TIMEOUT = "start_timeout"  # not ready within limits.startup_timeout


@dataclass(frozen=True)
class WorkerLost:
    """The worker is gone (and reaped): `job_ids` were in flight (none, one, or two when pipelining)."""

    reason: LossReason
    phase: str  # starting, busy or idle
    job_ids: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)  # for the log line: exitcode, seconds, overdue


WorkerEvent = Ready | Fatal | JobDone | JobFailed | WorkerLost


class WorkerSupervisor:
    """Starts the worker, hands it jobs, and turns crashes, hangs and timeouts into events.

    The worker runs up to two jobs at once: one being decoded and upscaled, the one before it being
    encoded and written (see worker_main). It asks for the next job with a Computed message; the
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
        self.info: Ready | None = None
        self.jobs: dict[str, float] = {}  # in flight: job id -> when it was handed over (monotonic)
        self.computing: str | None = None  # the job the worker is decoding or upscaling
        self.alone: str | None = None  # a job that must run with no other beside it (see WorkerPool.submit)
        self.progress: dict[str, Progress] = {}  # the latest report of each job in flight
        # When a video job in flight last finished a segment: limits.job_timeout runs from then, bounding one
        # segment rather than a whole film.
        self.segment_done: dict[str, float] = {}
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._started_at = 0.0
        self._last_seen = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def label(self) -> str:
        """The device this worker runs on, as logs and status name it."""
        placement = self.settings.placement
        if placement is not None and placement.label:
            return placement.label
        return self.info.device if self.info is not None else self.settings.engine.device

    @property
    def last_seen(self) -> float:
        """When (time.time()) the worker last sent anything, a heartbeat included."""
        return time.time() - (time.monotonic() - self._last_seen)

    @property
    def accepting(self) -> bool:
        """Whether the worker can take another job now (it is started and not computing one)."""
        return self.state == "ready" and self.computing is None and self.alone is None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_main, args=(child_end, self.settings, os.getpid()), name="srd-worker", daemon=True
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        self.state, self.jobs, self.computing, self.alone = "starting", {}, None, None
        self.progress, self.segment_done = {}, {}
        self._started_at = self._last_seen = time.monotonic()

    def submit(self, spec: JobSpec, *, alone: bool = False) -> None:
        if not self.accepting or self._conn is None or (alone and self.jobs):
            raise RuntimeError(f"worker is {self.state}, computing {self.computing}: cannot take a job")
        self._conn.send(spec)
        self.jobs[spec.job_id] = time.monotonic()
        self.computing = spec.job_id
        if alone:
            self.alone = spec.job_id

    def job_started(self, job_id: str) -> float | None:
        """When (time.time()) the job was handed to this worker; None when it holds no such job."""
        since = self.jobs.get(job_id)
        return None if since is None else time.time() - (time.monotonic() - since)

    def poll(self, timeout: float) -> list[WorkerEvent]:
        """Wait up to `timeout` for the worker; return what happened (possibly nothing)."""
        if self._conn is None or self._process is None:
            time.sleep(timeout)  # nothing to wait on; keep the caller's loop from spinning
            return []
        events: list[WorkerEvent] = []
        conn, process = self._conn, self._process
        try:
            if conn.poll(timeout):
                # A Fatal message reaps the worker and closes the pipe, ending this loop.
                while self._conn is conn and conn.poll(0):
                    events.extend(self._receive(conn.recv()))
        except (EOFError, OSError):
            pass  # the worker is gone; is_alive below reports it
        if self._conn is not conn:
            return events
        if not process.is_alive():
            events.append(self._reap(LossReason.CRASHED, {"exitcode": process.exitcode}))
        else:
            overdue = self._overdue()
            if overdue is not None:
                events.append(self._reap(*overdue))
        return events

    def _receive(self, message: FromWorker) -> list[WorkerEvent]:
        self._last_seen = time.monotonic()
        if isinstance(message, Heartbeat):
            return []
        if isinstance(message, Ready):
            self.state, self.info = "ready", message
            return [message]
        if isinstance(message, Fatal):
            self.kill()
            return [message]
        if isinstance(message, Progress):
            if message.job_id in self.jobs and message.unit == SEGMENTS:
                self.segment_done[message.job_id] = time.monotonic()
            elif message.job_id in self.jobs:
                self.progress[message.job_id] = message
            return []
        if isinstance(message, Computed):
            if message.job_id == self.computing:
                self.computing = None
            return []
        if message.job_id not in self.jobs:
            raise RuntimeError(f"unexpected worker message {message!r}")
        del self.jobs[message.job_id]
        self.progress.pop(message.job_id, None)
        self.segment_done.pop(message.job_id, None)
        if message.job_id == self.computing:
            self.computing = None
        if message.job_id == self.alone:
            self.alone = None
        return [message]

    def _overdue(self) -> tuple[LossReason, dict[str, object]] | None:
        now = time.monotonic()
        if self.state == "starting" and now - self._started_at > self.startup_timeout:
            return LossReason.START_TIMEOUT, {"seconds": self.startup_timeout}
        late = [
            job_id
            for job_id, since in self.jobs.items()
            if now - max(since, self.segment_done.get(job_id, since)) > self.job_timeout
        ]
        if late:
            return LossReason.TIMEOUT, {"seconds": self.job_timeout, "overdue": late}
        if now - self._last_seen > self.heartbeat_timeout:
            return LossReason.HUNG, {"seconds": self.heartbeat_timeout}
        return None

    def _reap(self, reason: LossReason, details: dict[str, object]) -> WorkerLost:
        phase = "starting" if self.state == "starting" else "busy" if self.jobs else "idle"
        event = WorkerLost(reason, phase, tuple(self.jobs), {"device": self.label, **details})
        self.kill()
        return event

    def kill(self) -> None:
        """Stop the worker at once; a job in flight stays in work/ for the caller to requeue."""
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        self.state, self.jobs, self.computing, self.alone = "stopped", {}, None, None
        self.progress, self.segment_done = {}, {}
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
                self._conn.send(Stop())
            self._process.join(timeout=5)
        self.kill()
