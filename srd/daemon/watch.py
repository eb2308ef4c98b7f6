"""Watching the inbox: a watchdog observer and periodic rescans nominate paths; nothing else happens here."""

from __future__ import annotations

import fnmatch
import os
import queue
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from srd.settings import WatchSettings

log = structlog.get_logger("srd.watch")


class PathFilter:
    """Which inbox entries are images to take: matching `patterns`, and no path part matching `ignore`."""

    def __init__(
        self, inbox: Path, patterns: tuple[str, ...], ignore: tuple[str, ...], recursive: bool
    ) -> None:
        self.inbox = inbox
        self.patterns = tuple(p.lower() for p in patterns)
        self.ignore = tuple(p.lower() for p in ignore)
        self.recursive = recursive

    def _ignored(self, name: str) -> bool:
        lowered = name.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self.ignore)

    def wanted(self, path: Path) -> bool:
        try:
            parts = path.relative_to(self.inbox).parts
        except ValueError:
            return False
        if not parts or (not self.recursive and len(parts) > 1):
            return False
        if any(self._ignored(part) for part in parts):
            return False
        name = parts[-1].lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def walk_dir_wanted(self, name: str) -> bool:
        return self.recursive and not self._ignored(name)


def scan_inbox(path_filter: PathFilter, start: Path | None = None) -> Iterator[Path]:
    """Every wanted entry under `start` (the inbox by default); symlinked folders are not descended into."""
    stack = [start or path_filter.inbox]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as iterator:
                entries = list(iterator)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if path_filter.walk_dir_wanted(entry.name):
                    stack.append(path)
            elif path_filter.wanted(path):
                yield path


class _Nominator(FileSystemEventHandler):
    """Puts every path an event mentions on a queue; filtering and checks happen in the main loop."""

    def __init__(self, sink: queue.SimpleQueue[Path], inbox: Path) -> None:
        self.sink = sink
        self.inbox = inbox
        self.inbox_lost = False  # the watched folder itself was deleted or moved away

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "moved") and Path(os.fsdecode(event.src_path)) == self.inbox:
            self.inbox_lost = True
        if event.is_directory and event.event_type not in ("created", "moved"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.sink.put(Path(os.fsdecode(raw)))


def _make_observer(config: WatchSettings) -> tuple[BaseObserver, str]:
    if config.mode == "polling" or (config.mode == "auto" and not sys.platform.startswith("linux")):
        return PollingObserver(timeout=config.poll_interval), "polling"
    return InotifyObserver(), "inotify"


def _folder_id(folder: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


class InboxWatcher:
    """Owns the observer; the daemon checks `alive` every loop and calls `restart` when it died."""

    def __init__(self, inbox: Path, config: WatchSettings) -> None:
        self.inbox = inbox
        self.config = config
        self.events: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self.path_filter = PathFilter(inbox, config.patterns, config.ignore, config.recursive)
        self._observer: BaseObserver | None = None
        self._inbox_id: tuple[int, int] | None = None
        self._nominator: _Nominator | None = None
        self.backend = ""

    def start(self) -> None:
        try:
            self._start(self.config)
        except OSError as exc:
            if self.config.mode != "auto":
                raise
            # Out of inotify watches or instances: polling is slower but sees everything. Logged as an
            # error because the admin should raise fs.inotify.max_user_watches / max_user_instances.
            self.stop()
            log.error(
                "watch.inotify_unavailable",
                error=str(exc),
                fallback="polling",
                hint="raise the sysctl fs.inotify.max_user_watches or max_user_instances, or set watch.mode",
            )
            self._start(self.config.model_copy(update={"mode": "polling"}))

    def _start(self, config: WatchSettings) -> None:
        self._inbox_id = _folder_id(self.inbox)
        observer, backend = _make_observer(config)
        self._nominator = _Nominator(self.events, self.inbox)
        observer.schedule(self._nominator, str(self.inbox), recursive=config.recursive)
        try:
            observer.start()
        except BaseException:
            observer.stop()  # emitters that did start must not linger
            raise
        self._observer, self.backend = observer, backend

    def check_inbox(self) -> str:
        """`ok`, `missing`, or `replaced` when the inbox is not the folder the observer watches."""
        identity = _folder_id(self.inbox)
        if identity is None:
            return "missing"
        # A re-created folder may get the old inode number back, so the deletion event is what tells.
        lost = self._nominator is not None and self._nominator.inbox_lost
        return "ok" if identity == self._inbox_id and not lost else "replaced"

    @property
    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def drain(self) -> list[Path]:
        """Nominated paths since the last call, filtered to wanted entries, without duplicates."""
        seen: dict[Path, None] = {}
        while True:
            try:
                path = self.events.get_nowait()
            except queue.Empty:
                break
            if self.path_filter.wanted(path):
                seen[path] = None
            elif self._is_new_folder(path):
                # A folder moved in brings files that produce no events of their own.
                seen.update(dict.fromkeys(scan_inbox(self.path_filter, path)))
        return list(seen)

    def _is_new_folder(self, path: Path) -> bool:
        return (
            path != self.inbox
            and path.is_dir()
            and not path.is_symlink()
            and self.path_filter.walk_dir_wanted(path.name)
        )

    def rescan(self) -> list[Path]:
        return list(scan_inbox(self.path_filter))
