"""A claimed job's durable record: work/<job_id>/job.json beside the claimed input file."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srd.jobs.fsops import fsync_dir, write_json_replace

RECORD_NAME = "job.json"


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
    # Handed to a worker and not yet ended: if the next start finds this, the daemon died while the job ran,
    # which is charged as a lost attempt (a record without the key, from an older srd, reads as False).
    running: bool = False
    # A job of several outputs (srd/jobs/pages.py): each staged page's file name -> the name it is published
    # as, recorded before the first is published (from then on recovery completes the set), and each
    # page's published path, recorded before its staged name is removed.
    pages: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

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
            running=bool(document.get("running", False)),
            pages={str(k): str(v) for k, v in document.get("pages", {}).items()},
            outputs={str(k): str(v) for k, v in document.get("outputs", {}).items()},
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
