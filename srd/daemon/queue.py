"""The durable queue: settled inbox files are claimed by atomic rename into work/, each with a job record;
jobs left there by an earlier run are recovered; a lock keeps work/ to one daemon; a retry queue holds
claimed jobs to run again."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from srd.errors import FolderError
from srd.jobs.fsops import fsync_dir
from srd.jobs.record import Job, load_job, new_job_id

MAX_RETRY_DELAY = 60.0  # seconds; a full disk is retried at least this often
LOCK_NAME = ".lock"


def claim_job(inbox: Path, work: Path, path: Path, first_seen: float) -> Job | None:
    """Take ownership of `path` by renaming it into work/; returns None when another process won the race."""
    job_id = new_job_id()
    rel_path = path.relative_to(inbox).as_posix()
    directory = work / job_id
    directory.mkdir()
    job = Job(job_id, directory, rel_path, first_seen=first_seen, claimed_at=time.time())
    # The record is written first: a record without an input is recognisably a lost race or a finished job.
    job.save()
    parent_fd = -1
    try:
        parent_fd = open_inbox_folder(inbox, Path(rel_path).parent.parts)
        os.rename(path.name, job.input_path, src_dir_fd=parent_fd)
        os.fsync(parent_fd)
    except FileNotFoundError:
        shutil.rmtree(directory, ignore_errors=True)
        return None
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        if parent_fd >= 0:
            os.close(parent_fd)
    fsync_dir(directory)
    return job


def open_inbox_folder(inbox: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of the inbox subfolder `parts`, reached without following any symlink.

    A writer of the inbox could swap a subfolder for a symlink to a folder elsewhere after the file
    settled; resolving each component with O_NOFOLLOW makes the claim fail (ELOOP/ENOTDIR) instead of
    moving someone else's file into work/.
    """
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in parts:
        try:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        fd = next_fd
    return fd


def recover_jobs(work: Path) -> list[Job]:
    """Jobs left in work/ by an earlier run, oldest claim first; folders of finished jobs are removed."""
    jobs: list[Job] = []
    for directory in sorted(work.iterdir()):
        if not directory.is_dir() or directory.is_symlink() or directory.name.startswith("."):
            continue
        job = load_job(directory)
        if job is None:
            shutil.rmtree(directory, ignore_errors=True)
            continue
        jobs.append(job)
    return jobs


class WorkLock:
    """An exclusive lock on work/, so two daemons never share (and requeue each other's) claimed jobs."""

    def __init__(self, work: Path) -> None:
        self.path = work / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 -- held open for the daemon's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderError(
                f"work folder {self.path.parent} is in use by {holder}; "
                "each srd instance needs its own work folder"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"srd pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RetryQueue:
    """Claimed jobs to run again: at once (after a crash) or after a growing delay (disk full, a failed move).

    Deferring never costs an attempt: the machine, not the file, was at fault, and the job stays claimed in
    work/ so nothing else can take it meanwhile.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._now: deque[Job] = deque()
        self._later: list[tuple[float, Job]] = []
        self._delays: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._now) + len(self._later)

    def append(self, job: Job) -> None:
        self._now.append(job)

    def defer(self, job: Job) -> float:
        """Run `job` again after a delay that doubles with each deferral (1 s up to MAX_RETRY_DELAY)."""
        delay = min(self._delays.get(job.job_id, 0.5) * 2, MAX_RETRY_DELAY)
        self._delays[job.job_id] = delay
        self._later.append((self.clock() + delay, job))
        return delay

    def forget(self, job: Job) -> None:
        """The job finished: its next problem, if any, starts again from a short delay."""
        self._delays.pop(job.job_id, None)

    def pop_due(self) -> Job | None:
        """The next job to run now, or None."""
        now = self.clock()
        due = [entry for entry in self._later if entry[0] <= now]
        if due:
            self._later = [entry for entry in self._later if entry[0] > now]
            self._now.extend(job for _, job in sorted(due, key=lambda entry: entry[0]))
        return self._now.popleft() if self._now else None
