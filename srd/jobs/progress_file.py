"""A remote job's progress, kept in its work folder (work/<job_id>/.progress.json) for the watcher to read.

With queue.backend celery the job runs on an `srd worker` host, whose device worker reports its tiles or
frames to that host only; the host writes the latest report here (at most every WRITE_INTERVAL, and only
while the job is running there), and the watcher's dispatcher reads it for status.json, `srd status` and the
status page. work/ is the folder every host mounts, and the file goes with the job's folder when the job is
published. It is written by rename, so a reader sees a whole report or the one before it, never half a
file; it is not fsynced (a report lost in a power cut is replaced by the next one). The name starts with a
dot, so that nothing reading a job folder takes it for the job's input.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from srd.jobs.messages import Progress

PROGRESS_NAME = ".progress.json"
WRITE_INTERVAL = 0.5  # seconds between two writes of one job's progress


def write_progress(directory: Path, progress: Progress) -> None:
    """Replace the job folder's progress report; OSError when the folder is gone (the job ended)."""
    path = directory / PROGRESS_NAME
    temp = path.with_name(f".{path.name}.tmp")
    document = {
        "job_id": progress.job_id,
        "done": progress.done,
        "total": progress.total,
        "unit": progress.unit,
    }
    temp.write_text(json.dumps(document) + "\n", encoding="utf-8")
    os.replace(temp, path)


def clear_progress(directory: Path) -> None:
    """Remove an earlier attempt's report before the job runs again."""
    with contextlib.suppress(OSError):
        (directory / PROGRESS_NAME).unlink(missing_ok=True)


def read_progress(directory: Path, job_id: str) -> Progress | None:
    """The job's latest progress report, or None (none yet, unreadable, or not this job's)."""
    try:
        document = json.loads((directory / PROGRESS_NAME).read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("job_id") != job_id:
            return None
        done, total, unit = document["done"], document["total"], document["unit"]
    except (OSError, ValueError, KeyError):
        return None
    if not (isinstance(done, int) and isinstance(total, int) and isinstance(unit, str)):
        return None
    return Progress(job_id, done, total, unit)
