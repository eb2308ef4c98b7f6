"""`srd status --config FILE`: the running daemon's state, from the status file it keeps current."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from srd.errors import ExitCode
from srd.settings import load_config
from srd.status.status_file import UnreadableStatusError, format_status, read_status


def status_command(config_path: Path) -> ExitCode:
    """Print queue depth, jobs in flight, counters and the last error; NOT_RUNNING (3) when it is not."""
    config = load_config(config_path)
    try:
        document = read_status(config.status_file)
    except UnreadableStatusError as exc:
        print(f"srd: the status file is damaged, so whether srd runs is unknown: {exc}", file=sys.stderr)
        return ExitCode.NOT_RUNNING
    if document is None:
        print(f"srd is not running (no status file at {config.status_file})", file=sys.stderr)
        return ExitCode.NOT_RUNNING
    text, alive = format_status(document, time.time())
    print(text)
    return ExitCode.OK if alive else ExitCode.NOT_RUNNING
