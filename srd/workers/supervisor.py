"""The supervised worker: a spawned process that compiles the model once, then runs jobs two deep: while
one job's output is encoded and written on a thread, the next is decoded and upscaled
(srd/worker_process.py is the process's side).

The daemon never imports JAX itself. It talks to the worker over a pipe, watches its heartbeat and the
per-job deadline, and kills and restarts it when it crashes or hangs; JAX is not fork-safe, so the worker
is always spawned, never forked.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from srd.workers.process import Message, WorkerSettings, worker_main

__all__ = ["WorkerEvent", "WorkerSettings", "WorkerSupervisor"]


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
