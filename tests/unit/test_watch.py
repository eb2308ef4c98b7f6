"""Tests for srd.watch: filtering, rescans, and real inotify and polling observers nominating files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from srd.daemon.watch import InboxWatcher, PathFilter, scan_inbox
from srd.settings import WatchSettings


def test_filter_takes_images_and_skips_ignored_names(tmp_path: Path) -> None:
    """Patterns are case-insensitive; dotfiles, partial downloads and ignored folders are skipped."""
    config = WatchSettings()
    path_filter = PathFilter(tmp_path, config.patterns, config.ignore, recursive=True)
    assert path_filter.wanted(tmp_path / "a.PNG")
    assert path_filter.wanted(tmp_path / "sub" / "b.jpg")
    for name in (".hidden.png", "a.png.part", "a.tmp", "x.crdownload", "notes.txt", ".git/a.png"):
        assert not path_filter.wanted(tmp_path / name), name
    assert not path_filter.wanted(tmp_path.parent / "outside.png")
    flat = PathFilter(tmp_path, config.patterns, config.ignore, recursive=False)
    assert not flat.wanted(tmp_path / "sub" / "b.jpg")


def test_scan_lists_wanted_files_recursively(tmp_path: Path) -> None:
    """A rescan finds files in subfolders but not in ignored ones or through folder symlinks."""
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "sub" / "b.png").write_bytes(b"")
    (tmp_path / ".cache" / "c.png").write_bytes(b"")
    (tmp_path / "loop").symlink_to(tmp_path / "sub")
    config = WatchSettings()
    found = scan_inbox(PathFilter(tmp_path, config.patterns, config.ignore, recursive=True))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == ["a.png", "sub/b.png"]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["inotify", "polling"])
def test_observer_nominates_created_moved_and_folder_contents(tmp_path: Path, mode: str) -> None:
    """Created files, files renamed into the inbox and files inside a moved-in folder are nominated."""
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    watcher = InboxWatcher(inbox, WatchSettings(mode=mode, poll_interval=0.1))
    watcher.start()
    try:
        assert watcher.alive and watcher.backend == mode
        seen: set[Path] = set()
        (inbox / "new.png").write_bytes(b"x")
        (outside / "moved.png").write_bytes(b"x")
        (outside / "moved.png").rename(inbox / "moved.png")
        (outside / "folder").mkdir()
        (outside / "folder" / "inner.png").write_bytes(b"x")
        (outside / "folder").rename(inbox / "folder")
        (inbox / "skip.part").write_bytes(b"x")
        expected = {inbox / "new.png", inbox / "moved.png", inbox / "folder" / "inner.png"}

        def all_seen() -> bool:
            seen.update(watcher.drain())
            return expected <= seen

        wait_for(all_seen)
        assert inbox / "skip.part" not in seen
    finally:
        watcher.stop()
    assert not watcher.alive
