"""The status file the daemon keeps current, and how `srd status` renders it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from srd.jobs.fsops import write_json_replace

STALE_AFTER = 30.0  # seconds without an update before a live-looking status is reported as stale
HEARTBEAT = 5.0  # seconds between rewrites of an unchanged status


class StatusFile:
    """Writes the daemon's state atomically, at most every `interval` seconds unless forced."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
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
        write_json_replace(self.path, {**document, "pid": os.getpid(), "updated_at": time.time()})


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


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


def format_status(document: dict[str, Any], now: float) -> tuple[str, bool]:
    """Render a status document; the flag says whether the daemon looks alive."""
    age = now - float(document.get("updated_at", 0))
    alive = document.get("state") != "stopped" and _pid_alive(document.get("pid")) and age < STALE_AFTER
    state = document.get("state", "unknown") if alive else f"not running (last state {document.get('state')})"
    queue = document.get("queue", {})
    in_flight = document.get("in_flight") or []
    last_error = document.get("last_error")
    lines = [
        f"state:      {state}",
        f"pid:        {document.get('pid')}   updated {age:.0f} s ago",
        f"model:      {document.get('model')} on {document.get('device')}",
        f"watcher:    {document.get('observer')}",
        f"queue:      {queue.get('waiting', 0)} waiting, {queue.get('settling', 0)} settling",
        "in flight:  "
        + (", ".join(f"{job['input']} for {now - job['since']:.0f} s" for job in in_flight) or "nothing"),
        f"done:       {document.get('done', 0)}",
        f"failed:     {document.get('failed', 0)}",
        "last error: "
        + (f"{last_error['input']}: {last_error['reason']} ({last_error['at']})" if last_error else "none"),
    ]
    return "\n".join(lines), alive
