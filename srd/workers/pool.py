"""WorkerPool: the daemon's one handle on its workers, one supervised process per device (placement)."""

from __future__ import annotations

import socket
import time

from srd.jobs.messages import JobSpec, Progress, Ready
from srd.status.stats import WorkerStatus
from srd.workers.placement import Placement
from srd.workers.process import WorkerSettings
from srd.workers.supervisor import WorkerEvent, WorkerSupervisor


class WorkerPool:
    """Supervised workers behind one face: submit to an accepting worker, poll the events of all.

    A worker that is lost is restarted on the next `restart_stopped` while the others go on; the pool never
    decides what a loss means for a job (srd/daemon/scheduler.py does).
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        placements: list[Placement] | None = None,
        job_timeout: float,
        startup_timeout: float,
        heartbeat_timeout: float,
    ) -> None:
        chosen = placements or [Placement("", settings.engine.device)]
        self.workers = [
            WorkerSupervisor(
                settings.placed(placement) if placement.label else settings,
                job_timeout=job_timeout,
                startup_timeout=startup_timeout,
                heartbeat_timeout=heartbeat_timeout,
            )
            for placement in chosen
        ]
        self.host = socket.gethostname()

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

    def statuses(self, inputs: dict[str, str]) -> list[WorkerStatus]:
        """Each worker for status; `inputs` names the jobs in flight (job id -> inbox path)."""
        return [
            WorkerStatus(
                host=self.host,
                device=worker.label,
                pid=worker.pid,
                state=worker.state,
                jobs=tuple(inputs.get(job_id, job_id) for job_id in worker.jobs),
                last_seen=worker.last_seen,
            )
            for worker in self.workers
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def restart_stopped(self) -> None:
        """Start again every worker that was lost (its loss already reported by `poll`)."""
        for worker in self.workers:
            if worker.state == "stopped":
                worker.start()

    def can_take(self, *, alone: bool = False) -> bool:
        """Whether some worker can take a job now (with `alone`: a worker holding no job at all)."""
        return any(worker.accepting and not (alone and worker.jobs) for worker in self.workers)

    def submit(self, spec: JobSpec, *, alone: bool = False) -> WorkerSupervisor:
        """Hand the job to an accepting worker, an idle one first (the caller checks `accepting`); with
        `alone`, to an idle worker that then takes nothing else until the job ends. Returns the worker."""
        accepting = [w for w in self.workers if w.accepting and not (alone and w.jobs)]
        if not accepting:
            raise RuntimeError("no worker can take a job now")
        worker = min(accepting, key=lambda worker: len(worker.jobs))
        worker.submit(spec, alone=alone)
        return worker

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
