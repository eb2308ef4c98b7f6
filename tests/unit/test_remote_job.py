"""A job run by id on a worker host (srd/workers/remote_job.py): locked, counted in its record, idempotent.

The device worker is stood in for by a function that writes the temporary output (or reports a loss),
so these run without JAX; tests/e2e/test_celery.py runs the real processes and broker.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from support.daemon import png_bytes

from srd.daemon.queue import claim_job
from srd.jobs.fsops import write_file_synced
from srd.jobs.messages import JobDone, JobResult, JobSpec, Progress
from srd.jobs.progress_file import read_progress, write_progress
from srd.jobs.record import load_job, new_job_id
from srd.settings import Config, parse_config
from srd.status.history import THUMBNAIL_SIDES, JobHistory, thumbnail_path, thumbnails_dir
from srd.workers.remote_job import job_lock, run_claimed_job
from srd.workers.supervisor import LossReason, WorkerLost

Result = tuple[JobResult | WorkerLost, str, int]


def make_config(root: Path, attempts: int = 2) -> Config:
    for name in ("inbox", "outbox", "errors", "work", "archive"):
        (root / name).mkdir()
    raw = {"inbox": "inbox", "outbox": "outbox", "errors": "errors", "work": "work", "archive": "archive"}
    broker = {"backend": "celery", "broker": "redis://127.0.0.1:1/0"}
    return parse_config({**raw, "queue": broker, "limits": {"attempts": attempts}}, root)


def claimed(config: Config, name: str = "a.png") -> str:
    path = config.inbox / name
    path.write_bytes(png_bytes())
    job = claim_job(config.inbox, config.work, path, time.time())
    assert job is not None
    return job.job_id


def writes_output(spec: JobSpec, rel_path: str, *, alone: bool) -> Result:
    write_file_synced(spec.temp, b"upscaled")
    return JobDone(spec.job_id, (1, 1), (2, 2), 1, 8, 1.0), "cpu:0", 1


def crashes(spec: JobSpec, rel_path: str, *, alone: bool) -> Result:
    return WorkerLost(LossReason.CRASHED, "busy", (spec.job_id,)), "cpu:0", 1


def must_not_run(spec: JobSpec, rel_path: str, *, alone: bool) -> Result:
    raise AssertionError("the job ran again")


def test_a_job_is_published_once_and_a_second_delivery_finds_it_gone(tmp_path: Path) -> None:
    """The first delivery publishes and archives; a redelivery of the same id does nothing."""
    config = make_config(tmp_path)
    job_id = claimed(config)
    assert run_claimed_job(config, job_id, writes_output, model_id="m").outcome == "done"
    assert run_claimed_job(config, job_id, must_not_run, model_id="m").outcome == "gone"
    assert sorted(p.name for p in config.outbox.iterdir()) == ["a.png"]
    assert (config.archive / "a.png").exists()


def test_a_job_published_before_its_host_died_is_only_finished(tmp_path: Path) -> None:
    """Output linked and recorded, original not yet archived: the redelivery archives it, no `-1` name."""
    config = make_config(tmp_path)
    job_id = claimed(config)

    def die_after_publishing() -> None:
        raise SystemExit("the host died")

    from srd.jobs.outcome import complete_job, plan_output

    job = load_job(config.work / job_id)
    assert job is not None
    write_file_synced(plan_output(job, config).temp, b"upscaled")
    with pytest.raises(SystemExit):
        complete_job(job, config, on_published=die_after_publishing)
    outcome = run_claimed_job(config, job_id, must_not_run, model_id="m")
    assert outcome.outcome == "done"
    assert sorted(p.name for p in config.outbox.iterdir()) == ["a.png"]
    assert (config.archive / "a.png").exists()


def test_a_delivery_while_another_holds_the_job_ends_at_once(tmp_path: Path) -> None:
    """A second delivery of a running job finds its lock held and leaves the job alone."""
    config = make_config(tmp_path)
    job_id = claimed(config)
    with job_lock(config.work / job_id) as held:
        assert held
        assert run_claimed_job(config, job_id, must_not_run, model_id="m").outcome == "busy"
    assert load_job(config.work / job_id) is not None


def test_a_host_that_died_running_the_job_is_charged_and_the_attempts_end_in_errors(tmp_path: Path) -> None:
    """A record left `running` is charged at redelivery; crashes after that exhaust limits.attempts."""
    config = make_config(tmp_path, attempts=2)
    job_id = claimed(config)
    job = load_job(config.work / job_id)
    assert job is not None
    job.running = True  # as a host that died mid-job leaves it
    job.save()
    outcome = run_claimed_job(config, job_id, crashes, model_id="m")
    assert (outcome.outcome, outcome.error_type) == ("failed", "AttemptsExhausted")
    assert "crashed" in (outcome.reason or "")
    assert (config.errors / "a.png").exists()
    assert list(config.outbox.iterdir()) == []


def test_a_done_job_carries_its_figures_host_and_thumbnail_folder(tmp_path: Path) -> None:
    """The outcome of a job done holds the job line's sizes, bytes, ms, device and host (for the watcher's
    history), and the device worker is told to write thumbnails into work/.thumbnails/."""
    config = make_config(tmp_path)
    job_id = claimed(config)
    specs: list[JobSpec] = []

    def records_spec(spec: JobSpec, rel_path: str, *, alone: bool) -> Result:
        specs.append(spec)
        return writes_output(spec, rel_path, alone=alone)

    outcome = run_claimed_job(config, job_id, records_spec, model_id="m").as_dict()
    assert outcome["outcome"] == "done" and outcome["device"] == "cpu:0"
    assert (outcome["input_size"], outcome["output_size"], outcome["output_bytes"]) == ((1, 1), (2, 2), 8)
    assert outcome["ms"] == 1.0 and outcome["host"] == socket.gethostname()
    assert specs[0].thumbnails == config.work / ".thumbnails"


def test_progress_reports_round_trip_and_an_earlier_attempts_is_cleared(tmp_path: Path) -> None:
    """A progress report is read back whole for its own job only, and a new attempt starts without one."""
    config = make_config(tmp_path)
    job_id = claimed(config)
    directory = config.work / job_id
    write_progress(directory, Progress(job_id, 2, 5, "frames"))
    assert read_progress(directory, job_id) == Progress(job_id, 2, 5, "frames")
    assert read_progress(directory, "other-id") is None
    seen: list[Progress | None] = []

    def looks(spec: JobSpec, rel_path: str, *, alone: bool) -> Result:
        seen.append(read_progress(directory, job_id))
        return writes_output(spec, rel_path, alone=alone)

    run_claimed_job(config, job_id, looks, model_id="m")
    assert seen == [None]
    with pytest.raises(OSError):
        write_progress(directory, Progress(job_id, 3, 5))  # the job's folder went with its publication


def test_the_history_adopts_a_remote_jobs_thumbnails(tmp_path: Path) -> None:
    """Thumbnails written into work/.thumbnails/ move beside the history; none are left behind."""
    source, state = tmp_path / "work" / ".thumbnails", tmp_path / "state"
    source.mkdir(parents=True)
    job_id = new_job_id()
    for side in THUMBNAIL_SIDES:
        thumbnail_path(source, job_id, side).write_bytes(side.encode())
    history = JobHistory(state, keep=5)
    history.adopt_thumbnails(source, job_id)
    assert [thumbnail_path(thumbnails_dir(state), job_id, s).read_bytes() for s in THUMBNAIL_SIDES] == [
        b"before",
        b"after",
    ]
    assert list(source.iterdir()) == []
