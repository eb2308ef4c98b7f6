"""The workers that run jobs: a WorkerPool of supervised, spawned processes (the only place JAX runs)."""

from srd.workers.pool import WorkerPool
from srd.workers.process import WorkerSettings
from srd.workers.supervisor import LossReason, WorkerEvent, WorkerLost, WorkerSupervisor

__all__ = ["LossReason", "WorkerEvent", "WorkerLost", "WorkerPool", "WorkerSettings", "WorkerSupervisor"]
