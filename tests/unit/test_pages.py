"""Tests for srd.jobs.pages: several outputs of one job published all or none, a crash rolled forward."""

from __future__ import annotations

from pathlib import Path

import pytest

from srd.daemon.queue import claim_job, recover_jobs
from srd.jobs.fsops import write_file_synced
from srd.jobs.outcome import complete_job, fail_job, plan_output, recover_job
from srd.jobs.pages import page_file_name, published_page_name
from srd.jobs.record import Job
from srd.settings import Config, parse_config

PAGES = tuple(page_file_name(number, 3, ".png") for number in (1, 2, 3))
WANT = ["doc_x2.p001.png", "doc_x2.p002.png", "doc_x2.p003.png"]


class CrashError(Exception):
    """Stands in for SIGKILL at one step of publishing."""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    document = {
        "inbox": "inbox",
        "outbox": "outbox",
        "errors": "errors",
        "work": "work",
        "archive": "archive",
        "output": {"name": "{stem}_x{scale}", "tiff_pages": "separate"},
    }
    cfg = parse_config(document, tmp_path)
    for folder in (cfg.inbox, cfg.outbox, cfg.errors, cfg.work):
        folder.mkdir()
    return cfg


def staged_job(config: Config) -> Job:
    """A claimed doc.tif whose worker has written its three pages into the staging folder."""
    source = config.inbox / "doc.tif"
    source.write_bytes(b"input")
    job = claim_job(config.inbox, config.work, source, first_seen=1.0)
    assert job is not None
    staging = plan_output(job, config).staging
    staging.mkdir(parents=True)
    for page in PAGES:
        write_file_synced(staging / page, f"pixels of {page}".encode())
    return job


def outbox_files(config: Config) -> dict[str, bytes]:
    """Every file in the outbox, hidden ones included (a leftover staging folder must show up)."""
    return {
        p.relative_to(config.outbox).as_posix(): p.read_bytes()
        for p in config.outbox.rglob("*")
        if p.is_file()
    }


def assert_published_once(config: Config) -> None:
    """All three pages in the outbox under their names with their content, nothing else; input archived."""
    assert outbox_files(config) == {
        name: f"pixels of {page}".encode() for name, page in zip(WANT, PAGES, strict=True)
    }
    assert config.archive is not None
    assert (config.archive / "doc.tif").read_bytes() == b"input"
    assert list(config.work.iterdir()) == []


def publish_steps(config: Config) -> list[tuple[str, str]]:
    """Every step of an uninterrupted publish, in order."""
    steps: list[tuple[str, str]] = []
    job = staged_job(config)
    complete_job(job, config, ".png", pages=PAGES, on_page=lambda event, page: steps.append((event, page)))
    return steps


def test_page_names_number_in_order_and_keep_the_number_when_shortened() -> None:
    """p001.. (four digits past 999 pages) after the output's stem; a long stem is cut, never the number."""
    assert page_file_name(7, 12, ".png") == "p007.png" and page_file_name(7, 1200, ".tif") == "p0007.tif"
    assert published_page_name("doc_x2.png", "p001.png") == "doc_x2.p001.png"
    long = published_page_name("a" * 250 + ".png", "p001.png")
    assert len(long) == 255 and long.endswith("a.p001.png")


def test_complete_publishes_every_page_and_archives(config: Config) -> None:
    """All pages land in the outbox named NAME.pNNN.SUFFIX, the staging folder goes, the input is archived."""
    job = staged_job(config)
    final = complete_job(job, config, ".png", pages=PAGES)
    assert final == config.outbox / WANT[0]
    assert_published_once(config)


def test_a_taken_name_gets_a_numbered_variant_and_is_not_replaced(config: Config) -> None:
    """A page whose name is taken in the outbox is published as NAME-1, leaving the other file alone."""
    (config.outbox / WANT[1]).write_bytes(b"someone else's")
    job = staged_job(config)
    complete_job(job, config, ".png", pages=PAGES)
    files = outbox_files(config)
    assert files[WANT[1]] == b"someone else's"
    assert files["doc_x2.p002-1.png"] == b"pixels of p002.png"
    assert len(files) == 4


def test_publishing_takes_the_steps_the_crash_test_stops_at(config: Config) -> None:
    """Each page is linked, recorded and its staged name removed, page after page: nine steps for three."""
    assert publish_steps(config) == [
        (event, page) for page in PAGES for event in ("linked", "recorded", "removed")
    ]


@pytest.mark.parametrize("crash_at", range(9))
def test_a_crash_at_any_step_of_publishing_is_rolled_forward(config: Config, crash_at: int) -> None:
    """Killed after any step (link, record, removal) of any page, the next start publishes the rest: each
    page exactly once, no numbered duplicate, then the input is archived."""
    job = staged_job(config)
    done: list[tuple[str, str]] = []

    def step(event: str, page: str) -> None:
        done.append((event, page))
        if len(done) == crash_at + 1:
            raise CrashError

    with pytest.raises(CrashError):
        complete_job(job, config, ".png", pages=PAGES, on_page=step)
    (reloaded,) = recover_jobs(config.work)  # a fresh start reads the record back from disk
    assert recover_job(reloaded, config) == config.outbox / WANT[0]
    assert_published_once(config)


def test_pages_staged_but_not_committed_are_discarded_and_the_job_runs_again(config: Config) -> None:
    """A crash after the worker wrote the pages, before the publisher recorded them: nothing was published,
    so recovery removes the staging folder and requeues the job with its input in place."""
    job = staged_job(config)
    assert recover_job(job, config) is None
    assert outbox_files(config) == {}
    assert job.input_path.read_bytes() == b"input"


def test_a_failed_job_leaves_no_staged_pages(config: Config) -> None:
    """A job that fails after writing some pages goes to errors/ and its staging folder is removed."""
    job = staged_job(config)
    fail_job(job, config, error_type="CorruptImageError", reason="page 3", model_id="m")
    assert outbox_files(config) == {}
    assert (config.errors / "doc.tif").read_bytes() == b"input"
