"""Tests for srd.jobs: settling, claiming by rename, recovery of work/, and the work-folder lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from srd.daemon.queue import RetryQueue, WorkLock, claim_job, recover_jobs
from srd.daemon.settle import SettleTracker
from srd.errors import FolderError
from srd.jobs.record import load_job


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    inbox, work = tmp_path / "inbox", tmp_path / "work"
    inbox.mkdir()
    work.mkdir()
    return inbox, work


def test_claim_moves_the_file_and_writes_a_record(folders: tuple[Path, Path]) -> None:
    """A claimed file leaves the inbox for work/<id>/ beside a record of its original path."""
    inbox, work = folders
    (inbox / "sub").mkdir()
    source = inbox / "sub" / "a.png"
    source.write_bytes(b"data")
    job = claim_job(inbox, work, source, first_seen=1.0)
    assert job is not None
    assert not source.exists()
    assert job.input_path.read_bytes() == b"data"
    loaded = load_job(job.directory)
    assert loaded is not None
    assert loaded.rel_path == "sub/a.png"
    assert loaded.attempts == 0


def test_losing_the_rename_race_claims_nothing(folders: tuple[Path, Path]) -> None:
    """When another process already took the file, claim_job returns None and leaves no job folder."""
    inbox, work = folders
    assert claim_job(inbox, work, inbox / "gone.png", first_seen=1.0) is None
    assert list(work.iterdir()) == []


def test_recover_keeps_claimed_jobs_and_drops_finished_ones(folders: tuple[Path, Path]) -> None:
    """Jobs with their input are requeued in claim order; a record whose input is gone is cleaned up."""
    inbox, work = folders
    jobs = []
    for name in ("a.png", "b.png", "c.png"):
        (inbox / name).write_bytes(name.encode())
        job = claim_job(inbox, work, inbox / name, first_seen=1.0)
        assert job is not None
        jobs.append(job)
    jobs[1].input_path.unlink()
    jobs[2].attempts = 2
    jobs[2].save()
    recovered = recover_jobs(work)
    assert [j.rel_path for j in recovered] == ["a.png", "c.png"]
    assert recovered[1].attempts == 2
    assert not jobs[1].directory.exists()


def test_damaged_record_keeps_the_input(folders: tuple[Path, Path]) -> None:
    """A job folder with an unreadable record is still recovered from its single input file."""
    inbox, work = folders
    (inbox / "a.png").write_bytes(b"x")
    job = claim_job(inbox, work, inbox / "a.png", first_seen=1.0)
    assert job is not None
    job.record_path.write_text("{not json")
    recovered = recover_jobs(work)
    assert [j.input_path for j in recovered] == [job.input_path]


def test_settling_waits_for_a_stable_file(tmp_path: Path) -> None:
    """A file is ready only after its size and mtime stayed the same for settle_seconds."""
    clock = FakeClock()
    tracker = SettleTracker(2.0, clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"1")
    tracker.nominate(path)
    assert tracker.collect_settled() == []
    clock.now += 1.5
    with path.open("ab") as handle:
        handle.write(b"2")
    assert tracker.collect_settled() == []
    clock.now += 1.9
    assert tracker.collect_settled() == []
    clock.now += 0.2
    settled = tracker.collect_settled()
    assert [s.path for s in settled] == [path]
    assert settled[0].is_regular and settled[0].unchanged()
    assert len(tracker) == 0


def test_vanished_and_folder_nominations_are_dropped(tmp_path: Path) -> None:
    """Paths that disappear or are folders leave the tracker without being reported."""
    tracker = SettleTracker(0.0)
    tracker.nominate(tmp_path / "missing.png")
    tracker.nominate(tmp_path)
    assert tracker.collect_settled() == []
    assert len(tracker) == 0


def test_symlinks_and_fifos_settle_at_once_without_being_followed(tmp_path: Path) -> None:
    """Non-regular entries are reported immediately, flagged as not regular."""
    tracker = SettleTracker(60.0)
    target = tmp_path / "target.png"
    target.write_bytes(b"x")
    link, fifo = tmp_path / "link.png", tmp_path / "pipe.png"
    link.symlink_to(target)
    os.mkfifo(fifo)
    tracker.nominate(link)
    tracker.nominate(fifo)
    settled = tracker.collect_settled()
    assert {s.path for s in settled} == {link, fifo}
    assert not any(s.is_regular for s in settled)


def test_changed_after_settling_is_detected(tmp_path: Path) -> None:
    """unchanged() turns false when the file is appended to after it settled."""
    tracker = SettleTracker(0.0)
    path = tmp_path / "a.png"
    path.write_bytes(b"1")
    tracker.nominate(path)
    tracker.collect_settled()
    (settled,) = tracker.collect_settled()
    with path.open("ab") as handle:
        handle.write(b"more")
    assert not settled.unchanged()


def test_work_folder_lock_is_exclusive(tmp_path: Path) -> None:
    """A second lock on the same work folder fails with FolderError until the first is released."""
    first, second = WorkLock(tmp_path), WorkLock(tmp_path)
    first.acquire()
    with pytest.raises(FolderError, match="in use"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_claim_refuses_a_path_through_a_symlinked_folder(tmp_path: Path) -> None:
    """A subfolder swapped for a symlink to elsewhere is not followed: the file outside is never moved."""
    inbox, work, outside = tmp_path / "in", tmp_path / "work", tmp_path / "outside"
    for folder in (inbox, work, outside):
        folder.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    (inbox / "sub").symlink_to(outside)
    with pytest.raises(OSError):
        claim_job(inbox, work, inbox / "sub" / "secret.png", 0.0)
    assert (outside / "secret.png").read_bytes() == b"secret"
    assert list(work.iterdir()) == []


def test_retry_queue_defers_with_a_growing_delay(tmp_path: Path) -> None:
    """Deferred jobs come back only when due, with doubling delays; plain retries come back at once."""
    now = [100.0]
    queue = RetryQueue(clock=lambda: now[0])
    inbox, work = tmp_path / "in", tmp_path / "work"
    inbox.mkdir()
    work.mkdir()
    jobs = []
    for name in ("a.png", "b.png"):
        (inbox / name).write_bytes(b"x")
        job = claim_job(inbox, work, inbox / name, 0.0)
        assert job is not None
        jobs.append(job)
    assert queue.defer(jobs[0]) == 1.0
    queue.append(jobs[1])
    assert len(queue) == 2
    assert queue.pop_due() is jobs[1]
    assert queue.pop_due() is None
    now[0] += 1.0
    assert queue.pop_due() is jobs[0]
    assert queue.defer(jobs[0]) == 2.0
    queue.forget(jobs[0])
    assert queue.defer(jobs[0]) == 1.0
