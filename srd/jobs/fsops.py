"""Crash-safe file operations: fsynced temporary files, publishing and moving without replacing a file."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Hard links are how we publish without replacing; these errnos mean the filesystem has none (FAT, some FUSE).
_NO_HARDLINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK})
MAX_SUFFIX = 10_000
NAME_MAX = 255  # bytes in one path component on Linux file systems


def fit_name(filename: str, reserve: int = 0) -> str:
    """`filename` with its stem shortened so that it plus `reserve` more bytes fits one path component.

    Inbox names may already be 255 bytes long; every name srd derives from one (numbered variants, the
    `.error.json` report, hidden temporary names) must still fit, or publishing would fail forever.
    """
    limit = NAME_MAX - reserve
    if len(os.fsencode(filename)) <= limit:
        return filename
    stem, dot, suffix = filename.rpartition(".")
    if not dot or not stem or len(os.fsencode(dot + suffix)) > limit // 2:
        stem, dot, suffix = filename, "", ""
    tail = dot + suffix
    while stem and len(os.fsencode(stem + tail)) > limit:
        stem = stem[:-1]
    return stem + tail


def hidden_temp_name(filename: str, tag: str) -> str:
    """A hidden temporary name derived from `filename`: `.NAME<tag>`, shortened to fit."""
    return "." + fit_name(filename, reserve=1 + len(os.fsencode(tag))) + tag


def staging_dir(temp: Path) -> Path:
    """The hidden folder beside a job's temporary output where a job of several outputs (output.tiff_pages
    `separate`) stages them: `.NAME.srd-JOB.tmp` -> `.NAME.srd-JOB.d` (shorter, so it fits too)."""
    return temp.with_name(temp.name.removesuffix(".tmp") + ".d")


def fsync_dir(directory: Path) -> None:
    """Make renames and links inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Make a file another library wrote (PyAV's muxers) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, write: Callable[[BinaryIO], object], mode: int = 0o644) -> None:
    """Create `path` (replacing a stale file of ours), let `write` fill it, and fsync it; the name must be
    ours alone. `mode` is filtered by the umask, as for any file a process creates."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_file_synced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` (replacing a stale file of ours) and fsync it; the name must be ours alone."""
    write_synced(path, lambda handle: handle.write(data), mode)


def numbered_name(filename: str, number: int) -> str:
    """`photo.png` -> `photo-2.png` for number 2; number 0 is the name itself."""
    if number == 0:
        return fit_name(filename)
    marker = f"-{number}"
    stem, dot, suffix = fit_name(filename, reserve=len(marker)).rpartition(".")
    if not dot or not stem:
        return f"{stem}{dot}{suffix}{marker}"
    return f"{stem}{marker}.{suffix}"


def link_exclusive(src: Path, dst: Path) -> None:
    """Give `src`'s file the new name `dst`, failing with FileExistsError rather than replacing anything."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
        # No hard links here: reserve the name exclusively, then rename over our own placeholder.
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        os.close(fd)
        try:
            shutil.copy2(src, dst, follow_symlinks=False)
        except BaseException:
            dst.unlink(missing_ok=True)
            raise


def link_no_replace(src: Path, directory: Path, filename: str) -> Path:
    """Link `src` into `directory` as `filename`, or the first free numbered variant; returns the new path."""
    for number in range(MAX_SUFFIX):
        candidate = directory / numbered_name(filename, number)
        try:
            link_exclusive(src, candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, f"no free name for {filename} in {directory}")


def publish_output(temp: Path, directory: Path, filename: str, on_linked: Callable[[Path], None]) -> Path:
    """Publish a fully written, fsynced temporary file under its final name without replacing anything.

    `on_linked(final)` runs after the final name is durable and before the temporary name goes away, so a
    crash at any point leaves either the temporary file (link count 1: not published) or a record of the
    final name, never an unknown second copy.
    """
    final = link_no_replace(temp, directory, filename)
    fsync_dir(directory)
    on_linked(final)
    temp.unlink(missing_ok=True)
    fsync_dir(directory)
    return final


def is_published_temp(temp: Path) -> bool:
    """True when a leftover temporary output already has its final name (a crash between link and unlink)."""
    try:
        return os.lstat(temp).st_nlink >= 2
    except FileNotFoundError:
        return False


def find_other_name(temp: Path, folder: Path | None = None) -> Path | None:
    """The other name of a published temporary file, found by inode in `folder` (default: its own)."""
    info = os.lstat(temp)
    folder = temp.parent if folder is None else folder
    with os.scandir(folder) as entries:
        for entry in entries:
            if Path(entry.path) != temp and entry.inode() == info.st_ino:
                return Path(entry.path)
    return None


def move_no_replace(src: Path, directory: Path, filename: str) -> Path:
    """Move `src` (a file, symlink or FIFO: never followed) into `directory` without replacing anything."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        final = link_no_replace(src, directory, filename)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        final = _copy_across_filesystems(src, directory, filename)
    fsync_dir(directory)
    src.unlink()
    fsync_dir(src.parent)
    return final


def _copy_across_filesystems(src: Path, directory: Path, filename: str) -> Path:
    info = os.lstat(src)
    temp = directory / hidden_temp_name(filename, ".srd-move.tmp")
    temp.unlink(missing_ok=True)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src), temp)
    elif stat.S_ISREG(info.st_mode):
        shutil.copy2(src, temp, follow_symlinks=False)
        fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    else:
        # FIFOs and devices cannot be copied meaningfully; leave an empty marker with the original name.
        write_file_synced(temp, b"")
    try:
        return link_no_replace(temp, directory, filename)
    finally:
        temp.unlink(missing_ok=True)


def write_json_no_replace(directory: Path, filename: str, document: dict[str, object]) -> Path:
    """Write a JSON document atomically under `filename` (or a numbered variant) in `directory`."""
    temp = directory / hidden_temp_name(filename, ".srd.tmp")
    write_file_synced(temp, (json.dumps(document, indent=2, default=str) + "\n").encode("utf-8"))
    try:
        final = link_no_replace(temp, directory, filename)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(directory)
    return final


def write_json_replace(path: Path, document: dict[str, object]) -> None:
    """Atomically replace a JSON file we own (job records, the status file)."""
    temp = path.with_name(f".{path.name}.tmp")
    write_file_synced(temp, (json.dumps(document, indent=2, default=str) + "\n").encode("utf-8"))
    os.replace(temp, path)
