"""Stats: the one record of how the daemon is doing, rendered as status.json and systemd's STATUS= line."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


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
            eta = elapsed / progress.done * (progress.total - progress.done) if progress.done else None
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


@dataclass
class Stats:
    """Counters, queue depths and what is in flight: the scheduler and the loop update it, reports read it.

    Everything that reports on the daemon (status.json, STATUS=, a future /metrics) renders this object,
    so no two reports can disagree.
    """

    state: str = "starting"  # starting, running, stopping, stopped
    started_at: float = field(default_factory=time.time)
    done: int = 0
    failed: int = 0
    last_error: LastError | None = None
    waiting: int = 0
    settling: int = 0
    in_flight: list[InFlightJob] = field(default_factory=list)
    model: str | None = None
    device: str | None = None
    observer: str | None = None
    worker_pid: int | None = None  # the first worker's (kept for readers of older status files)
    workers: list[WorkerStatus] = field(default_factory=list)

    def job_done(self) -> None:
        self.done += 1

    def job_failed(self, rel_path: str, error_type: str, reason: str) -> None:
        self.failed += 1
        self.last_error = LastError(rel_path, reason, error_type, datetime.now(UTC).isoformat())

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
            "started_at": self.started_at,
            "queue": {"waiting": self.waiting, "settling": self.settling},
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
            "workers": [
                {
                    "host": worker.host,
                    "device": worker.device,
                    "pid": worker.pid,
                    "state": worker.state,
                    "jobs": list(worker.jobs),
                    "last_seen": round(worker.last_seen, 1),
                }
                for worker in self.workers
            ],
        }
