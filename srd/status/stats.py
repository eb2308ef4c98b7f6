"""Stats: the one record of how the daemon is doing, rendered as status.json, systemd's STATUS= line and,
through status.json, `srd web`'s page and /metrics (srd/status/metrics.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from srd import __version__
from srd.status.history import FinishedJob, JobHistory
from srd.status.measures import (
    DURATION_BUCKETS,
    FAILURE_REASONS,
    JOB_OUTCOMES,
    WAIT_BUCKETS,
    WORKER_LOSS_REASONS,
    Histogram,
    failure_reason,
    seconds_left,
)


@dataclass(frozen=True)
class LastError:
    """The most recent job that went to errors."""

    input: str
    reason: str
    type: str
    at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class JobProgress:
    """How far a job in flight is: `done` of `total` `unit`s (network tiles, or frames)."""

    done: int
    total: int
    unit: str = "tiles"


@dataclass(frozen=True)
class InFlightJob:
    """A job a worker holds now, since when (time.time()), and how far it is when the worker has said."""

    input: str
    job_id: str
    since: float
    progress: JobProgress | None = None

    def entry(self) -> dict[str, object]:
        """Its status.json entry; `eta` (seconds) is estimated from the time taken by the units done."""
        entry: dict[str, object] = {"input": self.input, "job_id": self.job_id, "since": round(self.since)}
        progress = self.progress
        if progress is not None:
            elapsed = max(0.0, time.time() - self.since)
            eta = seconds_left(elapsed, progress.done, progress.total)
            entry["progress"] = {
                "done": progress.done,
                "total": progress.total,
                "unit": progress.unit,
                "eta": None if eta is None else round(eta, 1),
            }
        return entry


@dataclass(frozen=True)
class WorkerStatus:
    """One worker as status shows it: where it runs, what it holds, when it was last heard from."""

    host: str
    device: str
    pid: int | None
    state: str  # starting, ready, stopped
    jobs: tuple[str, ...]  # the inputs in flight on it
    last_seen: float  # time.time()

    def entry(self) -> dict[str, object]:
        """Its entry in status.json's `workers` list (and in a worker host's own status file)."""
        return {
            "host": self.host,
            "device": self.device,
            "pid": self.pid,
            "state": self.state,
            "jobs": list(self.jobs),
            "last_seen": round(self.last_seen, 1),
        }


def _zeros(labels: tuple[str, ...]) -> dict[str, int]:
    return dict.fromkeys(labels, 0)


@dataclass
class Measures:
    """The counters and histograms behind /metrics (reset when the daemon restarts, as counters may)."""

    outcomes: dict[str, int] = field(default_factory=lambda: _zeros(JOB_OUTCOMES))
    failures: dict[str, int] = field(default_factory=lambda: _zeros(FAILURE_REASONS))
    worker_restarts: dict[str, int] = field(default_factory=lambda: _zeros(WORKER_LOSS_REASONS))
    duration: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS))
    queue_wait: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    input_pixels: int = 0
    output_pixels: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    last_success: float | None = None

    def document(self) -> dict[str, object]:
        return {
            "jobs": dict(self.outcomes),
            "failures": dict(self.failures),
            "worker_restarts": dict(self.worker_restarts),
            "job_duration_seconds": self.duration.document(),
            "queue_wait_seconds": self.queue_wait.document(),
            "input_pixels": self.input_pixels,
            "output_pixels": self.output_pixels,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "last_success": self.last_success,
        }


@dataclass
class Stats:
    """Counters, queue depths and what is in flight: the scheduler and the loop update it, reports read it.

    Everything that reports on the daemon (status.json, STATUS=, /metrics and the status page) renders
    this object, so no two reports can disagree. `history`, when set, receives every job that ends.
    """

    state: str = "starting"  # starting, running, stopping, stopped
    started_at: float = field(default_factory=time.time)
    ready: bool = False  # READY=1 was sent
    done: int = 0
    failed: int = 0
    last_error: LastError | None = None
    waiting: int = 0
    settling: int = 0
    claimed: int = 0  # of the waiting, those claimed into work/ already
    in_flight: list[InFlightJob] = field(default_factory=list)
    model: str | None = None
    device: str | None = None
    observer: str | None = None
    worker_pid: int | None = None  # the first worker's (kept for readers of older status files)
    workers: list[WorkerStatus] = field(default_factory=list)
    measures: Measures = field(default_factory=Measures)
    history: JobHistory | None = None
    _handed_over: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def job_started(self, job_id: str, first_seen: float, first_attempt: bool) -> None:
        """A job was handed to a worker; its first handover measures how long it waited."""
        now = time.time()
        wait = max(0.0, now - first_seen)
        self._handed_over[job_id] = (now, wait)
        if first_attempt:
            self.measures.queue_wait.observe(wait)

    def job_done(self, finished: FinishedJob | None = None) -> None:
        """A job's output is published (None: one an earlier run had published, finished at start)."""
        self.done += 1
        measures = self.measures
        measures.outcomes["done"] += 1
        measures.last_success = time.time()
        if finished is None:
            return
        self._handed_over.pop(finished.job_id, None)
        if finished.seconds is not None:
            measures.duration.observe(finished.seconds)
        if finished.input_size is not None and finished.output_size is not None:
            measures.input_pixels += finished.input_size[0] * finished.input_size[1]
            measures.output_pixels += finished.output_size[0] * finished.output_size[1]
        measures.input_bytes += finished.input_bytes or 0
        measures.output_bytes += finished.output_bytes or 0
        if self.history is not None:
            self.history.record(finished)

    def job_retried(self) -> None:
        self.measures.outcomes["retried"] += 1

    def job_failed(
        self,
        rel_path: str,
        error_type: str,
        reason: str,
        job_id: str | None = None,
        *,
        device: str | None = None,
        host: str | None = None,
    ) -> None:
        self.failed += 1
        self.measures.outcomes["failed"] += 1
        self.measures.failures[failure_reason(error_type)] += 1
        now = time.time()
        self.last_error = LastError(
            rel_path, reason, error_type, datetime.fromtimestamp(now, UTC).isoformat()
        )
        if job_id is not None and self.history is not None:
            handed = self._handed_over.pop(job_id, None)
            self.history.record(
                FinishedJob(
                    job_id=job_id,
                    input=rel_path,
                    outcome="failed",
                    finished_at=now,
                    queue_wait=None if handed is None else round(handed[1], 3),
                    error_type=error_type,
                    reason=reason,
                    device=device,
                    host=host,
                )
            )

    def handed_over(self, job_id: str) -> tuple[float, float] | None:
        """(when, seconds waited before) for a job a worker holds."""
        return self._handed_over.get(job_id)

    def worker_lost(self, reason: str) -> None:
        """The supervisor lost a worker (and restarts it): counted by how it was lost."""
        restarts = self.measures.worker_restarts
        restarts[reason] = restarts.get(reason, 0) + 1

    def status_line(self) -> str:
        """systemd's STATUS=, as `systemctl status` shows it."""
        busy = len(self.in_flight)
        return (
            f"{self.state}: {self.waiting} waiting, {busy} in flight, {self.done} done, {self.failed} failed"
        )

    def document(self) -> dict[str, object]:
        """The status.json document (srd/status/status_file.py adds pid and updated_at)."""
        last_error = self.last_error
        return {
            "state": self.state,
            "ready": self.ready,
            "version": __version__,
            "started_at": self.started_at,
            "queue": {"waiting": self.waiting, "settling": self.settling, "claimed": self.claimed},
            "in_flight": [job.entry() for job in self.in_flight],
            "done": self.done,
            "failed": self.failed,
            "last_error": None
            if last_error is None
            else {
                "input": last_error.input,
                "reason": last_error.reason,
                "type": last_error.type,
                "at": last_error.at,
            },
            "model": self.model,
            "device": self.device,
            "observer": self.observer,
            "worker_pid": self.worker_pid,
            "workers": [worker.entry() for worker in self.workers],
            "metrics": self.measures.document(),
        }
