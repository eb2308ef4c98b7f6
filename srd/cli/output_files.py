"""Output files of `srd upscale`: written whole under a hidden name, then linked into place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from srd.errors import UsageError
from srd.jobs.fsops import fsync_dir, hidden_temp_name, link_exclusive, write_synced


def write_new_file(path: Path, write: Callable[[BinaryIO], None], *, overwrite: bool) -> None:
    """Write atomically (a hidden temporary name, fsynced, then linked into place: srd.jobs.fsops, as the
    daemon publishes); refuse to replace an existing file unless `overwrite`. The file is created 0666
    less the umask, like any file a command creates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / hidden_temp_name(path.name, f".{secrets.token_hex(4)}.part")
    try:
        write_synced(temp, write, 0o666)
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                link_exclusive(temp, path)  # never replaces a file, hard links or not
            except FileExistsError as exc:
                raise UsageError(f"{path} exists (use --overwrite to replace it)") from exc
        fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)
