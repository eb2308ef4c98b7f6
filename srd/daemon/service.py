"""`srd run`: wires watcher -> scheduler (durable queue) -> worker pool -> outbox/errors, under systemd's eye.

The loop, the signals and the wiring live here; what runs next and how each job ends is
srd/daemon/scheduler.py; every report renders the one srd.status.Stats object.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from pathlib import Path
from types import FrameType

import structlog

from srd.daemon.dispatch import CeleryDispatcher, RemoteEnded
from srd.daemon.folders import prepare_folders
from srd.daemon.queue import WorkLock, recover_jobs
from srd.daemon.scheduler import Scheduler
from srd.daemon.systemd import Notifier
from srd.daemon.watch import InboxWatcher
from srd.errors import ConfigError, SrdError, WatchError, WorkerError
from srd.jobs.messages import Fatal, FatalKind, JobDone, JobFailed, Ready
from srd.logs import configure_logging
from srd.settings import Config, load_config
from srd.status.history import JobHistory
from srd.status.stats import JobProgress, Stats
from srd.status.status_file import StatusFile
from srd.workers.placement import plan_placements
from srd.workers.pool import WorkerPool
from srd.workers.process import WorkerSettings
from srd.workers.supervisor import WorkerEvent, WorkerLost

LOOP_TICK = 0.1
MAX_OBSERVER_RESTARTS = 5  # within OBSERVER_RESTART_WINDOW seconds, before giving up
OBSERVER_RESTART_WINDOW = 300.0
MAX_WORKER_START_FAILURES = 3  # in a row, before the daemon exits and lets systemd decide
DEFAULT_WATCHDOG_PING = 5.0
INBOX_GRACE = 30.0  # seconds an inbox may be missing (deleted and re-created, remounted) before we give up

log = structlog.get_logger("srd.daemon")


class Daemon:
    """The main loop: watch the inbox, feed the workers from the scheduler, report, stop cleanly."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.notifier = Notifier()
        self.watcher = InboxWatcher(config.inbox, config.watch)
        self.stats = Stats(observer=self.watcher.backend, model=config.model.name)
        self.stats.history = JobHistory(config.state_dir, config.web.history)
        self.scheduler = Scheduler(config, self.stats)
        limits = config.limits
        self.workers: WorkerPool | CeleryDispatcher
        if config.queue.backend == "celery":
            self.workers = CeleryDispatcher(config)
        else:
            self.workers = WorkerPool(
                WorkerSettings.from_config(config),
                placements=plan_placements(config.engine),
                job_timeout=limits.job_timeout,
                startup_timeout=limits.startup_timeout,
                heartbeat_timeout=limits.heartbeat_timeout,
            )
        self.status_file = StatusFile(config.status_file, interval=0.5, metrics_file=config.metrics_file)
        self.signals = 0
        self.last_signal: str | None = None
        self.worker_start_failures = 0
        self.observer_restarts: deque[float] = deque()
        self.next_rescan = 0.0
        self.next_watchdog = 0.0
        self.last_status = ""
        self.inbox_missing_since: float | None = None

    # -- signals -------------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.last_signal = signal.Signals(signum).name
        if self.signals == 1:
            self.stats.state = "stopping"

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # SIGHUP (a closed terminal, or `systemctl kill -s HUP`) stops cleanly like SIGTERM, with a log
        # line, rather than killing the daemon silently; srd does not reload its config (restart it).
        signal.signal(signal.SIGHUP, self._on_signal)

    # -- the loop ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.workers.start()
        self.watcher.start()
        self.scheduler.recover(recover_jobs(self.config.work))
        self._rescan()

    def run(self) -> None:
        while self.signals == 0:
            self.step()
        self.shutdown()

    def step(self) -> None:
        self.scheduler.nominate(self.watcher.drain())
        self.check_inbox_and_observer()
        if time.monotonic() >= self.next_rescan:
            self._rescan()
        self.scheduler.collect_settled()
        for event in self.workers.poll(LOOP_TICK):
            self._on_worker_event(event)
        if self.signals == 0:
            self.workers.restart_stopped()
            while self.workers.accepting and (spec := self.scheduler.next_spec()) is not None:
                self.workers.submit(spec)
            if not self.workers.accepting:
                self.scheduler.claim_ahead()
        self._report()

    def _rescan(self) -> None:
        self.scheduler.nominate(self.watcher.rescan())
        self.next_rescan = time.monotonic() + self.config.watch.rescan_interval

    def check_inbox_and_observer(self) -> None:
        """Restart a dead observer (and rescan), follow a re-created inbox, give up on one gone too long."""
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

    # -- worker events -------------------------------------------------------------------------------------

    def _on_worker_event(self, event: WorkerEvent | RemoteEnded) -> None:
        if isinstance(event, RemoteEnded):
            self.scheduler.on_remote_ended(event)
        elif isinstance(event, Ready):
            self.worker_start_failures = 0
            log.info(
                "worker.ready", model_id=event.model_id, device=event.device, pid=event.pid, conv=event.conv
            )
            self.scheduler.model_id = event.model_id
            self.stats.model, self.stats.device = event.model_id, event.device
            if self.stats.state == "starting":
                self._announce_ready(event)
        elif isinstance(event, Fatal):
            self._worker_cannot_start(event)
        elif isinstance(event, JobDone):
            self.scheduler.on_done(event)
        elif isinstance(event, JobFailed):
            self.scheduler.on_failed(event)
        else:
            self._worker_lost(event)

    def _worker_cannot_start(self, fatal: Fatal) -> None:
        if fatal.kind is FatalKind.SETTINGS:
            # An unknown model or an impossible tile is the config's fault: exit 78 so systemd stops retrying.
            raise ConfigError(f"At 'model'/'engine': {fatal.message}")
        log.error("worker.fatal", error=fatal.message, traceback=fatal.traceback)
        raise WorkerError(f"the worker cannot start: {fatal.message}", fatal.exit_code)

    def _worker_lost(self, lost: WorkerLost) -> None:
        self.stats.worker_lost(lost.reason.value)
        self.scheduler.on_lost(lost)
        if not lost.job_ids and lost.phase == "starting":
            # Counted across restarts, reset by the next Ready: a worker that never starts stops the daemon.
            self.worker_start_failures += 1
            if self.worker_start_failures >= MAX_WORKER_START_FAILURES:
                raise WorkerError(f"the worker failed to start {self.worker_start_failures} times in a row")

    # -- reporting -----------------------------------------------------------------------------------------

    def _announce_ready(self, ready: Ready) -> None:
        self.stats.state = "running"
        self.stats.ready = True
        log.info(
            "daemon.ready",
            observer=self.watcher.backend,
            device=ready.device,
            model=ready.model_id,
            conv=ready.conv,
            inbox=str(self.config.inbox),
            outbox=str(self.config.outbox),
            requeued=len(self.scheduler.retry),
        )
        self.notifier.ready(self.refresh_stats().status_line())

    def refresh_stats(self) -> Stats:
        """Bring the queue depths and the in-flight list up to date, and return the one Stats object."""
        stats, scheduler = self.stats, self.scheduler
        stats.waiting, stats.settling = scheduler.waiting, len(scheduler.tracker)
        stats.claimed = scheduler.claimed
        started = {job_id: self.workers.job_started(job_id) for job_id in scheduler.in_flight}
        progress = {job_id: self._progress_of(job_id) for job_id in scheduler.in_flight}
        stats.in_flight = scheduler.in_flight_jobs(started, progress)
        stats.observer = self.watcher.backend
        pids = self.workers.pids
        stats.worker_pid = pids[0] if pids else None
        inputs = {job_id: job.rel_path for job_id, job in scheduler.in_flight.items()}
        stats.workers = self.workers.statuses(inputs)
        return stats

    def _progress_of(self, job_id: str) -> JobProgress | None:
        report = self.workers.job_progress(job_id)
        return None if report is None else JobProgress(report.done, report.total, report.unit)

    def _report(self, *, force: bool = False) -> None:
        stats = self.refresh_stats()
        self.status_file.write(stats.document(), force=force)
        line = stats.status_line()
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
        self.stats.state = "stopping"
        self.notifier.stopping(self.refresh_stats().status_line())
        in_flight = len(self.scheduler.in_flight)
        log.info(
            "daemon.stopping",
            signal=self.last_signal,
            in_flight=in_flight,
            grace=self.config.limits.stop_grace,
        )
        self.watcher.stop()
        deadline = time.monotonic() + self.config.limits.stop_grace
        while self.workers.busy and self.signals < 2 and time.monotonic() < deadline:
            for event in self.workers.poll(LOOP_TICK):
                self._on_worker_event(event)
            self._report()
        self.scheduler.leave_in_work()
        self.workers.stop()
        self.stats.state = "stopped"
        self._report(force=True)
        log.info("daemon.stopped", done=self.stats.done, failed=self.stats.failed)


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
        daemon.workers.kill()
        daemon.watcher.stop()
        lock.release()
    return 0
