"""The Celery application both sides share: the watcher (`srd run`, queue.backend celery) sends one task
per claimed job, `srd worker` consumes them. Celery is an optional extra: `pip install 'srd[celery]'`.

Delivery is at least once, so the settings are those for long jobs that must never be lost:
- acks_late: a task is acknowledged when it has ended, not when it is received, so a worker host that
  dies mid-job leaves it unacknowledged and the broker hands it to another;
- prefetch 1: a host reserves no job it cannot start now (another host could run it meanwhile);
- reject_on_worker_lost: a task whose pool child died is requeued, not acknowledged as failed;
- the visibility timeout (Redis) exceeds limits.job_timeout x limits.attempts, so a job still running
  is never handed to a second host, and the sweep that restores abandoned tasks runs every few seconds;
- JSON only: a task carries a job id, nothing a broker user could make the worker unpickle.
"""

from __future__ import annotations

from typing import Any

from srd.errors import ConfigError
from srd.settings import Config

TASK_NAME = "srd.run_job"
WORKERS_FOLDER = ".workers"  # work/.workers/<host>-<pid>.json: each `srd worker` host's status
# work/.thumbnails/<job_id>.{before,after}.webp: a remote job's thumbnails, written by the worker process on
# its host, until the watcher moves them beside its job history (srd/status/history.py)
THUMBNAILS_FOLDER = ".thumbnails"


def make_app(config: Config) -> Any:
    """A Celery app for this config's broker and queue (Any: Celery ships no type information)."""
    try:
        from celery import Celery
    except ImportError:
        raise ConfigError(
            "queue.backend: celery needs Celery and its Redis client: pip install 'srd[celery]'"
        ) from None
    broker = config.queue.broker
    assert broker is not None  # the schema requires it with backend celery
    backend = broker if broker.startswith(("redis://", "rediss://")) else "rpc://"
    visibility = config.visibility_timeout
    transport = {
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1, min(10, int(visibility // 4))),
        "unacked_restore_throttle": 1,
    }
    app = Celery("srd", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=config.queue.name,
        task_routes={TASK_NAME: {"queue": config.queue.name}},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker restart is waited out, not fatal
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # srd's own JSON lines go to stdout as they are
        result_expires=24 * 3600,
        enable_utc=True,
    )
    return app
