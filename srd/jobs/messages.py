"""The typed protocol between the daemon and a worker: frozen, picklable dataclasses, never plain dicts.

One protocol for the local spawned worker, a pool of device workers and, later, a Celery task: the daemon
sends a `JobSpec` (or `Stop`); a worker answers `Ready` or `Fatal` once, then `Heartbeat`s, `Progress`
reports, `Computed` (ready for the next job) and one `JobDone` or `JobFailed` per job.
"""

from __future__ import annotations

import errno
import traceback
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from srd.errors import ExitCode, InputError, ModelError, SrdError, UsageError
from srd.jobs.fsops import staging_dir
from srd.settings import OutputSettings

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
# The worker could not build its engine because of what the config asks for (an unknown model, an
# impossible tile), not because it crashed: the daemon exits 78 so systemd stops restarting it.
_SETTINGS_ERRORS = (ModelError, UsageError)


class FailureKind(Enum):
    """Whose fault a failed job is, which decides what the daemon does with it."""

    INPUT = "input"  # the file's: permanent, straight to errors
    NO_SPACE = "no_space"  # the machine's (ENOSPC, EDQUOT): kept claimed until space returns, uncharged
    TRANSIENT = "transient"  # unknown: charged an attempt and retried until the attempts run out


class FatalKind(Enum):
    """Why a worker could not start."""

    SETTINGS = "settings"  # the config names a model or engine setting that cannot run
    CRASH = "crash"  # anything else while loading or compiling the model


@dataclass(frozen=True)
class JobSpec:
    """One job handed to a worker: what to read, where to write the fsynced temporary output, and how."""

    job_id: str
    input: Path
    temp: Path
    output: OutputSettings
    max_pixels: int
    max_bytes: int
    max_frames: int = 1000
    # Where the worker writes the job's before/after thumbnails for the status page (None: it does not).
    thumbnails: Path | None = None
    thumbnail_size: int = 320
    max_video_seconds: float = 10_800.0
    # A folder of the job's own that outlives a crash (the daemon's work/<job>/video), where a video job
    # keeps its finished segments; None: a hidden folder beside `temp`, removed once the output is written.
    work: Path | None = None

    @property
    def staging(self) -> Path:
        """Where a job of several outputs (output.tiff_pages `separate`) writes them (srd/jobs/pages.py)."""
        return staging_dir(self.temp)


@dataclass(frozen=True)
class Stop:
    """Asks an idle worker to exit once its last output is written."""


@dataclass(frozen=True)
class Ready:
    """The worker built and compiled its engine and takes jobs."""

    model_id: str
    device: str
    pid: int
    conv: str = ""  # which convolution path runs, and why (Engine.conv_description)


@dataclass(frozen=True)
class Fatal:
    """The worker could not start; `exit_code` is what the daemon exits with."""

    kind: FatalKind
    exit_code: ExitCode
    error_type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> Fatal:
        if isinstance(exc, _SETTINGS_ERRORS):
            kind, exit_code = FatalKind.SETTINGS, ExitCode.CONFIG
        else:
            kind = FatalKind.CRASH
            exit_code = exc.exit_code if isinstance(exc, SrdError) else ExitCode.SOFTWARE
        trace = "".join(traceback.format_exception(exc))
        return cls(kind, exit_code, type(exc).__name__, str(exc), trace)


@dataclass(frozen=True)
class Heartbeat:
    """The worker is alive (sent on a timer, whatever the job loop is doing)."""


SEGMENTS = "segments"  # the Progress unit of a video job's durable segments, which restart its timeout


@dataclass(frozen=True)
class Progress:
    """How far the job in hand is: `done` of `total` units (network tiles, an animation's or a video's
    frames, or a video's durable segments: SEGMENTS)."""

    job_id: str
    done: int
    total: int
    unit: str = "tiles"


@dataclass(frozen=True)
class Computed:
    """The job is upscaled and being encoded: the worker can decode the next one."""

    job_id: str


@dataclass(frozen=True)
class JobDone:
    """The job's output is written and fsynced at its temporary path, ready to publish."""

    job_id: str
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    input_bytes: int
    output_bytes: int
    ms: float
    frames: int = 1  # an animation's frame count
    suffix: str = ""  # the output's suffix (output.format `same`, animations); "" for the planned one
    # A job of several outputs: their file names in the staging folder, in order (srd/jobs/pages.py); the
    # temporary output is then not written. Empty for a job of one output.
    pages: tuple[str, ...] = ()
    device: str = ""  # the device that ran it (set by the worker process)


@dataclass(frozen=True)
class JobFailed:
    """The job raised; `kind` says whose fault it is, `error_type` names the error for the report."""

    job_id: str
    kind: FailureKind
    error_type: str
    message: str
    traceback: str | None = None
    device: str = ""  # the device that ran it (set by the worker process)

    @classmethod
    def from_exception(cls, job_id: str, exc: Exception) -> JobFailed:
        if isinstance(exc, InputError):
            return cls(job_id, FailureKind.INPUT, type(exc).__name__, str(exc))
        no_space = isinstance(exc, OSError) and exc.errno in _NO_SPACE
        kind = FailureKind.NO_SPACE if no_space else FailureKind.TRANSIENT
        trace = "".join(traceback.format_exception(exc))
        return cls(job_id, kind, type(exc).__name__, str(exc), trace)


ToWorker = JobSpec | Stop
FromWorker = Ready | Fatal | Heartbeat | Progress | Computed | JobDone | JobFailed
JobResult = JobDone | JobFailed
