"""Tests for srd.outcome: completing, failing and recovering jobs without losing or duplicating files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srd.daemon.queue import claim_job, recover_jobs
from srd.jobs.fsops import link_no_replace, write_file_synced
from srd.jobs.outcome import complete_job, fail_job, plan_output, recover_job
from srd.jobs.record import Job
from srd.settings import Config, parse_config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    document = {
        "inbox": "inbox",
        "outbox": "outbox",
        "errors": "errors",
        "work": "work",
        "archive": "archive",
        "output": {"name": "{stem}_x{scale}"},
    }
    cfg = parse_config(document, tmp_path)
    for folder in (cfg.inbox, cfg.outbox, cfg.errors, cfg.work):
        folder.mkdir()
    return cfg


def claimed(config: Config, rel: str) -> Job:
    source = config.inbox / rel
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(b"input")
    job = claim_job(config.inbox, config.work, source, first_seen=1.0)
    assert job is not None
    return job


def outbox_files(config: Config) -> list[str]:
    return sorted(p.relative_to(config.outbox).as_posix() for p in config.outbox.rglob("*") if p.is_file())


def test_complete_publishes_mirrored_and_archives(config: Config) -> None:
    """The output lands under the mirrored subfolder with the templated name; the original is archived."""
    job = claimed(config, "sub/a.png")
    plan = plan_output(job, config)
    plan.directory.mkdir(parents=True)
    write_file_synced(plan.temp, b"output")
    final = complete_job(job, config)
    assert final == config.outbox / "sub" / "a_x2.png"
    assert outbox_files(config) == ["sub/a_x2.png"]
    assert config.archive is not None
    assert (config.archive / "sub" / "a.png").read_bytes() == b"input"
    assert list(config.work.iterdir()) == []


def test_fail_writes_the_report_beside_the_original(config: Config) -> None:
    """A failed job's original goes to errors/ with NAME.error.json holding the reason and attempts."""
    job = claimed(config, "sub/bad.png")
    job.attempts = 1
    fail_job(job, config, error_type="CorruptImageError", reason="truncated", model_id="m", trace=None)
    assert (config.errors / "sub" / "bad.png").read_bytes() == b"input"
    report = json.loads((config.errors / "sub" / "bad.png.error.json").read_text())
    assert report["reason"] == "truncated"
    assert report["error_type"] == "CorruptImageError"
    assert report["attempts"] == 1
    assert report["original_path"] == "sub/bad.png"
    assert {"srd_version", "model", "first_seen", "failed_at"} <= report.keys()
    assert list(config.work.iterdir()) == []


def test_recover_requeues_an_unpublished_job_and_removes_its_temp(config: Config) -> None:
    """A temp output with one link was never published: it is deleted and the job runs again."""
    job = claimed(config, "a.png")
    plan = plan_output(job, config)
    write_file_synced(plan.temp, b"half")
    assert recover_job(job, config) is None
    assert not plan.temp.exists()
    assert outbox_files(config) == []
    assert job.input_path.exists()


def test_recover_finishes_a_job_published_before_the_crash(config: Config) -> None:
    """A crash between linking the output and removing the temp name yields one output, not two."""
    job = claimed(config, "a.png")
    plan = plan_output(job, config)
    write_file_synced(plan.temp, b"done")
    link_no_replace(plan.temp, plan.directory, plan.filename)  # the crash happens right after this
    (reloaded,) = recover_jobs(config.work)
    assert recover_job(reloaded, config) == config.outbox / "a_x2.png"
    assert outbox_files(config) == ["a_x2.png"]
    assert list(config.work.iterdir()) == []
    assert config.archive is not None
    assert (config.archive / "a.png").exists()


def test_recover_finishes_a_job_whose_output_was_recorded(config: Config) -> None:
    """A record that names its output means only the archiving step is left to do."""
    job = claimed(config, "a.png")
    (config.outbox / "a_x2.png").write_bytes(b"done")
    job.output = str(config.outbox / "a_x2.png")
    job.save()
    assert recover_job(job, config) is not None
    assert outbox_files(config) == ["a_x2.png"]
    assert not job.directory.exists()


def test_the_reported_suffix_names_the_output_and_recovery_finds_it(config: Config) -> None:
    """A worker's suffix (output.format same, animations) names the published file; the temporary name is
    the planned one whatever the suffix, so a crash after publishing is recovered without a second output."""
    job = claimed(config, "anim.gif")
    plan = plan_output(job, config)
    assert plan_output(job, config, ".gif").temp == plan.temp
    assert plan_output(job, config, ".gif").filename == "anim_x2.gif"
    plan.directory.mkdir(parents=True, exist_ok=True)
    write_file_synced(plan.temp, b"gif89a...")
    link_no_replace(plan.temp, plan.directory, "anim_x2.gif")  # published, then a crash before the unlink
    assert recover_job(job, config) == config.outbox / "anim_x2.gif"
    assert outbox_files(config) == ["anim_x2.gif"]
