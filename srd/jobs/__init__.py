"""Jobs: the durable record in work/, the typed worker protocol, the runner, and how a job ends."""

from srd.jobs.messages import (
    Computed,
    FailureKind,
    Fatal,
    FatalKind,
    FromWorker,
    Heartbeat,
    JobDone,
    JobFailed,
    JobResult,
    JobSpec,
    Ready,
    Stop,
    ToWorker,
)
from srd.jobs.record import Job

__all__ = [
    "Computed",
    "FailureKind",
    "Fatal",
    "FatalKind",
    "FromWorker",
    "Heartbeat",
    "Job",
    "JobDone",
    "JobFailed",
    "JobResult",
    "JobSpec",
    "Ready",
    "Stop",
    "ToWorker",
]
