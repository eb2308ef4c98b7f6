"""What `srd web` shows, read from the state folder: the status document, the finished jobs, the error
reports, a job's thumbnails, and the one action (a failed file back to the inbox).

Nothing from a request is joined to a path except a job id, and only after it was found in the history or
in an error report that srd wrote itself.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srd.jobs.fsops import fsync_dir, numbered_name
from srd.settings import Config
from srd.status.history import JOB_ID, THUMBNAIL_SIDES, read_history, thumbnail_path, thumbnails_dir
from srd.status.measures import seconds_left
from srd.status.status_file import UnreadableStatusError, daemon_alive, read_status

RECENT_JOBS = 48  # finished jobs on the page and in /api/jobs
ERROR_REPORTS = 50  # newest error reports listed
REPORT_SUFFIX = ".error.json"


class RetryError(Exception):
    """A retry that cannot be done; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ErrorReport:
    """One NAME.error.json in the errors folder, and the failed file beside it."""

    report: Path
    document: dict[str, Any]

    @property
    def job_id(self) -> str | None:
        job_id = self.document.get("job_id")
        return job_id if isinstance(job_id, str) and JOB_ID.fullmatch(job_id) else None

    def failed_file(self) -> Path | None:
        name = self.document.get("file")
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            return None
        return self.report.with_name(name)

    def summary(self) -> dict[str, Any]:
        document = self.document
        return {
            "job_id": self.job_id,
            "input": document.get("original_path"),
            "reason": document.get("reason"),
            "error_type": document.get("error_type"),
            "attempts": document.get("attempts"),
            "failed_at": document.get("failed_at"),
        }


class StateReader:
    """Reads the daemon's state folder and errors folder for one request at a time."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.thumbnails = thumbnails_dir(config.state_dir)

    # -- status --------------------------------------------------------------------------------------------

    def status(self, now: float | None = None) -> tuple[dict[str, Any], bool]:
        """The status document with what a viewer wants computed (liveness, age, elapsed, ETA)."""
        now = time.time() if now is None else now
        try:
            document = read_status(self.config.status_file)
        except UnreadableStatusError as exc:
            return {"state": "unknown", "problem": str(exc), "alive": False}, False
        if document is None:
            return {"state": "not running", "problem": "no status file yet", "alive": False}, False
        alive = daemon_alive(document, now)
        try:
            age = max(0.0, now - float(document.get("updated_at", 0)))
        except (TypeError, ValueError):
            age = None
        in_flight = document.get("in_flight")
        if not isinstance(in_flight, list):
            in_flight = []
        jobs = [_in_flight_view(job, now) for job in in_flight if isinstance(job, dict)] if alive else []
        workers = document.get("workers")  # several workers (a later srd) report themselves here
        view = {
            **document,
            "alive": alive,
            "age": None if age is None else round(age, 1),
            "in_flight": jobs,
            "left_in_work": [] if alive else in_flight,
            "workers": workers if isinstance(workers, list) else [],
        }
        view.pop("pid", None)
        return view, alive

    # -- jobs ----------------------------------------------------------------------------------------------

    def recent_jobs(self, limit: int = RECENT_JOBS) -> list[dict[str, Any]]:
        """The newest finished jobs first, each with the URLs of whichever thumbnails exist."""
        jobs = []
        for entry in reversed(read_history(self.config.state_dir)[-limit:]):
            job_id = entry["job_id"]
            thumbs = {}
            for side in THUMBNAIL_SIDES:
                try:
                    if thumbnail_path(self.thumbnails, job_id, side).is_file():
                        thumbs[side] = f"/thumbs/{job_id}/{side}.webp"
                except ValueError:
                    continue
            jobs.append({**entry, "thumbnails": thumbs})
        return jobs

    def error_reports(self, limit: int = ERROR_REPORTS) -> list[ErrorReport]:
        """The newest error reports in the errors folder (symlinks never followed)."""
        found: list[tuple[float, str]] = []
        for folder, dirs, files in os.walk(self.config.errors):
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            for name in files:
                if name.endswith(REPORT_SUFFIX) and not name.startswith("."):
                    path = os.path.join(folder, name)
                    try:
                        info = os.lstat(path)
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        found.append((info.st_mtime, path))
        found.sort(reverse=True)
        reports = []
        for _, path in found[:limit] if limit else found:
            report = _read_report(Path(path))
            if report is not None:
                reports.append(report)
        return reports

    def jobs(self) -> dict[str, Any]:
        return {
            "recent": self.recent_jobs(),
            "errors": [report.summary() for report in self.error_reports()],
        }

    # -- files ---------------------------------------------------------------------------------------------

    def thumbnail(self, job_id: str, side: str) -> Path | None:
        """A finished job's thumbnail, only for a job id the history holds."""
        if not any(entry["job_id"] == job_id for entry in read_history(self.config.state_dir)):
            return None
        try:
            path = thumbnail_path(self.thumbnails, job_id, side)
        except ValueError:
            return None
        return path if path.is_file() else None

    def retry(self, job_id: str) -> str:
        """Move a failed file back into the inbox (its subfolder mirrored) and drop its report."""
        if not JOB_ID.fullmatch(job_id):
            raise RetryError(404, "no such job")
        report = next((r for r in self.error_reports(limit=0) if r.job_id == job_id), None)
        if report is None:
            raise RetryError(404, "no error report for this job (already retried?)")
        failed = report.failed_file()
        try:
            info = os.lstat(failed) if failed is not None else None
        except OSError:
            info = None
        if failed is None or info is None or not stat.S_ISREG(info.st_mode):
            raise RetryError(409, "the failed file is gone or is not a regular file")
        original = report.document.get("original_path")
        name = Path(original).name if isinstance(original, str) and Path(original).name else failed.name
        rel_dir = report.report.parent.relative_to(self.config.errors)
        try:
            placed = _place_in_inbox(failed, self.config.inbox, rel_dir.parts, name)
            failed.unlink()
            report.report.unlink()
            fsync_dir(report.report.parent)
        except OSError as exc:
            # ELOOP/ENOTDIR: a folder of the inbox was swapped for a symlink or a file; refused.
            code = 409 if exc.errno in (errno.ELOOP, errno.ENOTDIR) else 500
            raise RetryError(code, f"cannot move the file back: {exc.strerror or exc}") from None
        return (rel_dir / placed).as_posix()


def _open_inbox_folder(inbox: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of inbox/<parts>, created where missing, reached without following a symlink: inbox
    writers control the inbox's tree, and a subfolder swapped for a symlink must not send the file (as
    srd's user) somewhere they cannot write."""
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in parts:
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        fd = next_fd
    return fd


def _place_in_inbox(failed: Path, inbox: Path, parts: tuple[str, ...], name: str) -> str:
    """Link (or copy, across file systems) the failed file into the inbox folder under a free name."""
    fd = _open_inbox_folder(inbox, parts)
    try:
        for number in range(1000):
            candidate = numbered_name(name, number)
            try:
                os.link(failed, candidate, dst_dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_into(failed, fd, candidate)
            os.fsync(fd)
            return candidate
    finally:
        os.close(fd)
    raise FileExistsError(errno.EEXIST, f"no free name for {name} in the inbox")


def _copy_into(source: Path, folder_fd: int, name: str) -> None:
    def opener(path: str, flags: int) -> int:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644, dir_fd=folder_fd)

    with open(source, "rb") as src, open(name, "xb", opener=opener) as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())


def _read_report(path: Path) -> ErrorReport | None:
    try:
        with open(path, "rb") as handle:  # reports are small; a huge one is not srd's
            data = handle.read(1_000_000)
        document = json.loads(data)
    except (OSError, ValueError):
        return None
    return ErrorReport(path, document) if isinstance(document, dict) else None


def _in_flight_view(job: dict[str, Any], now: float) -> dict[str, Any]:
    """A job in flight with its elapsed seconds, and its progress fraction and ETA when it reports one."""
    view = dict(job)
    since = job.get("since")
    elapsed = max(0.0, now - since) if isinstance(since, int | float) else None
    view["elapsed"] = None if elapsed is None else round(elapsed, 1)
    progress = job.get("progress")
    fraction = eta = None
    if isinstance(progress, dict):
        done, total = progress.get("done"), progress.get("total")
        if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
            fraction = min(1.0, max(0.0, done / total))
            left = None if elapsed is None else seconds_left(elapsed, done, total)
            eta = None if left is None else round(left, 1)
    view["fraction"] = fraction
    view["eta"] = eta
    return view
