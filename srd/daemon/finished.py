"""How an ended job enters the status page's history: its FinishedJob entry (the same fields whether the
local worker or a worker host on the broker ran it) and, for a job a worker host ran, its thumbnails."""

from __future__ import annotations

import time
from pathlib import Path

from srd.daemon.dispatch import RemoteEnded
from srd.jobs.messages import JobDone
from srd.jobs.record import Job
from srd.status.history import FinishedJob, discard_thumbnails
from srd.status.stats import Stats


def published_name(output: Path, outbox: Path) -> str:
    """An output as the page names it: relative to the outbox."""
    try:
        return output.relative_to(outbox).as_posix()
    except ValueError:
        return output.name


def finished_entry(
    job: Job, stats: Stats, outbox: Path, ended: JobDone | RemoteEnded, output: Path | None
) -> FinishedJob:
    """The history entry of a done job: the local worker's JobDone or a worker host's RemoteEnded, and
    where its output was published."""
    handed = stats.handed_over(job.job_id)
    return FinishedJob(
        job_id=job.job_id,
        input=job.rel_path,
        outcome="done",
        finished_at=time.time(),
        queue_wait=None if handed is None else round(handed[1], 3),
        seconds=None if ended.ms is None else round(ended.ms / 1000, 3),
        input_size=ended.input_size,
        output_size=ended.output_size,
        input_bytes=ended.input_bytes,
        output_bytes=ended.output_bytes,
        output=None if output is None else published_name(output, outbox),
        device=ended.device or None,
        host=ended.host if isinstance(ended, RemoteEnded) else None,
    )


def record_remote_end(job: Job, stats: Stats, outbox: Path, thumbnails: Path, ended: RemoteEnded) -> None:
    """Count a worker host's job as done or failed; its thumbnails (work/.thumbnails/, written by that
    host) move beside the history, or are discarded when it failed or no history is kept."""
    history = stats.history
    if ended.outcome == "failed":
        discard_thumbnails(thumbnails, job.job_id)
        error_type, reason = ended.error_type or "Error", ended.reason or ""
        stats.job_failed(job.rel_path, error_type, reason, job.job_id, device=ended.device, host=ended.host)
        return
    if history is not None:
        history.adopt_thumbnails(thumbnails, job.job_id)
    else:
        discard_thumbnails(thumbnails, job.job_id)
    output = None if ended.output is None else Path(ended.output)
    stats.job_done(finished_entry(job, stats, outbox, ended, output))
