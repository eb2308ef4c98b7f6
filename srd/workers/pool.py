"""WorkerPool: the daemon's one handle on its workers (one today; several is a setting, not a rewrite)."""

from __future__ import annotations

import time

from srd.jobs.messages import JobSpec, Progress, Ready
from srd.workers.process import WorkerSettings
from srd.workers.supervisor import WorkerEvent, WorkerSupervisor


class WorkerPool:
    """Supervised workers behind one face: submit to any accepting worker, poll the events of all.

    A worker that is lost is restarted on the next `restart_stopped`; the pool never decides what a loss
    means for a job (srd/daemon/scheduler.py does).
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        size: int = 1,
        job_timeout: float,
        startup_timeout: float,
        heartbeat_timeout: float,
    ) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, not {size}")
        self.workers = [
            WorkerSupervisor(
                settings,
                job_timeout=job_timeout,
                startup_timeout=startup_timeout,
                heartbeat_timeout=heartbeat_timeout,
            )
            for _ in range(size)
        ]

    @property
    def accepting(self) -> bool:
        """Whether some worker can take a job now."""
        return any(worker.accepting for worker in self.workers)

    @property
    def busy(self) -> bool:
        """Whether any worker holds a job."""
        return any(worker.jobs for worker in self.workers)

    @property
    def info(self) -> Ready | None:
        """The first ready worker's model and device (every worker runs the same settings)."""
        return next((worker.info for worker in self.workers if worker.info is not None), None)

    @property
    def pids(self) -> list[int]:
        return [pid for worker in self.workers if (pid := worker.pid) is not None]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def restart_stopped(self) -> None:
        """Start again every worker that was lost (its loss already reported by `poll`)."""
        for worker in self.workers:
            if worker.state == "stopped":
                worker.start()

    def submit(self, spec: JobSpec) -> None:
        """Hand the job to an accepting worker (the caller checks `accepting` first)."""
        worker = next((worker for worker in self.workers if worker.accepting), None)
        if worker is None:
            raise RuntimeError("no worker can take a job now")
        worker.submit(spec)

    def job_started(self, job_id: str) -> float:
        """When (time.time()) the job was handed to its worker; now when no worker holds it."""
        for worker in self.workers:
            if (since := worker.job_started(job_id)) is not None:
                return since
        return time.time()

    def job_progress(self, job_id: str) -> Progress | None:
        """The latest progress its worker reported for the job, or None."""
        for worker in self.workers:
            if (progress := worker.progress.get(job_id)) is not None:
                return progress
        return None

    def poll(self, timeout: float) -> list[WorkerEvent]:
        """Wait up to `timeout` in all; return what every worker reported."""
        events: list[WorkerEvent] = []
        share = timeout / len(self.workers)
        for worker in self.workers:
            events.extend(worker.poll(share))
        return events

    def stop(self) -> None:
        """Ask every idle worker to exit; kill the rest."""
        for worker in self.workers:
            worker.stop()

    def kill(self) -> None:
        for worker in self.workers:
            worker.kill()
