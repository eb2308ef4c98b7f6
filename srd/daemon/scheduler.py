"""What runs next and how each job ends: retries first, then settled files; the solo rule; attempts.

An attempt is charged in one place, `_charge`, and only when a loss or failure is attributed to a job: the
job failed (for a reason that is not the machine's), its worker was lost while it ran alone, or the
daemon itself died while it ran (found at the next start by the record's `running` mark, written before
the job is handed over). A full disk, a stop, a failed preparation or a worker lost with two jobs in flight
charges nothing.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections import deque
from pathlib import Path

import structlog

from srd.daemon.dispatch import RemoteEnded
from srd.daemon.finished import finished_entry, record_remote_end
from srd.daemon.queue import RetryQueue, claim_job
from srd.daemon.settle import SettledFile, SettleTracker
from srd.errors import NotARegularFileError
from srd.jobs.messages import FailureKind, JobDone, JobFailed, JobSpec
from srd.jobs.outcome import complete_job, fail_job, plan_output, recover_job
from srd.jobs.record import Job
from srd.settings import Config
from srd.status.history import thumbnails_dir
from srd.status.stats import InFlightJob, JobProgress, Stats
from srd.workers.celery_app import THUMBNAILS_FOLDER
from srd.workers.faults import page_fault
from srd.workers.supervisor import WorkerLost

# A video job's finished segments (srd/video), inside its work/<job_id>/ folder: hidden, so never taken for
# the job's input; removed with the job.
VIDEO_WORK = ".video"

log = structlog.get_logger("srd.daemon")


class Scheduler:
    """The jobs' side of the daemon: settling and ready files, claimed jobs to retry, those in flight."""

    def __init__(self, config: Config, stats: Stats) -> None:
        self.config = config
        # queue.backend celery: the worker host that runs a job counts its attempts and publishes it
        # (srd/workers/remote_job.py); this side only claims, sends and notices the end, and never writes a
        # record it has sent (the worker host owns it then).
        self.remote = config.queue.backend == "celery"
        self.stats = stats
        self.tracker = SettleTracker(config.watch.settle_seconds)
        self.retry = RetryQueue()  # claimed jobs to run (again) before taking new files
        self.ready: deque[SettledFile] = deque()
        self.ready_paths: set[Path] = set()
        self.in_flight: dict[str, Job] = {}
        self.held: Job | None = None  # claimed, waiting for the workers to be free to run it alone
        self.ahead: Job | None = None  # a new file claimed while the workers were busy (claim_ahead)
        self.model_id = config.model.name  # until a worker reports the full id

    @property
    def waiting(self) -> int:
        return len(self.ready) + self.claimed

    @property
    def claimed(self) -> int:
        """Of the waiting jobs, those already claimed into work/ (to retry, held, claimed ahead): after a
        stop they are what is left in work/ for the next start."""
        return len(self.retry) + (self.held is not None) + (self.ahead is not None)

    def in_flight_jobs(
        self, started: dict[str, float], progress: dict[str, JobProgress | None] | None = None
    ) -> list[InFlightJob]:
        progress = progress or {}
        return [
            InFlightJob(job.rel_path, job_id, started[job_id], progress.get(job_id))
            for job_id, job in self.in_flight.items()
        ]

    # -- files ---------------------------------------------------------------------------------------------

    def nominate(self, paths: list[Path]) -> None:
        for path in paths:
            if path not in self.ready_paths:
                self.tracker.nominate(path)

    def collect_settled(self) -> None:
        for settled in self.tracker.collect_settled():
            self.ready.append(settled)
            self.ready_paths.add(settled.path)

    def recover(self, jobs: list[Job]) -> None:
        """Queue the jobs found in work/ at start; one the daemon died running is charged its attempt."""
        for job in jobs:
            if self.remote:
                log.info("job.resent", input=job.rel_path, job_id=job.job_id)
                self.retry.append(job)  # running, finished or not yet run: the worker host sorts it out
                continue
            if not self._still_to_run(job):
                continue
            if job.running:
                self._charge(job)
                with contextlib.suppress(OSError):
                    job.save()
            log.info("job.requeued", input=job.rel_path, attempts=job.attempts, job_id=job.job_id)
            self.retry.append(job)

    # -- what runs next ------------------------------------------------------------------------------------

    def claim_ahead(self) -> None:
        """While every worker is busy, claim the next new file now, so that the worker that asks for a job
        next gets it without waiting on the claim's renames and fsyncs (~6 ms a job on this project's VMs,
        in which the worker's network sat idle). A claimed job that has not run is what a retried one is:
        it stays in work/ at a stop or crash, and a start runs it uncharged. Local workers only (a worker
        host claims nothing: the watcher sends what it claims)."""
        if self.remote or self.ahead is not None or self.held is not None or not self.ready:
            return
        self.ahead = self._claim_settled()

    def next_spec(self) -> JobSpec | None:
        """The next job for a worker that can take one, marked running; None when nothing can run now."""
        job = self.held if self.held is not None else self._take_ahead() or self._next_job()
        if job is None:
            return None
        alone = job.solo or any(other.solo for other in self.in_flight.values())
        if self.in_flight and alone and not self.remote:  # remote: the worker host runs it alone
            # A job that was beside another when a worker died runs alone, so a second loss is its own.
            self.held = job
            return None
        self.held = None
        if self.remote:
            return self._remote_spec(job)
        if job.attempts >= self.config.limits.attempts:
            reason = f"gave up after {job.attempts} attempts (the worker crashed, hung or was killed)"
            self._fail(job, "AttemptsExhausted", reason)
            return None
        plan = plan_output(job, self.config)
        try:
            job.running = True  # durable before the worker has it: a daemon crash meanwhile is charged
            job.save()
            plan.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            job.running = False
            self._defer(job, "job.prepare_failed", exc)
            return None
        self.in_flight[job.job_id] = job
        self.stats.job_started(job.job_id, job.first_seen, first_attempt=job.attempts == 0 and not job.solo)
        limits, web = self.config.limits, self.config.web
        return JobSpec(
            job_id=job.job_id,
            input=job.input_path,
            temp=plan.temp,
            output=self.config.output,
            max_pixels=limits.max_pixels,
            max_bytes=limits.max_bytes,
            max_frames=limits.max_frames,
            thumbnails=thumbnails_dir(self.config.state_dir) if web.thumbnails and web.history else None,
            thumbnail_size=web.thumbnail_size,
            max_video_seconds=limits.max_video_seconds,
            work=job.directory / VIDEO_WORK,
        )

    def _remote_spec(self, job: Job) -> JobSpec:
        plan = plan_output(job, self.config)
        self.in_flight[job.job_id] = job
        self.stats.job_started(job.job_id, job.first_seen, first_attempt=job.attempts == 0 and not job.solo)
        limits = self.config.limits
        return JobSpec(
            job.job_id,
            job.input_path,
            plan.temp,
            self.config.output,
            limits.max_pixels,
            limits.max_bytes,
            limits.max_frames,
        )

    def on_remote_ended(self, ended: RemoteEnded) -> None:
        """A worker host has published the job or moved it to errors (and logged its `job` line): it gets
        the history entry and the thumbnails a local job gets."""
        job = self.in_flight.pop(ended.job_id, None)
        if job is None:
            return
        record_remote_end(job, self.stats, self.config.outbox, self.config.work / THUMBNAILS_FOLDER, ended)
        log.info(
            "job.ended",
            outcome=ended.outcome,
            input=job.rel_path,
            output=ended.output,
            device=ended.device,
            host=ended.host,
            error_type=ended.error_type,
            job_id=job.job_id,
        )

    def _still_to_run(self, job: Job) -> bool:
        """Whether a job from work/ must run. One already published before a crash or failure is
        finished instead (never redone); one whose recovery hits a file-system error is deferred."""
        try:
            output = recover_job(job, self.config)
        except OSError as exc:
            self._defer(job, "job.recover_failed", exc)
            return False
        if output is None:
            return True
        log.info("job.recovered", input=job.rel_path, output=str(output), job_id=job.job_id)
        self.stats.job_done()
        return False

    def _take_ahead(self) -> Job | None:
        job, self.ahead = self.ahead, None
        return job

    def _next_job(self) -> Job | None:
        while (retried := self.retry.pop_due()) is not None:
            if self._still_to_run(retried):
                return retried
        return self._claim_settled()

    def _claim_settled(self) -> Job | None:
        """The first ready file that is still as it settled, claimed into work/; None when none is."""
        while self.ready:
            settled = self.ready.popleft()
            self.ready_paths.discard(settled.path)
            if not settled.unchanged():
                self.tracker.nominate(settled.path)  # written to again since it settled
                continue
            try:
                job = claim_job(self.config.inbox, self.config.work, settled.path, settled.first_seen)
            except OSError as exc:
                # E.g. a file we may not rename: skip it (the next rescan retries) rather than stop the loop.
                log.warning("job.claim_failed", input=str(settled.path), error=str(exc))
                continue
            if job is None:
                log.info("job.claimed_elsewhere", input=str(settled.path))
                continue
            if not settled.is_regular or not stat.S_ISREG(os.lstat(job.input_path).st_mode):
                # Checked again after the claim: the entry may have been swapped for a symlink meanwhile.
                error = NotARegularFileError(
                    "not a regular file (symlink, FIFO or device); srd never reads through those"
                )
                self._fail(job, type(error).__name__, str(error))
                continue
            return job
        return None

    # -- how jobs end --------------------------------------------------------------------------------------

    def _finished_running(self, job_id: str) -> Job | None:
        job = self.in_flight.pop(job_id, None)
        if job is not None:
            job.running = False
        return job

    def _charge(self, job: Job) -> None:
        """The one place an attempt is counted: a loss or failure was attributed to this job."""
        job.attempts += 1
        job.running = False

    def on_done(self, result: JobDone) -> None:
        job = self._finished_running(result.job_id)
        if job is None:
            return
        try:
            output = complete_job(
                job, self.config, result.suffix, pages=result.pages, on_page=page_fault(job.input_path.name)
            )
        except OSError as exc:
            self._defer(job, "job.publish_failed", exc)
            return
        self.retry.forget(job)
        self.stats.job_done(finished_entry(job, self.stats, self.config.outbox, result, output))
        log.info(
            "job",
            outcome="ok",
            input=job.rel_path,
            output=str(output),
            model=self.model_id,
            device=result.device or None,
            input_size=result.input_size,
            output_size=result.output_size,
            frames=result.frames,
            input_bytes=result.input_bytes,
            output_bytes=result.output_bytes,
            ms=result.ms,
            attempts=job.attempts + 1,  # the charged ones and this one
        )

    def on_failed(self, result: JobFailed) -> None:
        job = self._finished_running(result.job_id)
        if job is None:
            return
        # Messages name the file in work/; the user knows it by its inbox path.
        reason = result.message.replace(str(job.input_path), job.rel_path)
        if result.kind is FailureKind.NO_SPACE:
            # A full disk is not the file's fault: it stays claimed until space returns, uncharged.
            self._defer(job, "job.no_space", reason)
            return
        self._charge(job)
        if result.kind is FailureKind.INPUT or job.attempts >= self.config.limits.attempts:
            self._fail(job, result.error_type, reason, result.traceback, device=result.device or None)
        else:
            log.warning("job.retry", input=job.rel_path, error=reason, attempts=job.attempts)
            self.stats.job_retried()
            with contextlib.suppress(OSError):
                job.save()
            self.retry.append(job)

    def on_lost(self, lost: WorkerLost) -> None:
        """A worker died with `lost.job_ids` in flight: charge the job that ran alone, not a pair."""
        jobs = [job for job_id in lost.job_ids if (job := self._finished_running(job_id)) is not None]
        inputs = [job.rel_path for job in jobs]
        log.error(
            "worker.lost",
            reason=lost.reason.value,
            input=", ".join(inputs) or None,
            phase=lost.phase,
            **lost.details,
        )
        if len(jobs) > 1:
            # Two jobs were in flight (one encoding, one computing): either may be to blame. Neither is
            # charged; both run again alone, where a loss is charged to the job that caused it.
            for job in jobs:
                job.solo = True
                with contextlib.suppress(OSError):
                    job.save()
                log.warning("job.retry_alone", input=job.rel_path, attempts=job.attempts, job_id=job.job_id)
                self.retry.append(job)
            return
        for job in jobs:
            self._charge(job)
            if job.attempts >= self.config.limits.attempts:
                reason = (
                    f"gave up after {job.attempts} attempts; the last one ended with the worker "
                    f"{lost.reason.value}"
                )
                self._fail(job, "AttemptsExhausted", reason)
            else:
                with contextlib.suppress(OSError):
                    job.save()
                self.retry.append(job)

    def leave_in_work(self) -> None:
        """At a stop: the jobs still in flight stay in work/ for the next start, uncharged."""
        for job_id in list(self.in_flight):
            job = self._finished_running(job_id)
            if job is not None and not self.remote:
                job.save()
                log.info("job.left_in_work", input=job.rel_path, job_id=job.job_id)

    def _fail(
        self, job: Job, error_type: str, reason: str, trace: str | None = None, *, device: str | None = None
    ) -> None:
        try:
            moved = fail_job(
                job, self.config, error_type=error_type, reason=reason, model_id=self.model_id, trace=trace
            )
        except OSError as exc:
            # Errors folder full or unwritable: the job stays claimed and is tried again later.
            self._defer(job, "job.quarantine_failed", exc, reason=reason)
            return
        self.retry.forget(job)
        self.stats.job_failed(job.rel_path, error_type, reason, job.job_id)
        log.warning(
            "job",
            outcome="error",
            input=job.rel_path,
            output=str(moved),
            model=self.model_id,
            device=device,
            error_type=error_type,
            reason=reason,
            attempts=job.attempts,
        )

    def _defer(self, job: Job, event: str, error: object, **details: object) -> None:
        with contextlib.suppress(OSError):
            job.save()
        delay = self.retry.defer(job)
        log.error(event, input=job.rel_path, error=str(error), retry_in=delay, job_id=job.job_id, **details)
