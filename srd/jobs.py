"""The durable queue: settled inbox files are claimed by atomic rename into work/, each with a job record."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from srd.errors import FolderError
from srd.publish import fsync_dir, write_json_replace

RECORD_NAME = "job.json"
MAX_RETRY_DELAY = 60.0  # seconds; a full disk is retried at least this often
LOCK_NAME = ".lock"

# What must not change while a file settles: appending, truncating or replacing a file changes one of these.
Signature = tuple[int, int, int, int, int]


def file_signature(info: os.stat_result) -> Signature:
    return (info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass
class Job:
    """One claimed inbox file, living in work/<job_id>/ beside its record."""

    job_id: str
    directory: Path
    rel_path: str  # the original path relative to the inbox, '/'-separated
    first_seen: float
    claimed_at: float
    attempts: int = 0
    output: str | None = None  # the published output, recorded before the temporary name is removed
    solo: bool = False  # run alone: it was in flight beside another job when the worker was lost

    @property
    def input_path(self) -> Path:
        return self.directory / Path(self.rel_path).name

    @property
    def record_path(self) -> Path:
        return self.directory / RECORD_NAME

    @property
    def rel_dir(self) -> Path:
        return Path(self.rel_path).parent

    def save(self) -> None:
        """Persist the record atomically so a crash never leaves it half-written."""
        document = {k: v for k, v in asdict(self).items() if k != "directory"}
        write_json_replace(self.record_path, document)

    def remove(self) -> None:
        """Forget the job once its input is archived, deleted or moved to errors."""
        shutil.rmtree(self.directory, ignore_errors=True)
        fsync_dir(self.directory.parent)


def new_job_id() -> str:
    # Time first so that a listing of work/ sorts by claim order.
    return f"{time.time_ns():x}-{secrets.token_hex(4)}"


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


def load_job(directory: Path) -> Job | None:
    """Read a job record from work/; None when the folder holds no usable job."""
    try:
        document = json.loads((directory / RECORD_NAME).read_text(encoding="utf-8"))
        job = Job(
            job_id=str(document["job_id"]),
            directory=directory,
            rel_path=str(document["rel_path"]),
            first_seen=float(document["first_seen"]),
            claimed_at=float(document["claimed_at"]),
            attempts=int(document.get("attempts", 0)),
            output=document.get("output"),
            solo=bool(document.get("solo", False)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return _job_without_record(directory)
    if not os.path.lexists(job.input_path):
        return None
    return job


def _job_without_record(directory: Path) -> Job | None:
    # The record is written before the input arrives, so this means a damaged record: keep the input.
    inputs = [e for e in directory.iterdir() if not e.name.startswith(".") and e.name != RECORD_NAME]
    if len(inputs) != 1:
        return None
    now = time.time()
    job = Job(directory.name, directory, inputs[0].name, first_seen=now, claimed_at=now)
    job.save()
    return job


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


@dataclass
class _Pending:
    signature: Signature
    stable_since: float
    first_seen: float


@dataclass(frozen=True)
class SettledFile:
    """An inbox entry whose size and times have not changed for settle_seconds."""

    path: Path
    signature: Signature
    first_seen: float

    @property
    def is_regular(self) -> bool:
        return stat.S_ISREG(self.signature[0])

    def unchanged(self) -> bool:
        """True when the entry is still exactly what settled (checked again right before claiming)."""
        try:
            return file_signature(os.lstat(self.path)) == self.signature
        except FileNotFoundError:
            return False


class SettleTracker:
    """Holds nominated paths until their size and times are stable; never opens or follows them."""

    def __init__(self, settle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def nominate(self, path: Path) -> None:
        if path not in self._pending:
            now = self.clock()
            # A zero signature never matches a real lstat, so the first check starts the settle clock.
            self._pending[path] = _Pending((0, 0, 0, 0, 0), now, time.time())

    def collect_settled(self) -> list[SettledFile]:
        """Re-check every pending path; return and forget the ones that have settled."""
        now = self.clock()
        settled: list[SettledFile] = []
        for path, pending in list(self._pending.items()):
            try:
                info = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                del self._pending[path]
                continue
            if stat.S_ISDIR(info.st_mode):
                del self._pending[path]
                continue
            signature = file_signature(info)
            if signature != pending.signature:
                pending.signature = signature
                pending.stable_since = now
                if not stat.S_ISREG(info.st_mode):
                    # Symlinks, FIFOs and devices are never written through; they go to errors at once.
                    settled.append(SettledFile(path, signature, pending.first_seen))
                    del self._pending[path]
                continue
            if now - pending.stable_since >= self.settle_seconds:
                settled.append(SettledFile(path, signature, pending.first_seen))
                del self._pending[path]
        return settled


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
