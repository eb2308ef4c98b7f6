"""The status file the daemon keeps current, and how `srd status` renders it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import structlog

from srd.jobs.fsops import write_json_replace
from srd.status.metrics import render_metrics, write_textfile

STALE_AFTER = 30.0  # seconds without an update before a live-looking status is reported as stale
HEARTBEAT = 5.0  # seconds between rewrites of an unchanged status

log = structlog.get_logger("srd.status")


class StatusFile:
    """Writes the daemon's state atomically, at most every `interval` seconds unless forced, and the same
    state as node_exporter's textfile (`metrics_file`) when one is configured."""

    def __init__(self, path: Path, interval: float = 1.0, metrics_file: Path | None = None) -> None:
        self.path = path
        self.metrics_file = metrics_file
        self.interval = interval
        self._metrics_failing = False
        self._last_write = 0.0
        self._last_document: dict[str, object] | None = None

    def write(self, document: dict[str, object], *, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._last_write
        # Rewrite when something changed, and every few seconds anyway so `srd status` can tell it is fresh.
        due = elapsed >= HEARTBEAT or (elapsed >= self.interval and document != self._last_document)
        if not (force or due):
            return
        self._last_document = document
        self._last_write = now
        written = {**document, "pid": os.getpid(), "updated_at": time.time()}
        write_json_replace(self.path, written)
        if self.metrics_file is not None:
            self._write_metrics(self.metrics_file, written)

    def _write_metrics(self, path: Path, written: dict[str, object]) -> None:
        try:
            write_textfile(path, render_metrics(written, alive=written["state"] != "stopped"))
        except OSError as exc:
            if not self._metrics_failing:  # once, not at every rewrite, until it works again
                log.warning("status.metrics_file_failed", path=str(path), error=str(exc))
            self._metrics_failing = True
        else:
            self._metrics_failing = False


class UnreadableStatusError(ValueError):
    """The status file exists but is not a status document (damaged, or written by something else)."""


def read_status(path: Path) -> dict[str, Any] | None:
    """The status document, or None when there is no status file; UnreadableStatusError when it is damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableStatusError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UnreadableStatusError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnreadableStatusError(f"{path} does not hold a status document")
    return document


def _job_line(job: dict[str, Any], now: float) -> str:
    """`x.png for 12 s (40%, 24/60 tiles, about 18 s left)`."""
    text = f"{job['input']} for {max(0.0, now - job['since']):.0f} s"
    progress = job.get("progress")
    if isinstance(progress, dict) and progress.get("total"):
        done, total = progress["done"], progress["total"]
        eta = progress.get("eta")
        left = f", about {eta:.0f} s left" if isinstance(eta, int | float) else ""
        text += f" ({100 * done // total}%, {done}/{total} {progress.get('unit', 'tiles')}{left})"
    return text


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by the service user
    return True


def daemon_alive(document: dict[str, Any], now: float) -> bool:
    """`srd status`'s liveness test: not stopped, its pid alive, and the file rewritten recently."""
    try:
        age = now - float(document.get("updated_at", 0))
    except (TypeError, ValueError):
        return False
    return document.get("state") != "stopped" and _pid_alive(document.get("pid")) and age < STALE_AFTER


def format_status(document: dict[str, Any], now: float) -> tuple[str, bool]:
    """Render a status document; the flag says whether the daemon looks alive."""
    age = now - float(document.get("updated_at", 0))
    alive = daemon_alive(document, now)
    state = document.get("state", "unknown") if alive else f"not running (last state {document.get('state')})"
    queue = document.get("queue", {})
    in_flight = document.get("in_flight") or []
    last_error = document.get("last_error")
    waiting, claimed = int(queue.get("waiting", 0)), int(queue.get("claimed", 0))
    queue_text = f"{waiting} waiting, {queue.get('settling', 0)} settling"
    if alive:
        jobs = ", ".join(_job_line(job, now) for job in in_flight)
    else:  # what a stopped or crashed daemon left claimed in work/; the next start runs it again
        jobs = ", ".join(job["input"] for job in in_flight)
        jobs = f"nothing running ({jobs} left in work/, to run on the next start)" if jobs else ""
        unclaimed = waiting - claimed
        queue_text = f"{unclaimed} in the inbox, {claimed} claimed and left in work/ (run at the next start)"
    error = ""
    if last_error:
        # Reasons often start with the file's name already: name it once.
        reason = str(last_error["reason"]).removeprefix(f"{last_error['input']}: ")
        error = f"{last_error['input']}: {reason} ({last_error['at']})"
    lines = [
        f"state:      {state}",
        f"pid:        {document.get('pid') if alive else 'none'}   updated {age:.0f} s ago",
        f"model:      {document.get('model')} on {document.get('device')}",
        f"watcher:    {document.get('observer') or 'none'}",
        f"queue:      {queue_text}",
        f"in flight:  {jobs or 'nothing'}",
        f"done:       {document.get('done', 0)}",
        f"failed:     {document.get('failed', 0)}",
        f"last error: {error or 'none'}",
    ]
    lines.extend(_worker_lines(document.get("workers") or [], now))
    return "\n".join(lines), alive


def _worker_lines(workers: list[dict[str, Any]], now: float) -> list[str]:
    """One line per worker: host, device, state, the job in flight, when it was last heard from."""
    lines = [f"workers:    {len(workers)}"] if workers else []
    for worker in workers:
        jobs = ", ".join(worker.get("jobs") or []) or "idle"
        seen = max(0.0, now - float(worker.get("last_seen", now)))
        pid = worker.get("pid")
        lines.append(
            f"  {worker.get('host')} {worker.get('device')} {f'pid {pid}' if pid else 'no process'}: "
            f"{worker.get('state')}, {jobs}, seen {seen:.0f} s ago"
        )
    return lines
