"""How the daemon reports itself: one Stats object, the status.json file, and `srd status`'s rendering.

The names load on first use: `srd upscale`'s progress line needs only srd.status.measures, not the
daemon's stats, history and logging."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from srd.status.stats import InFlightJob, JobProgress, LastError, Stats
    from srd.status.status_file import StatusFile, format_status, read_status

_LAZY = {
    "InFlightJob": "srd.status.stats",
    "JobProgress": "srd.status.stats",
    "LastError": "srd.status.stats",
    "Stats": "srd.status.stats",
    "StatusFile": "srd.status.status_file",
    "format_status": "srd.status.status_file",
    "read_status": "srd.status.status_file",
}

__all__ = ["InFlightJob", "JobProgress", "LastError", "Stats", "StatusFile", "format_status", "read_status"]


def __getattr__(name: str) -> object:
    """Load a name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srd.status' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
