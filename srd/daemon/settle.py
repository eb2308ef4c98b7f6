"""Settling: an inbox entry is taken only once its size and times have stopped changing."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What must not change while a file settles: appending, truncating or replacing a file changes one of these.
Signature = tuple[int, int, int, int, int]


def file_signature(info: os.stat_result) -> Signature:
    return (info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass
class _Pending:
    signature: Signature
    stable_since: float
    first_seen: float


@dataclass(frozen=True)
class SettledFile:
    """An inbox entry whose size and times have not changed for settle_seconds."""

    path: Path
    signature: Signature
    first_seen: float

    @property
    def is_regular(self) -> bool:
        return stat.S_ISREG(self.signature[0])

    def unchanged(self) -> bool:
        """True when the entry is still exactly what settled (checked again right before claiming)."""
        try:
            return file_signature(os.lstat(self.path)) == self.signature
        except FileNotFoundError:
            return False


class SettleTracker:
    """Holds nominated paths until their size and times are stable; never opens or follows them."""

    def __init__(self, settle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def nominate(self, path: Path) -> None:
        if path not in self._pending:
            now = self.clock()
            # A zero signature never matches a real lstat, so the first check starts the settle clock.
            self._pending[path] = _Pending((0, 0, 0, 0, 0), now, time.time())

    def collect_settled(self) -> list[SettledFile]:
        """Re-check every pending path; return and forget the ones that have settled."""
        now = self.clock()
        settled: list[SettledFile] = []
        for path, pending in list(self._pending.items()):
            try:
                info = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                del self._pending[path]
                continue
            if stat.S_ISDIR(info.st_mode):
                del self._pending[path]
                continue
            signature = file_signature(info)
            if signature != pending.signature:
                pending.signature = signature
                pending.stable_since = now
                if not stat.S_ISREG(info.st_mode):
                    # Symlinks, FIFOs and devices are never written through; they go to errors at once.
                    settled.append(SettledFile(path, signature, pending.first_seen))
                    del self._pending[path]
                continue
            if now - pending.stable_since >= self.settle_seconds:
                settled.append(SettledFile(path, signature, pending.first_seen))
                del self._pending[path]
        return settled
