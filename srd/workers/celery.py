"""`srd worker`: a Celery worker whose tasks hand each job to a supervised worker process, one per device.

JAX never runs in Celery's own process: a task only hands the JobSpec to the host's WorkerPool (the same
supervised workers as the local daemon's, one per device, driven by one thread), waits for the result and
publishes it (srd/workers/remote_job.py). Celery runs a thread pool of two threads per device, so each
worker encodes one job while it computes the next, and the host reserves no more jobs than that
(prefetch 1). Each host writes work/.workers/<host>-<pid>.json every few seconds, which `srd status` on any
host shows, and each running job's progress into its work folder (srd/jobs/progress_file.py), which the
watcher reports as it does a local job's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from srd.errors import WorkerError
from srd.jobs.fsops import write_json_replace
from srd.jobs.messages import Fatal, JobResult, JobSpec, Progress, Ready
from srd.jobs.progress_file import WRITE_INTERVAL, write_progress
from srd.settings import Config
from srd.workers.celery_app import TASK_NAME, THUMBNAILS_FOLDER, WORKERS_FOLDER, make_app
from srd.workers.placement import plan_placements
from srd.workers.pool import WorkerPool
from srd.workers.process import WorkerSettings
from srd.workers.remote_job import RetryLaterError, run_claimed_job
from srd.workers.supervisor import WorkerEvent, WorkerLost

log = structlog.get_logger("srd.worker")

STATUS_INTERVAL = 2.0
PIPELINE_DEPTH = 2  # tasks per worker: one computing while the one before is encoded
RETRY_LATER_SECONDS = 30


@dataclass
class _Request:
    spec: JobSpec
    rel_path: str
    alone: bool
    done: threading.Event = field(default_factory=threading.Event)
    result: JobResult | WorkerLost | None = None
    device: str = ""
    beside: int = 1  # jobs in flight on the worker when it was lost, this one included


class HostPool:
    """The host's WorkerPool, driven by one thread as the local daemon's loop drives it: tasks hand it a
    JobSpec and wait; it keeps one job computing and one encoding per worker, reads heartbeats, and restarts
    a lost worker while the others go on."""

    def __init__(self, config: Config) -> None:
        limits = config.limits
        self.pool = WorkerPool(
            WorkerSettings.from_config(config),
            placements=plan_placements(config.engine),
            job_timeout=limits.job_timeout,
            startup_timeout=limits.startup_timeout,
            heartbeat_timeout=limits.heartbeat_timeout,
        )
        self._work = config.work
        self._progress_written: dict[str, Progress] = {}
        self._next_progress = 0.0
        self._lock = threading.Lock()
        self._waiting: deque[_Request] = deque()
        self._running: dict[str, _Request] = {}
        self._stopping = threading.Event()
        self._fatal: Fatal | None = None
        self._start_failures = 0

    def __len__(self) -> int:
        return len(self.pool.workers)

    def start(self, timeout: float) -> None:
        """Start every worker, wait until all are ready, then drive them from a thread."""
        self.pool.start()
        deadline = time.monotonic() + timeout
        while not all(worker.state == "ready" for worker in self.pool.workers):
            self._step()
            if self._fatal is not None:
                raise WorkerError(f"the worker cannot start: {self._fatal.message}", self._fatal.exit_code)
            if time.monotonic() > deadline:
                raise WorkerError(f"the workers did not start within {timeout:g} s")
        threading.Thread(target=self._drive, name="srd-pool", daemon=True).start()

    def run(self, spec: JobSpec, rel_path: str, *, alone: bool) -> tuple[JobResult | WorkerLost, str, int]:
        """Run one job on some worker: its result (or how the worker was lost), the device, and how many
        jobs were in flight on that worker when it was lost."""
        request = _Request(spec, rel_path, alone)
        with self._lock:
            self._waiting.append(request)
        while not request.done.wait(1.0):
            if self._fatal is not None:
                raise WorkerError(f"the worker cannot start: {self._fatal.message}", self._fatal.exit_code)
        assert request.result is not None
        return request.result, request.device, request.beside

    def _drive(self) -> None:
        while not self._stopping.is_set():
            self._step()

    def _step(self) -> None:
        for event in self.pool.poll(0.05):
            self._on_event(event)
        with self._lock:
            self.pool.restart_stopped()
            while self._waiting and self.pool.can_take(alone=self._waiting[0].alone):
                request = self._waiting.popleft()
                worker = self.pool.submit(request.spec, alone=request.alone)
                request.device = worker.label
                self._running[request.spec.job_id] = request
        self._write_progress()

    def _write_progress(self) -> None:
        """Each running job's latest progress into work/<job_id>/, when it changed, every WRITE_INTERVAL.

        Only from the thread that drives the pool, which is also the one that hands a result back
        (_finish): a job's report is never written once its task may be publishing (removing) its folder."""
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + WRITE_INTERVAL
        with self._lock:
            running = list(self._running)
        written = self._progress_written
        for job_id in list(written):
            if job_id not in running:
                del written[job_id]
        for job_id in running:
            progress = self.pool.job_progress(job_id)
            if progress is None or written.get(job_id) == progress:
                continue
            with contextlib.suppress(OSError):  # a work folder unreachable for now: the next write
                write_progress(self._work / job_id, progress)
                written[job_id] = progress

    def _on_event(self, event: WorkerEvent) -> None:
        if isinstance(event, Ready):
            self._start_failures = 0
            log.info("worker.ready", device=event.device, pid=event.pid, conv=event.conv)
        elif isinstance(event, Fatal):
            # A worker that cannot start again (its model no longer loads): stop taking jobs (a warm
            # shutdown); those waiting here fail and are delivered again elsewhere.
            if self._fatal is None:
                log.error("worker.fatal", error=event.message)
                os.kill(os.getpid(), signal.SIGTERM)
            self._fatal = event
        elif isinstance(event, WorkerLost):
            if not event.job_ids:
                log.error("worker.lost", reason=event.reason.value, phase=event.phase, **event.details)
            for job_id in event.job_ids:
                self._finish(job_id, event, beside=len(event.job_ids))
        else:
            self._finish(event.job_id, event)

    def _finish(self, job_id: str, result: JobResult | WorkerLost, beside: int = 1) -> None:
        with self._lock:
            request = self._running.pop(job_id, None)
        if request is not None:
            request.result, request.beside = result, beside
            request.done.set()

    def status(self, host: str) -> dict[str, object]:
        with self._lock:
            inputs = {job_id: request.rel_path for job_id, request in self._running.items()}
            workers = self.pool.statuses(inputs)
        return {
            "host": host,
            "pid": os.getpid(),
            "updated_at": time.time(),
            "workers": [worker.entry() for worker in workers],
        }

    def stop(self) -> None:
        self._stopping.set()
        self.pool.kill()


def _write_status_forever(path: Path, host_pool: HostPool, host: str, stopping: threading.Event) -> None:
    while not stopping.is_set():
        with contextlib.suppress(OSError):
            write_json_replace(path, host_pool.status(host))
        stopping.wait(STATUS_INTERVAL)


def serve(config: Config) -> int:
    """Run the Celery worker of `srd worker` until SIGTERM (a warm shutdown: the jobs running finish)."""
    app = make_app(config)
    host_pool = HostPool(config)
    model_id = config.model.model_id

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_job(task: Any, job_id: str, rel_path: str = "") -> dict[str, object]:
        try:
            outcome = run_claimed_job(config, job_id, host_pool.run, model_id=model_id)
        except RetryLaterError as exc:
            raise task.retry(countdown=RETRY_LATER_SECONDS, max_retries=None, exc=exc) from exc
        return outcome.as_dict()

    host = socket.gethostname()
    folder = config.work / WORKERS_FOLDER
    folder.mkdir(exist_ok=True)
    (config.work / THUMBNAILS_FOLDER).mkdir(exist_ok=True)
    status_path = folder / f"{host}-{os.getpid()}.json"
    stopping = threading.Event()
    log.info(
        "worker.starting", host=host, devices=len(host_pool), broker=_redacted(config.queue.broker or "")
    )
    host_pool.start(config.limits.startup_timeout)
    threading.Thread(
        target=_write_status_forever, args=(status_path, host_pool, host, stopping), daemon=True
    ).start()
    log.info("worker.consuming", host=host, queue=config.queue.name, devices=len(host_pool))
    try:
        worker = app.Worker(
            pool="threads",
            concurrency=PIPELINE_DEPTH * len(host_pool),
            queues=[config.queue.name],
            hostname=f"srd-{os.getpid()}@{host}",
            loglevel="WARNING",
            without_gossip=True,
            without_mingle=True,
            optimization="fair",
            quiet=True,
        )
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        stopping.set()
        host_pool.stop()
        status_path.unlink(missing_ok=True)


def _redacted(url: str) -> str:
    """The broker URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{location}"
