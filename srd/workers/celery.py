"""`srd worker`: a Celery worker whose tasks hand each job to a supervised worker process, one per device.

JAX never runs in Celery's own process: the task only takes a free device slot (a WorkerSupervisor, the
same as the local daemon's), sends it the JobSpec, waits for the result and publishes it
(srd/workers/remote_job.py). Celery runs a thread pool with one thread per device, so a host with N devices
runs N jobs at once and reserves no more (prefetch 1). While a slot is idle a keeper thread reads its
heartbeats and restarts it if it died. Each host writes work/.workers/<host>-<pid>.json every few seconds,
which `srd status` on any host shows.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from srd.errors import WorkerError
from srd.jobs.fsops import write_json_replace
from srd.jobs.messages import Fatal, JobDone, JobFailed, JobResult, JobSpec, Ready
from srd.settings import Config
from srd.workers.celery_app import TASK_NAME, WORKERS_FOLDER, make_app
from srd.workers.placement import Placement, plan_placements
from srd.workers.process import WorkerSettings
from srd.workers.remote_job import RetryLaterError, run_claimed_job
from srd.workers.supervisor import LossReason, WorkerLost, WorkerSupervisor

log = structlog.get_logger("srd.worker")

STATUS_INTERVAL = 2.0
KEEPER_TICK = 0.5
RETRY_LATER_SECONDS = 30


class DeviceSlot:
    """One supervised worker process on one device, used by one task at a time."""

    def __init__(self, supervisor: WorkerSupervisor) -> None:
        self.supervisor = supervisor
        self.lock = threading.Lock()
        self.job: str | None = None  # the inbox path of the job it runs

    def ensure_ready(self, timeout: float) -> None:
        """Start the worker if it is stopped and wait until it has compiled its model."""
        supervisor = self.supervisor
        if supervisor.state == "stopped":
            supervisor.start()
        deadline = time.monotonic() + timeout
        while supervisor.state != "ready":
            for event in supervisor.poll(0.2):
                if isinstance(event, Fatal):
                    raise WorkerError(f"the worker cannot start: {event.message}", event.exit_code)
                if isinstance(event, WorkerLost):
                    log.error("worker.lost", reason=event.reason.value, phase=event.phase, **event.details)
                    supervisor.start()
                if isinstance(event, Ready):
                    log.info("worker.ready", device=event.device, pid=event.pid, conv=event.conv)
            if time.monotonic() > deadline:
                raise WorkerError(f"the worker on {supervisor.label} did not start within {timeout:g} s")

    def run(self, spec: JobSpec) -> tuple[JobResult | WorkerLost, str]:
        """Run one job on this slot's worker: its JobDone or JobFailed, or how the worker was lost."""
        supervisor = self.supervisor
        self.ensure_ready(supervisor.startup_timeout)
        supervisor.submit(spec)
        while True:
            for event in supervisor.poll(0.2):
                if isinstance(event, JobDone | JobFailed) and event.job_id == spec.job_id:
                    return event, supervisor.label
                if isinstance(event, WorkerLost):
                    return event, supervisor.label
                if isinstance(event, Fatal):
                    return WorkerLost(LossReason.CRASHED, "busy", (spec.job_id,)), supervisor.label


class DeviceSlots:
    """The host's device slots: a task checks one out, a keeper thread minds the idle ones."""

    def __init__(self, config: Config, placements: list[Placement]) -> None:
        settings = WorkerSettings.from_config(config)
        limits = config.limits
        self.slots = [
            DeviceSlot(
                WorkerSupervisor(
                    settings.placed(placement) if placement.label else settings,
                    job_timeout=limits.job_timeout,
                    startup_timeout=limits.startup_timeout,
                    heartbeat_timeout=limits.heartbeat_timeout,
                )
            )
            for placement in placements
        ]
        self._free: queue.Queue[DeviceSlot] = queue.Queue()
        self._stopping = threading.Event()

    def __len__(self) -> int:
        return len(self.slots)

    def start(self, timeout: float) -> None:
        """Start every worker and wait until all are ready, then let tasks have them."""
        for slot in self.slots:
            slot.supervisor.start()
        for slot in self.slots:
            slot.ensure_ready(timeout)
            self._free.put(slot)
        threading.Thread(target=self._keep_idle, name="srd-keeper", daemon=True).start()

    @contextlib.contextmanager
    def checkout(self, rel_path: str) -> Iterator[DeviceSlot]:
        slot = self._free.get()
        with slot.lock:
            slot.job = rel_path
            try:
                yield slot
            finally:
                slot.job = None
        self._free.put(slot)

    def _keep_idle(self) -> None:
        while not self._stopping.wait(KEEPER_TICK):
            for slot in self.slots:
                if not slot.lock.acquire(blocking=False):
                    continue  # a task is using it
                try:
                    for event in slot.supervisor.poll(0):
                        if isinstance(event, WorkerLost):
                            log.error("worker.lost", reason=event.reason.value, phase="idle", **event.details)
                    if slot.supervisor.state == "stopped":
                        slot.supervisor.start()
                finally:
                    slot.lock.release()

    def status(self, host: str) -> dict[str, object]:
        return {
            "host": host,
            "pid": os.getpid(),
            "updated_at": time.time(),
            "workers": [
                {
                    "host": host,
                    "device": slot.supervisor.label,
                    "pid": slot.supervisor.pid,
                    "state": slot.supervisor.state,
                    "jobs": [slot.job] if slot.job else [],
                    "last_seen": round(slot.supervisor.last_seen, 1),
                }
                for slot in self.slots
            ],
        }

    def stop(self) -> None:
        self._stopping.set()
        for slot in self.slots:
            slot.supervisor.kill()


def _write_status_forever(path: Path, slots: DeviceSlots, host: str, stopping: threading.Event) -> None:
    while not stopping.is_set():
        with contextlib.suppress(OSError):
            write_json_replace(path, slots.status(host))
        stopping.wait(STATUS_INTERVAL)


def serve(config: Config) -> int:
    """Run the Celery worker of `srd worker` until SIGTERM (a warm shutdown: the jobs running finish)."""
    app = make_app(config)
    slots = DeviceSlots(config, plan_placements(config.engine))
    model_id = config.model.model_id

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_job(task: Any, job_id: str, rel_path: str = "") -> dict[str, str | None]:
        with slots.checkout(rel_path or job_id) as slot:
            try:
                outcome = run_claimed_job(config, job_id, slot.run, model_id=model_id)
            except RetryLaterError as exc:
                raise task.retry(countdown=RETRY_LATER_SECONDS, max_retries=None, exc=exc) from exc
        return outcome.as_dict()

    host = socket.gethostname()
    folder = config.work / WORKERS_FOLDER
    folder.mkdir(exist_ok=True)
    status_path = folder / f"{host}-{os.getpid()}.json"
    stopping = threading.Event()
    log.info("worker.starting", host=host, devices=len(slots), broker=_redacted(config.queue.broker or ""))
    slots.start(config.limits.startup_timeout)
    threading.Thread(
        target=_write_status_forever, args=(status_path, slots, host, stopping), daemon=True
    ).start()
    log.info("worker.consuming", host=host, queue=config.queue.name, devices=len(slots))
    try:
        worker = app.Worker(
            pool="threads",
            concurrency=len(slots),
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
        slots.stop()
        status_path.unlink(missing_ok=True)


def _redacted(url: str) -> str:
    """The broker URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{location}"
