"""One claimed job run by id on a worker host (`srd worker`): locked, attempts counted in its record, and
published idempotently, so a task the broker delivers twice never makes a second output.

The watcher claimed the job (work/<job_id>/ with its record and input, on the folder every host mounts);
the worker host that runs it also publishes it, as the local daemon would: temp -> outbox, then the
original archived and work/<job_id>/ removed. The rules are those of srd/daemon/scheduler.py, with the
attempts kept in the job record, not in a process:

- a delivery takes an exclusive lock on work/<job_id>/.lock; a second delivery while it runs finds the
  lock held and ends at once (the first one finishes the job);
- a delivery that finds the job already published (its record names the output, or the temporary output
  is linked) only finishes it: no second output, no `-1` name;
- one that finds the record marked `running` follows a delivery whose host died running it: that is
  charged an attempt, so a file that kills every host it reaches still ends in errors after
  limits.attempts;
- the supervised worker crashing, hanging or failing on the job is charged and retried on this host.

What the watcher's status page needs of the job comes back with it: the outcome carries the job line's
sizes, bytes, seconds, device and host (for the job history), the device worker writes the before/after
thumbnails into work/.thumbnails/ (for the watcher to move beside its history), and the host writes the
job's progress into its work folder while it runs (srd/workers/celery.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import structlog

from srd.jobs.messages import FailureKind, JobDone, JobResult, JobSpec
from srd.jobs.outcome import complete_job, fail_job, plan_output, recover_job
from srd.jobs.progress_file import clear_progress
from srd.jobs.record import Job, load_job
from srd.settings import Config
from srd.workers.celery_app import THUMBNAILS_FOLDER
from srd.workers.faults import inject_test_fault, page_fault
from srd.workers.supervisor import WorkerLost

log = structlog.get_logger("srd.worker")

LOCK_NAME = ".lock"
# Runs a job on some device worker: (spec, inbox path, alone) -> (result, the device's label, how many jobs
# were in flight on that worker when it was lost, this one included).
RunOnDevice = Callable[..., tuple[JobResult | WorkerLost, str, int]]


@dataclass(frozen=True)
class RemoteOutcome:
    """How a delivery ended, as the Celery task returns it (JSON) to the watcher."""

    outcome: str  # done, failed, gone (finished before), busy (another delivery holds it), deferred
    output: str | None = None
    error_type: str | None = None
    reason: str | None = None
    device: str | None = None
    host: str | None = None  # the worker host that ran it
    # What the job line says of a job done (None when the job was only finished after a redelivery):
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        """The task's JSON result (tuples become lists)."""
        return asdict(self)


def thumbnails_folder(config: Config) -> Path | None:
    """Where device workers write remote jobs' thumbnails (None: the page keeps none)."""
    web = config.web
    return config.work / THUMBNAILS_FOLDER if web.thumbnails and web.history else None


class RetryLaterError(Exception):
    """The machine, not the file, is at fault (a full disk, an unwritable folder): deliver the job later."""


@contextlib.contextmanager
def job_lock(directory: Path) -> Iterator[bool]:
    """Hold work/<job_id>/.lock; yields False when another delivery holds it or the job folder is gone."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except (FileNotFoundError, NotADirectoryError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def run_claimed_job(config: Config, job_id: str, run: RunOnDevice, *, model_id: str) -> RemoteOutcome:
    """Run and publish the claimed job `job_id` (or finish it, if an earlier delivery published it)."""
    directory = config.work / job_id
    with job_lock(directory) as held:
        if not held:
            return RemoteOutcome("busy" if directory.is_dir() else "gone")
        job = load_job(directory)
        if job is None:
            return RemoteOutcome("gone")
        try:
            return replace(_run_locked(config, job, run, model_id), host=socket.gethostname())
        except OSError as exc:
            with contextlib.suppress(OSError):
                job.save()
            log.error("job.deferred", input=job.rel_path, error=str(exc), job_id=job.job_id)
            raise RetryLaterError(str(exc)) from exc


def _run_locked(config: Config, job: Job, run: RunOnDevice, model_id: str) -> RemoteOutcome:
    output = recover_job(job, config)
    if output is not None:
        log.info("job.recovered", input=job.rel_path, output=str(output), job_id=job.job_id)
        return RemoteOutcome("done", output=str(output))
    last_loss = "its worker host was lost"
    if job.running:
        job.attempts += 1  # the delivery before this one died running it
        job.running = False
        log.warning("job.redelivered", input=job.rel_path, attempts=job.attempts, job_id=job.job_id)
    limits = config.limits
    while True:
        if job.attempts >= limits.attempts:
            reason = f"gave up after {job.attempts} attempts; the last one ended with {last_loss}"
            return _fail(config, job, "AttemptsExhausted", reason, None, model_id, device=None)
        plan = plan_output(job, config)
        job.running = True  # durable before the job runs: a host dying meanwhile is charged at redelivery
        job.save()
        plan.directory.mkdir(parents=True, exist_ok=True)
        spec = JobSpec(
            job.job_id,
            job.input_path,
            plan.temp,
            config.output,
            limits.max_pixels,
            limits.max_bytes,
            limits.max_frames,
            thumbnails=thumbnails_folder(config),
            thumbnail_size=config.web.thumbnail_size,
        )
        clear_progress(job.directory)  # an earlier attempt's, perhaps on another host
        result, device, beside = run(spec, job.rel_path, alone=job.solo)
        job.running = False
        if isinstance(result, JobDone):
            return _publish(config, job, result, device, model_id)
        if isinstance(result, WorkerLost):
            last_loss = f"the worker {result.reason.value} on {device}"
            log.error("worker.lost", reason=result.reason.value, input=job.rel_path, device=device)
            if beside > 1:
                # Another job was in flight on that worker: either may be to blame. Neither is charged;
                # this one runs again alone, where a loss is its own (srd/daemon/scheduler.py's rule).
                job.solo = True
                log.warning("job.retry_alone", input=job.rel_path, attempts=job.attempts, job_id=job.job_id)
                job.save()
                continue
            job.attempts += 1
        else:
            job.attempts += 1
            reason = result.message.replace(str(job.input_path), job.rel_path)
            if result.kind is FailureKind.NO_SPACE:
                job.attempts -= 1  # a full disk is not the file's fault
                job.save()
                raise OSError(errno.ENOSPC, reason)
            if result.kind is FailureKind.INPUT or job.attempts >= limits.attempts:
                return _fail(
                    config, job, result.error_type, reason, result.traceback, model_id, device=device
                )
            last_loss = f"{result.error_type}: {reason}"
        log.warning(
            "job.retry", input=job.rel_path, error=last_loss, attempts=job.attempts, job_id=job.job_id
        )
        job.save()


def _publish(config: Config, job: Job, result: JobDone, device: str, model_id: str) -> RemoteOutcome:
    name = Path(job.rel_path).name
    output = complete_job(
        job,
        config,
        result.suffix,
        on_published=lambda: inject_test_fault(name, "publish"),
        pages=result.pages,
        on_page=page_fault(name),
    )
    log.info(
        "job",
        outcome="ok",
        input=job.rel_path,
        output=str(output),
        model=model_id,
        device=device,
        input_size=result.input_size,
        output_size=result.output_size,
        input_bytes=result.input_bytes,
        output_bytes=result.output_bytes,
        frames=result.frames,
        ms=result.ms,
        attempts=job.attempts + 1,
        job_id=job.job_id,
    )
    return RemoteOutcome(
        "done",
        output=str(output),
        device=device,
        input_size=result.input_size,
        output_size=result.output_size,
        input_bytes=result.input_bytes,
        output_bytes=result.output_bytes,
        ms=result.ms,
    )


def _fail(
    config: Config,
    job: Job,
    error_type: str,
    reason: str,
    trace: str | None,
    model_id: str,
    *,
    device: str | None,
) -> RemoteOutcome:
    moved = fail_job(job, config, error_type=error_type, reason=reason, model_id=model_id, trace=trace)
    log.warning(
        "job",
        outcome="error",
        input=job.rel_path,
        output=str(moved),
        model=model_id,
        device=device,
        error_type=error_type,
        reason=reason,
        attempts=job.attempts,
        job_id=job.job_id,
    )
    return RemoteOutcome("failed", output=str(moved), error_type=error_type, reason=reason, device=device)
