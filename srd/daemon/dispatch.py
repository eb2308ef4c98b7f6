"""The watcher's side of queue.backend celery: one task per claimed job, sent to the broker, and the jobs'
ends noticed on the shared work folder.

It stands where the local WorkerPool stands in srd/daemon/service.py (the same few methods). The worker
host that runs a job publishes it (srd/workers/remote_job.py), so the watcher holds no job state a
restart could lose: a job ended when its record is gone from work/ (the task's result, when the result
backend has it, says how). One still there after the visibility timeout is sent again, which is harmless:
a second delivery of a job that is running or finished does nothing.

A remote job is reported as a local one is: its progress is read from the report its worker host keeps in
its work folder (srd/jobs/progress_file.py), and its end carries the job line's figures (sizes, bytes,
seconds, device, host) for the job history; its thumbnails wait in work/.thumbnails/ for the scheduler to
move them beside the history. At start, the thumbnails there of jobs no longer in work/ (they ended while
no watcher ran, so no history will list them) are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from srd.jobs.messages import JobSpec, Progress, Ready
from srd.jobs.progress_file import read_progress
from srd.jobs.record import RECORD_NAME
from srd.settings import Config
from srd.status.history import prune_thumbnails
from srd.status.stats import WorkerStatus
from srd.workers.celery_app import TASK_NAME, THUMBNAILS_FOLDER, WORKERS_FOLDER, make_app

log = structlog.get_logger("srd.daemon")

CHECK_INTERVAL = 0.5  # seconds between looks at the jobs in flight
RESULT_GRACE = 5.0  # seconds to wait for a task's result once its job has left work/
WORKER_STATUS_INTERVAL = 2.0
PROGRESS_INTERVAL = 0.5  # seconds between reads of one job's progress report (work/ may be a network mount)


@dataclass(frozen=True)
class RemoteEnded:
    """A job sent to the broker has ended on some worker host (`outcome`: done or failed)."""

    job_id: str
    outcome: str
    output: str | None = None
    error_type: str | None = None
    reason: str | None = None
    device: str | None = None
    host: str | None = None
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    ms: float | None = None

    @classmethod
    def from_result(cls, job_id: str, value: dict[str, Any]) -> RemoteEnded:
        """The end as the task's JSON result (srd/workers/remote_job.py's RemoteOutcome) tells it."""
        return cls(
            job_id,
            str(value["outcome"]),
            output=_text(value.get("output")),
            error_type=_text(value.get("error_type")),
            reason=_text(value.get("reason")),
            device=_text(value.get("device")),
            host=_text(value.get("host")),
            input_size=_size(value.get("input_size")),
            output_size=_size(value.get("output_size")),
            input_bytes=_count(value.get("input_bytes")),
            output_bytes=_count(value.get("output_bytes")),
            ms=float(value["ms"]) if isinstance(value.get("ms"), int | float) else None,
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _size(value: object) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


@dataclass
class _Sent:
    spec: JobSpec
    rel_path: str
    since: float  # time.time() when first sent
    sent_at: float = 0.0  # time.monotonic() of the last send; 0 until a send succeeded
    result: Any = None
    gone_at: float | None = None  # when its record was first seen gone
    progress: Progress | None = None
    progress_read_at: float = 0.0  # time.monotonic() of the last read of its progress report


class CeleryDispatcher:
    """Sends claimed jobs to Celery and reports when each has ended."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = make_app(config)
        self.sent: dict[str, _Sent] = {}
        self._announced = False
        self._next_check = 0.0
        self._next_workers = 0.0
        self._workers: list[WorkerStatus] = []

    @property
    def accepting(self) -> bool:
        return len(self.sent) < self.config.queue.max_queued

    @property
    def busy(self) -> bool:
        return False  # the jobs run on the worker hosts, which a stop of the watcher leaves running

    @property
    def pids(self) -> list[int]:
        return []

    def start(self) -> None:
        work = self.config.work
        with contextlib.suppress(OSError):
            jobs = {entry.name for entry in os.scandir(work) if entry.is_dir() and entry.name[0] != "."}
            prune_thumbnails(work / THUMBNAILS_FOLDER, jobs)

    def restart_stopped(self) -> None:
        pass

    def stop(self) -> None:
        self.app.close()

    def kill(self) -> None:
        self.app.close()

    def submit(self, spec: JobSpec) -> None:
        record = _read_record(spec.input.parent)
        rel_path = str(record.get("rel_path", spec.input.name)) if record else spec.input.name
        entry = _Sent(spec, rel_path, since=time.time())
        self.sent[spec.job_id] = entry
        self._send(entry)

    def _send(self, entry: _Sent) -> None:
        try:
            entry.result = self.app.send_task(
                TASK_NAME,
                args=[entry.spec.job_id, entry.rel_path],
                queue=self.config.queue.name,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as exc:  # kombu's connection errors have no common public base
            log.error("queue.send_failed", input=entry.rel_path, error=str(exc), job_id=entry.spec.job_id)
            return
        entry.sent_at = time.monotonic()

    def job_progress(self, job_id: str) -> Progress | None:
        """The latest progress the job's worker host reported in its work folder, read at most every
        PROGRESS_INTERVAL; None before the first report."""
        entry = self.sent.get(job_id)
        if entry is None:
            return None
        now = time.monotonic()
        if now - entry.progress_read_at >= PROGRESS_INTERVAL:
            entry.progress_read_at = now
            entry.progress = read_progress(self.config.work / job_id, job_id)
        return entry.progress

    def job_started(self, job_id: str) -> float:
        entry = self.sent.get(job_id)
        return entry.since if entry is not None else time.time()

    def poll(self, timeout: float) -> list[Ready | RemoteEnded]:
        # Nothing to wait on here (the jobs run on the worker hosts, whose ends show in work/ and are
        # checked every CHECK_INTERVAL): the wait paces the daemon's loop, as WorkerPool.poll's does.
        time.sleep(timeout)
        events: list[Ready | RemoteEnded] = []
        if not self._announced:
            self._announced = True
            events.append(Ready(self.config.model.model_id, f"celery:{self.config.queue.name}", 0, ""))
        now = time.monotonic()
        if now < self._next_check:
            return events
        self._next_check = now + CHECK_INTERVAL
        for job_id, entry in list(self.sent.items()):
            ended = self._ended(job_id, entry, now)
            if ended is not None:
                del self.sent[job_id]
                events.append(ended)
        return events

    def _ended(self, job_id: str, entry: _Sent, now: float) -> RemoteEnded | None:
        if _still_claimed(self.config.work / job_id):
            if entry.sent_at == 0.0 or now - entry.sent_at > 2 * self.config.visibility_timeout:
                if entry.sent_at:
                    log.warning("queue.resend", input=entry.rel_path, job_id=job_id)
                self._send(entry)
            return None
        if entry.gone_at is None:
            entry.gone_at = now
        value = self._result(entry)
        if value is None or value.get("outcome") not in ("done", "failed"):
            if now - entry.gone_at < RESULT_GRACE:
                return None
            value = {"outcome": "done"}  # the result expired or went with a broker restart
        return RemoteEnded.from_result(job_id, value)

    @staticmethod
    def _result(entry: _Sent) -> dict[str, Any] | None:
        if entry.result is None:
            return None
        try:
            if not entry.result.ready():
                return None
            value = entry.result.result
        except Exception:  # the result backend is down: the grace period covers it
            return None
        return value if isinstance(value, dict) else None

    def statuses(self, inputs: dict[str, str]) -> list[WorkerStatus]:
        """The worker hosts, from the status files each keeps in work/.workers/."""
        now = time.monotonic()
        if now >= self._next_workers:
            self._next_workers = now + WORKER_STATUS_INTERVAL
            self._workers = read_worker_statuses(self.config.work)
        return self._workers


def _read_record(directory: Path) -> dict[str, Any] | None:
    try:
        document = json.loads((directory / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _still_claimed(directory: Path) -> bool:
    """Whether the job is still in work/: its record and its input are there (read only, never repaired)."""
    if not (directory / RECORD_NAME).exists():
        return False
    record = _read_record(directory)
    if record is None:
        return True  # being replaced right now (records are written by rename)
    name = Path(str(record.get("rel_path", ""))).name
    return bool(name) and os.path.lexists(directory / name)


def read_worker_statuses(work: Path) -> list[WorkerStatus]:
    """Every worker of every `srd worker` host that keeps a status file in work/.workers/."""
    workers: list[WorkerStatus] = []
    folder = work / WORKERS_FOLDER
    if not folder.is_dir():
        return workers
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            for worker in document["workers"]:
                workers.append(
                    WorkerStatus(
                        host=str(worker["host"]),
                        device=str(worker["device"]),
                        pid=worker.get("pid"),
                        state=str(worker["state"]),
                        jobs=tuple(worker.get("jobs") or ()),
                        last_seen=float(worker["last_seen"]),
                    )
                )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return workers
