"""`srd run`: wires watcher -> durable queue -> supervised worker -> outbox/errors, under systemd's eye."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from srd.daemon.folders import prepare_folders
from srd.daemon.queue import RetryQueue, WorkLock, claim_job, recover_jobs
from srd.daemon.settle import SettledFile, SettleTracker
from srd.daemon.systemd import Notifier
from srd.daemon.watch import InboxWatcher
from srd.errors import ConfigError, NotARegularFileError, SrdError, WatchError, WorkerError
from srd.jobs.outcome import complete_job, fail_job, plan_output, recover_job
from srd.jobs.record import Job
from srd.logs import configure_logging
from srd.settings import Config, load_config
from srd.status.status_file import StatusFile
from srd.workers.supervisor import WorkerEvent, WorkerSettings, WorkerSupervisor

LOOP_TICK = 0.1
MAX_OBSERVER_RESTARTS = 5  # within OBSERVER_RESTART_WINDOW seconds, before giving up
OBSERVER_RESTART_WINDOW = 300.0
MAX_WORKER_START_FAILURES = 3  # in a row, before the daemon exits and lets systemd decide
DEFAULT_WATCHDOG_PING = 5.0
INBOX_GRACE = 30.0  # seconds an inbox may be missing (deleted and re-created, remounted) before we give up
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_SETTINGS_ERRORS = frozenset({"ModelError", "UsageError"})

log = structlog.get_logger("srd.daemon")


class Daemon:
    """The main loop's state: what is settling, waiting, in flight, and how it all ended."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.notifier = Notifier()
        self.watcher = InboxWatcher(config.inbox, config.watch)
        self.tracker = SettleTracker(config.watch.settle_seconds)
        limits = config.limits
        self.supervisor = WorkerSupervisor(
            WorkerSettings.from_config(config),
            job_timeout=limits.job_timeout,
            startup_timeout=limits.startup_timeout,
            heartbeat_timeout=limits.heartbeat_timeout,
        )
        self.status_file = StatusFile(config.status_file, interval=0.5)
        self.retry = RetryQueue()  # claimed jobs to run (again) before taking new files
        self.ready: deque[SettledFile] = deque()
        self.ready_paths: set[Path] = set()
        self.in_flight: dict[str, Job] = {}
        self.held: Job | None = None  # claimed, waiting for the worker to be free to run it alone
        self.signals = 0
        self.state = "starting"
        self.done = self.failed = 0
        self.last_error: dict[str, Any] | None = None
        self.started_at = time.time()
        self.worker_start_failures = 0
        self.observer_restarts: deque[float] = deque()
        self.next_rescan = 0.0
        self.next_watchdog = 0.0
        self.last_status = ""
        self.inbox_missing_since: float | None = None

    @property
    def model_id(self) -> str:
        return str(self.supervisor.info.get("model_id", self.config.model.name))

    # -- signals -------------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals == 1:
            self.state = "stopping"

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    # -- the loop ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.supervisor.start()
        self.watcher.start()
        for job in recover_jobs(self.config.work):
            if self._still_to_run(job):
                log.info("job.requeued", input=job.rel_path, attempts=job.attempts, job_id=job.job_id)
                self.retry.append(job)
        self._rescan()

    def run(self) -> None:
        while self.signals == 0:
            self.step()
        self.shutdown()

    def step(self) -> None:
        self._nominate(self.watcher.drain())
        self._check_inbox_and_observer()
        if time.monotonic() >= self.next_rescan:
            self._rescan()
        for settled in self.tracker.collect_settled():
            self.ready.append(settled)
            self.ready_paths.add(settled.path)
        for event in self.supervisor.poll(LOOP_TICK):
            self._on_worker_event(event)
        if self.supervisor.state == "stopped" and self.signals == 0:
            self.supervisor.start()
        if self.supervisor.accepting and self.signals == 0:
            self._dispatch_next()
        self._report()

    def _nominate(self, paths: list[Path]) -> None:
        for path in paths:
            if path not in self.ready_paths:
                self.tracker.nominate(path)

    def _rescan(self) -> None:
        self._nominate(self.watcher.rescan())
        self.next_rescan = time.monotonic() + self.config.watch.rescan_interval

    def _check_inbox_and_observer(self) -> None:
        inbox = self.watcher.check_inbox()
        if inbox == "missing":
            # Deleted and about to be re-created, or a mount blinking: wait a while, then let systemd see it.
            now = time.monotonic()
            if self.inbox_missing_since is None:
                self.inbox_missing_since = now
                log.error("watch.inbox_missing", inbox=str(self.config.inbox), grace=INBOX_GRACE)
            if now - self.inbox_missing_since > INBOX_GRACE:
                raise WatchError(f"the inbox {self.config.inbox} disappeared (unmounted or deleted)")
            return
        self.inbox_missing_since = None
        if inbox == "replaced":
            # The observer watches the old folder's inode and would never see another event.
            log.error("watch.inbox_replaced", inbox=str(self.config.inbox), backend=self.watcher.backend)
            self.watcher.stop()
        if self.watcher.alive:
            return
        now = time.monotonic()
        while self.observer_restarts and now - self.observer_restarts[0] > OBSERVER_RESTART_WINDOW:
            self.observer_restarts.popleft()
        if len(self.observer_restarts) >= MAX_OBSERVER_RESTARTS:
            raise WatchError(f"the {self.watcher.backend} observer keeps dying; giving up")
        self.observer_restarts.append(now)
        log.error("watch.observer_died", backend=self.watcher.backend, restarts=len(self.observer_restarts))
        try:
            self.watcher.restart()
        except OSError as exc:
            log.error("watch.restart_failed", error=str(exc))
        self._rescan()  # events may have been lost while the observer was down

    # -- jobs ----------------------------------------------------------------------------------------------

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
        self.done += 1
        return False

    def _next_job(self) -> Job | None:
        while (retried := self.retry.pop_due()) is not None:
            if self._still_to_run(retried):
                return retried
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

    def _dispatch_next(self) -> None:
        job = self.held if self.held is not None else self._next_job()
        if job is None:
            return
        if self.in_flight and (job.solo or any(other.solo for other in self.in_flight.values())):
            # A job that was beside another when the worker died runs alone, so a second loss is its own.
            self.held = job
            return
        self.held = None
        if job.attempts >= self.config.limits.attempts:
            reason = f"gave up after {job.attempts} attempts (the worker crashed, hung or was killed)"
            self._fail(job, "AttemptsExhausted", reason)
            return
        plan = plan_output(job, self.config)
        try:
            job.attempts += 1
            job.save()
            plan.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            job.attempts -= 1
            self._defer(job, "job.prepare_failed", exc)
            return
        limits = self.config.limits
        spec = {
            "job_id": job.job_id,
            "input": str(job.input_path),
            "temp": str(plan.temp),
            "format": self.config.output.format,
            "quality": self.config.output.quality,
            "png_level": self.config.output.png_level,
            "png_strategy": self.config.output.png_strategy,
            "max_pixels": limits.max_pixels,
            "max_bytes": limits.max_bytes,
        }
        self.in_flight[job.job_id] = job
        self.supervisor.submit(job.job_id, spec)

    def _on_worker_event(self, event: WorkerEvent) -> None:
        jobs = [job for job_id in event.job_ids if (job := self.in_flight.pop(job_id, None)) is not None]
        job = jobs[0] if jobs else None
        if event.kind == "ready":
            self.worker_start_failures = 0
            log.info("worker.ready", **event.payload)
            if self.state == "starting":
                self._announce_ready()
        elif event.kind == "fatal":
            self._worker_cannot_start(event.payload)
        elif event.kind == "done" and job is not None:
            self._complete(job, event.payload)
        elif event.kind == "failed" and job is not None:
            self._failed(job, event.payload)
        elif event.kind in ("crashed", "timeout", "hung", "start_timeout"):
            self._worker_lost(event, jobs)

    def _worker_cannot_start(self, payload: dict[str, Any]) -> None:
        if payload["type"] in _SETTINGS_ERRORS:
            # An unknown model or an impossible tile is the config's fault: exit 78 so systemd stops retrying.
            raise ConfigError(f"At 'model'/'engine': {payload['message']}")
        log.error("worker.fatal", error=payload["message"], traceback=payload.get("traceback"))
        raise WorkerError(f"the worker cannot start: {payload['message']}", payload["exit_code"])

    def _complete(self, job: Job, result: dict[str, Any]) -> None:
        try:
            output = complete_job(job, self.config)
        except OSError as exc:
            self._defer(job, "job.publish_failed", exc)
            return
        self.retry.forget(job)
        self.done += 1
        log.info(
            "job",
            outcome="ok",
            input=job.rel_path,
            output=str(output),
            model=self.model_id,
            input_size=result["input_size"],
            output_size=result["output_size"],
            input_bytes=result["input_bytes"],
            output_bytes=result["output_bytes"],
            ms=result["ms"],
            attempts=job.attempts,
        )

    def _failed(self, job: Job, result: dict[str, Any]) -> None:
        # Messages name the file in work/; the user knows it by its inbox path.
        reason = str(result["message"]).replace(str(job.input_path), job.rel_path)
        if result.get("errno") in _NO_SPACE:
            job.attempts -= 1  # a full disk is not the file's fault; it stays claimed until space returns
            self._defer(job, "job.no_space", reason)
        elif result["permanent"] or job.attempts >= self.config.limits.attempts:
            self._fail(job, result["type"], reason, result.get("traceback"))
        else:
            log.warning("job.retry", input=job.rel_path, error=reason, attempts=job.attempts)
            self.retry.append(job)

    def _worker_lost(self, event: WorkerEvent, jobs: list[Job]) -> None:
        inputs = [job.rel_path for job in jobs]
        log.error("worker.lost", reason=event.kind, input=", ".join(inputs) or None, **event.payload)
        if len(jobs) > 1:
            # Two jobs were in flight (one encoding, one computing): either may be to blame. Neither loses
            # an attempt; both run again alone, where a loss is counted against the job that caused it.
            for job in jobs:
                job.attempts -= 1
                job.solo = True
                with contextlib.suppress(OSError):
                    job.save()
                log.warning("job.retry_alone", input=job.rel_path, attempts=job.attempts, job_id=job.job_id)
                self.retry.append(job)
            return
        lost = jobs[0] if jobs else None
        if lost is not None and lost.attempts >= self.config.limits.attempts:
            reason = (
                f"gave up after {lost.attempts} attempts; the last one ended with the worker {event.kind}"
            )
            self._fail(lost, "AttemptsExhausted", reason)
        elif lost is not None:
            self.retry.append(lost)
        elif event.payload.get("phase") == "starting":
            # Counted across restarts, reset by the next "ready": a worker that never starts stops the daemon.
            self.worker_start_failures += 1
            if self.worker_start_failures >= MAX_WORKER_START_FAILURES:
                raise WorkerError(f"the worker failed to start {self.worker_start_failures} times in a row")

    def _fail(self, job: Job, error_type: str, reason: str, trace: str | None = None) -> None:
        try:
            moved = fail_job(
                job, self.config, error_type=error_type, reason=reason, model_id=self.model_id, trace=trace
            )
        except OSError as exc:
            # Errors folder full or unwritable: the job stays claimed and is tried again later.
            self._defer(job, "job.quarantine_failed", exc, reason=reason)
            return
        self.retry.forget(job)
        self.failed += 1
        at = datetime.now(UTC).isoformat()
        self.last_error = {"input": job.rel_path, "reason": reason, "type": error_type, "at": at}
        log.warning(
            "job",
            outcome="error",
            input=job.rel_path,
            output=str(moved),
            model=self.model_id,
            error_type=error_type,
            reason=reason,
            attempts=job.attempts,
        )

    def _defer(self, job: Job, event: str, error: object, **details: object) -> None:
        with contextlib.suppress(OSError):
            job.save()
        delay = self.retry.defer(job)
        log.error(event, input=job.rel_path, error=str(error), retry_in=delay, job_id=job.job_id, **details)

    # -- reporting -----------------------------------------------------------------------------------------

    def _announce_ready(self) -> None:
        self.state = "running"
        info = self.supervisor.info
        log.info(
            "daemon.ready",
            observer=self.watcher.backend,
            device=info.get("device"),
            model=info.get("model_id"),
            inbox=str(self.config.inbox),
            outbox=str(self.config.outbox),
            requeued=len(self.retry),
        )
        self.notifier.ready(self._status_line())

    def _waiting(self) -> int:
        return len(self.ready) + len(self.retry) + (self.held is not None)

    def _status_line(self) -> str:
        waiting = self._waiting()
        busy = len(self.in_flight)
        return f"{self.state}: {waiting} waiting, {busy} in flight, {self.done} done, {self.failed} failed"

    def status_document(self) -> dict[str, Any]:
        in_flight = [
            {"input": job.rel_path, "job_id": job.job_id, "since": round(self.supervisor.job_started(job_id))}
            for job_id, job in self.in_flight.items()
        ]
        return {
            "state": self.state,
            "started_at": self.started_at,
            "queue": {"waiting": self._waiting(), "settling": len(self.tracker)},
            "in_flight": in_flight,
            "done": self.done,
            "failed": self.failed,
            "last_error": self.last_error,
            "model": self.model_id,
            "device": self.supervisor.info.get("device"),
            "observer": self.watcher.backend,
            "worker_pid": self.supervisor.pid,
        }

    def _report(self, *, force: bool = False) -> None:
        self.status_file.write(self.status_document(), force=force)
        line = self._status_line()
        if line != self.last_status:
            self.last_status = line
            self.notifier.status(line)
        now = time.monotonic()
        # Only a loop that is iterating with a live observer pings; a wedged loop lets systemd restart us.
        if now >= self.next_watchdog and self.watcher.alive:
            self.notifier.watchdog()
            self.next_watchdog = now + (self.notifier.watchdog_interval() or DEFAULT_WATCHDOG_PING)

    # -- stopping ------------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop taking jobs; let those in flight finish within stop_grace, else leave them in work/."""
        self.state = "stopping"
        self.notifier.stopping(self._status_line())
        log.info("daemon.stopping", in_flight=len(self.in_flight), grace=self.config.limits.stop_grace)
        self.watcher.stop()
        deadline = time.monotonic() + self.config.limits.stop_grace
        while self.supervisor.jobs and self.signals < 2 and time.monotonic() < deadline:
            for event in self.supervisor.poll(LOOP_TICK):
                self._on_worker_event(event)
            self._report()
        for job in self.in_flight.values():
            job.attempts -= 1  # interrupted on purpose, not a failed attempt
            job.save()
            log.info("job.left_in_work", input=job.rel_path, job_id=job.job_id)
        self.supervisor.stop()
        self.state = "stopped"
        self._report(force=True)
        log.info("daemon.stopped", done=self.done, failed=self.failed)


def run_daemon(config_path: Path) -> int:
    """`srd run --config FILE`: run in the foreground until SIGTERM/SIGINT; returns the exit code."""
    config = load_config(config_path)
    configure_logging(config.logging.format, config.logging.level)
    prepare_folders(config)
    lock = WorkLock(config.work)
    lock.acquire()
    daemon = Daemon(config)
    daemon.install_signal_handlers()
    try:
        daemon.start()
        daemon.run()
    except SrdError as exc:
        log.error("daemon.failed", error=str(exc), exit_code=exc.exit_code)
        daemon.notifier.stopping(f"failed: {exc}")
        raise
    finally:
        daemon.supervisor.kill()
        daemon.watcher.stop()
        lock.release()
    return 0
