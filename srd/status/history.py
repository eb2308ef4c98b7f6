"""The finished jobs the status page shows: <state>/.srd-history/history.json and the thumbnails beside it.

The daemon appends one entry per job that ends (done or failed) and keeps the last `web.history`; a
thumbnail pair (written by the worker from the pixels it decoded and upscaled) is deleted with its entry.
A remote job's pair (queue.backend celery) is written on its worker host into work/.thumbnails/ and moved
here by the watcher when the job ends (`adopt_thumbnails`).
`srd web` only reads these files. The folder is a dotfile so that, when status_file lives in work/, the
daemon's recovery never takes it for a job.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

HISTORY_DIR = ".srd-history"
HISTORY_FILE = "history.json"
THUMBNAILS_DIR = "thumbs"
THUMBNAIL_SIDES = ("before", "after")
# What new_job_id() makes (hex nanoseconds, a dash, 8 hex digits): the only names ever joined to a path.
JOB_ID = re.compile(r"[0-9a-f]{1,20}-[0-9a-f]{8}")

log = structlog.get_logger("srd.status")


def history_dir(state_dir: Path) -> Path:
    return state_dir / HISTORY_DIR


def thumbnails_dir(state_dir: Path) -> Path:
    return history_dir(state_dir) / THUMBNAILS_DIR


def thumbnail_path(folder: Path, job_id: str, side: str) -> Path:
    """Where a job's thumbnail is; ValueError for anything that is not a job id and a known side."""
    if not JOB_ID.fullmatch(job_id) or side not in THUMBNAIL_SIDES:
        raise ValueError(f"not a thumbnail: {job_id!r} {side!r}")
    return folder / f"{job_id}.{side}.webp"


@dataclass(frozen=True)
class FinishedJob:
    """One ended job as the page lists it (sizes as [width, height]; seconds of worker time)."""

    job_id: str
    input: str  # relative to the inbox, as the user named it
    outcome: str  # "done" or "failed"
    finished_at: float
    queue_wait: float | None = None
    seconds: float | None = None
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    output: str | None = None  # relative to the outbox
    error_type: str | None = None
    reason: str | None = None
    device: str | None = None  # the device that ran it (the last attempt's)
    host: str | None = None  # the `srd worker` host that ran it (queue.backend celery); None: the daemon's


class JobHistory:
    """The last `keep` finished jobs, rewritten atomically on every change."""

    def __init__(self, state_dir: Path, keep: int) -> None:
        self.folder = history_dir(state_dir)
        self.thumbnails = thumbnails_dir(state_dir)
        self.keep = keep
        self.entries: deque[dict[str, Any]] = deque(read_history(state_dir)[-keep:] if keep else ())
        if keep:
            self.thumbnails.mkdir(parents=True, exist_ok=True)
            self._prune_thumbnails()

    def record(self, job: FinishedJob) -> None:
        if not self.keep:
            return
        if len(self.entries) == self.keep:
            self._remove_thumbnails(self.entries.popleft()["job_id"])
        self.entries.append(asdict(job))
        try:
            _replace_json(self.folder / HISTORY_FILE, {"jobs": list(self.entries)})
        except OSError as exc:  # the page shows less; the job itself is unaffected
            log.warning("history.write_failed", error=str(exc))

    def _remove_thumbnails(self, job_id: str) -> None:
        discard_thumbnails(self.thumbnails, job_id)

    def adopt_thumbnails(self, source: Path, job_id: str) -> None:
        """Move a job's thumbnails from `source` (work/.thumbnails/, written on a worker host) beside the
        history, before its entry is recorded; whatever cannot be moved is dropped, never raised."""
        if not self.keep:
            discard_thumbnails(source, job_id)
            return
        for side in THUMBNAIL_SIDES:
            try:
                _move_file(
                    thumbnail_path(source, job_id, side), thumbnail_path(self.thumbnails, job_id, side)
                )
            except FileNotFoundError:
                continue  # the job made none (thumbnails off on that host, or the image never upscaled)
            except (OSError, ValueError) as exc:
                log.warning("history.thumbnail_failed", job_id=job_id, error=str(exc))
        discard_thumbnails(source, job_id)

    def _prune_thumbnails(self) -> None:
        """At start: thumbnails of jobs no longer in the history (or of jobs that never finished) go."""
        prune_thumbnails(self.thumbnails, {entry["job_id"] for entry in self.entries})


def discard_thumbnails(folder: Path, job_id: str) -> None:
    """Remove a job's thumbnails from `folder`, if there are any."""
    for side in THUMBNAIL_SIDES:
        with contextlib.suppress(OSError, ValueError):
            thumbnail_path(folder, job_id, side).unlink(missing_ok=True)


def prune_thumbnails(folder: Path, keep: set[str]) -> None:
    """Remove the thumbnails in `folder` (and their temporary files) of every job not in `keep`, and any
    other file there."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.lstrip(".").split(".", 1)[0] not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _move_file(src: Path, dst: Path) -> None:
    """Rename, or copy by a temporary name and rename where `dst` is on another file system."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        temp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, temp)
        os.replace(temp, dst)
        src.unlink()


def _replace_json(path: Path, document: dict[str, Any]) -> None:
    # Atomic (readers never see half a file) but not fsynced: the history is for the page, and an fsync per
    # job in the daemon's loop would cost more than losing the last entries in a power cut.
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(document, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


def read_history(state_dir: Path) -> list[dict[str, Any]]:
    """The recorded jobs, oldest first; [] when there are none or the file is unreadable."""
    try:
        document = json.loads((history_dir(state_dir) / HISTORY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, list):
        return []
    return [job for job in jobs if isinstance(job, dict) and isinstance(job.get("job_id"), str)]
