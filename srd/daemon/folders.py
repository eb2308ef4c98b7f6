"""Start-up checks of the configured folders: created, not nested in the inbox, writable, renamable."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from srd.errors import FolderError
from srd.settings import Config, layout_problems


def _folders(config: Config) -> dict[str, Path]:
    folders = {
        "inbox": config.inbox,
        "outbox": config.outbox,
        "errors": config.errors,
        "work": config.work,
        "status_file": config.status_file.parent,
    }
    if config.archive is not None:
        folders["archive"] = config.archive
    return folders


def _probe(name: str, folder: Path) -> None:
    """Create, rename and delete a file, which is everything the daemon will do in `folder`."""
    token = secrets.token_hex(4)
    first, second = folder / f".srd-probe-{token}", folder / f".srd-probe-{token}-renamed"
    try:
        fd = os.open(first, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.rename(first, second)
        os.unlink(second)
        os.listdir(folder)
    except OSError as exc:
        for leftover in (first, second):
            leftover.unlink(missing_ok=True)
        raise FolderError(f"{name} folder {folder} is not usable: {exc.strerror or exc}") from exc


def prepare_folders(config: Config) -> None:
    """Create missing folders and refuse to start on any layout that could lose or loop over files."""
    folders = _folders(config)
    for name, folder in folders.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FolderError(f"cannot create {name} folder {folder}: {exc.strerror or exc}") from exc
    cache = config.engine.compile_cache
    if cache is not None:  # private: it holds machine code the worker will run (SECURITY.md)
        try:
            cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise FolderError(
                f"At 'engine.compile_cache': cannot create {cache}: {exc.strerror or exc}"
            ) from exc
    problems = layout_problems(config)
    if problems:
        raise FolderError("; ".join(problems))
    if os.stat(config.work).st_dev != os.stat(config.inbox).st_dev:
        raise FolderError(
            f"work folder {config.work} must be on the same filesystem as the inbox {config.inbox}, "
            "because jobs are claimed by an atomic rename"
        )
    for name, folder in folders.items():
        _probe(name, folder)


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def folder_problems(config: Config) -> list[str]:
    """What `prepare_folders` would refuse, found without creating or writing anything (`srd check-config`):
    folders inside the inbox, folders that exist but are not writable folders, missing folders whose
    nearest existing parent is not writable, and a work folder on another file system than the inbox."""
    problems = layout_problems(config)
    folders = dict(_folders(config))
    if config.engine.compile_cache is not None:
        folders["engine.compile_cache"] = config.engine.compile_cache
    for name, folder in folders.items():
        existing = _nearest_existing(folder)
        if not existing.is_dir():
            problems.append(f"At '{name}': {folder} cannot be a folder: {existing} is a file")
        elif not os.access(existing, os.W_OK | os.X_OK):
            what = (
                "is not writable" if existing == folder else f"cannot be created ({existing} is not writable)"
            )
            problems.append(f"At '{name}': {folder} {what}")
    work, inbox = _nearest_existing(config.work), _nearest_existing(config.inbox)
    if os.stat(work).st_dev != os.stat(inbox).st_dev:
        problems.append(
            f"At 'work': {config.work} must be on the same file system as the inbox {config.inbox} "
            "(jobs are claimed by an atomic rename)"
        )
    return problems
