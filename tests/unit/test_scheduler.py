"""Tests for srd.daemon.Scheduler without a worker: which job runs next and when an attempt is charged."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import pytest

from srd.daemon import Scheduler
from srd.daemon.folders import prepare_folders
from srd.daemon.queue import recover_jobs
from srd.jobs import FailureKind, JobFailed, JobSpec
from srd.settings import parse_config
from srd.status import Stats
from srd.workers import LossReason, WorkerLost


@pytest.fixture
def scheduler(tmp_path: Path) -> Scheduler:
    document = {
        "inbox": "in",
        "outbox": "out",
        "errors": "err",
        "work": "work",
        "archive": "delete",
        "watch": {"settle_seconds": 0},
        "limits": {"attempts": 2},
    }
    config = parse_config(document, tmp_path)
    prepare_folders(config)
    return Scheduler(config, Stats())


def drop(scheduler: Scheduler, *names: str) -> None:
    """Put files in the inbox and let them settle (two checks of an unchanged file at settle_seconds 0)."""
    for name in names:
        path = scheduler.config.inbox / name
        path.write_bytes(b"x")
        scheduler.nominate([path])
    scheduler.collect_settled()
    scheduler.collect_settled()


def record(scheduler: Scheduler, spec: JobSpec) -> dict[str, object]:
    document = json.loads((scheduler.config.work / spec.job_id / "job.json").read_text())
    assert isinstance(document, dict)
    return document


def take(scheduler: Scheduler) -> JobSpec:
    spec = scheduler.next_spec()
    assert spec is not None
    return spec


def test_a_handed_over_job_is_marked_running_not_charged(scheduler: Scheduler) -> None:
    """next_spec claims the file, records `running` durably, and charges nothing yet."""
    drop(scheduler, "a.png")
    spec = take(scheduler)
    assert spec.input.name == "a.png" and spec.output == scheduler.config.output
    assert record(scheduler, spec)["running"] is True
    assert record(scheduler, spec)["attempts"] == 0


def test_a_job_the_daemon_died_running_is_charged_at_the_next_start(scheduler: Scheduler) -> None:
    """A record still marked running at start means the daemon died with it: one attempt is charged."""
    drop(scheduler, "a.png")
    spec = take(scheduler)
    restarted = Scheduler(scheduler.config, Stats())
    restarted.recover(recover_jobs(scheduler.config.work))
    assert record(restarted, spec)["attempts"] == 1 and record(restarted, spec)["running"] is False
    assert take(restarted).job_id == spec.job_id


def test_a_file_claimed_ahead_runs_next_and_a_crash_before_it_ran_charges_nothing(
    scheduler: Scheduler,
) -> None:
    """claim_ahead moves the next settled file into work/ (not running) and next_spec hands it over first;
    a daemon that dies before handing it over leaves it to the next start, which runs it uncharged."""
    drop(scheduler, "a.png", "b.png")
    first = take(scheduler)
    scheduler.claim_ahead()
    assert not (scheduler.config.inbox / "b.png").exists()
    assert scheduler.ahead is not None and scheduler.waiting == 1
    ahead = scheduler.ahead
    scheduler.claim_ahead()  # one at a time
    assert scheduler.ahead is ahead and not scheduler.ready
    assert json.loads((ahead.directory / "job.json").read_text())["running"] is False
    restarted = Scheduler(scheduler.config, Stats())
    restarted.recover(recover_jobs(scheduler.config.work))
    assert record(restarted, first)["attempts"] == 1  # `a` was handed over: charged
    assert json.loads((ahead.directory / "job.json").read_text())["attempts"] == 0
    second = take(scheduler)
    assert second.job_id == ahead.job_id and second.input.name == "b.png"
    assert scheduler.ahead is None and scheduler.waiting == 0


def test_a_full_disk_charges_nothing_and_a_transient_failure_one_attempt(scheduler: Scheduler) -> None:
    """NO_SPACE defers the job uncharged; TRANSIENT charges an attempt and retries it at once."""
    drop(scheduler, "a.png")
    spec = take(scheduler)
    full = OSError(errno.ENOSPC, "No space left on device")
    scheduler.on_failed(JobFailed.from_exception(spec.job_id, full))
    assert record(scheduler, spec)["attempts"] == 0 and len(scheduler.retry) == 1
    assert JobFailed.from_exception(spec.job_id, full).kind is FailureKind.NO_SPACE
    later = time.monotonic() + 1000
    scheduler.retry.clock = lambda: later  # as if the deferral's delay had passed
    retried = take(scheduler)
    assert retried.job_id == spec.job_id
    scheduler.on_failed(JobFailed.from_exception(retried.job_id, RuntimeError("flaky")))
    assert record(scheduler, retried)["attempts"] == 1 and record(scheduler, retried)["running"] is False


def test_a_worker_lost_with_two_jobs_charges_neither_and_runs_them_alone(scheduler: Scheduler) -> None:
    """Two in flight at a loss: neither is charged, both turn solo, and a solo job waits to run alone."""
    drop(scheduler, "a.png", "b.png")
    first, second = take(scheduler), take(scheduler)
    scheduler.on_lost(WorkerLost(LossReason.CRASHED, "busy", (first.job_id, second.job_id), {"exitcode": -9}))
    for spec in (first, second):
        assert record(scheduler, spec)["attempts"] == 0 and record(scheduler, spec)["solo"] is True
    alone = take(scheduler)
    assert scheduler.next_spec() is None and scheduler.held is not None  # held until `alone` ends
    scheduler.on_lost(WorkerLost(LossReason.CRASHED, "busy", (alone.job_id,), {"exitcode": -9}))
    assert record(scheduler, alone)["attempts"] == 1


def test_a_loss_alone_past_the_attempts_sends_the_job_to_errors(scheduler: Scheduler) -> None:
    """The job lost alone `limits.attempts` times goes to errors as AttemptsExhausted, counted in Stats."""
    drop(scheduler, "a.png")
    for _ in range(2):
        spec = take(scheduler)
        scheduler.on_lost(WorkerLost(LossReason.HUNG, "busy", (spec.job_id,), {"seconds": 60}))
    report = json.loads((scheduler.config.errors / "a.png.error.json").read_text())
    assert report["error_type"] == "AttemptsExhausted" and report["attempts"] == 2
    assert scheduler.stats.failed == 1 and scheduler.stats.last_error is not None
    assert scheduler.stats.status_line() == "starting: 0 waiting, 0 in flight, 0 done, 1 failed"
