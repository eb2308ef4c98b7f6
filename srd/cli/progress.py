"""What `srd upscale` tells a person while it works: a line per finished file, a live line on a terminal
for the file in hand (network tiles or animation frames done, and the time left), and a summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from srd.status.measures import seconds_left

CLEAR = "\r\033[K"


class Progress:
    """Writes to `out` (stderr); `live` adds the redrawn status line (a terminal, or --progress always)."""

    def __init__(self, total: int, *, live: bool, out: TextIO | None = None) -> None:
        self.total = total
        self.live = live
        self.out = out if out is not None else sys.stderr
        self.done = self.failed = self.skip_count = 0
        self.output_pixels = 0
        self.started = time.perf_counter()
        self._index = 0
        self._status = ""
        self._path = Path()
        self._file_started = self.started

    def _show(self, text: str) -> None:
        if self.live:
            self._status = text
            self.out.write(CLEAR + text)
            self.out.flush()

    def _line(self, text: str) -> None:
        """A permanent line, written above the live status line."""
        self.out.write((CLEAR if self.live and self._status else "") + text + "\n")
        self._status = ""
        self.out.flush()

    def start(self, path: Path) -> None:
        """A new input is being read."""
        self._index += 1
        self._path = path
        self._file_started = time.perf_counter()
        self._show(f"[{self._index}/{self.total}] {path} ...")

    def sized(self, width: int, height: int) -> None:
        """The input in hand is decoded: say its size while it is upscaled."""
        self._show(f"[{self._index}/{self.total}] {self._path} {width}x{height} ... upscaling")

    def advance(self, done: int, total: int, unit: str = "tiles") -> None:
        """`done` of the `total` units (network tiles, frames) of the file in hand are finished."""
        if not self.live or total <= 0:
            return
        elapsed = time.perf_counter() - self._file_started
        eta = seconds_left(elapsed, done, total) or 0.0
        base = self._status.split(" ... ")[0] if self._status else f"[{self._index}/{self.total}]"
        self._show(f"{base} ... {100 * done // total}% ({done}/{total} {unit}), about {eta:.0f} s left")

    def finished(self, path: Path, output: Path, size: tuple[int, int]) -> None:
        """An output was written."""
        self.done += 1
        self.output_pixels += size[0] * size[1]
        elapsed = time.perf_counter() - self._file_started
        self._line(f"[{self._index}/{self.total}] {path} -> {output} ({elapsed:.2f} s)")

    def skipped(self, path: Path, output: Path) -> None:
        """An input left alone because its output exists (--skip-existing)."""
        self.skip_count += 1
        self._line(f"[{self._index}/{self.total}] {path}: skipped, {output} exists")

    def failed_with(self, text: str) -> None:
        """An input failed; `text` says which and why."""
        self.failed += 1
        self._line(text)

    def interrupted(self, by: str) -> None:
        """The run was stopped (Ctrl-C, SIGTERM) while a file was in hand: say what is left unfinished."""
        unfinished = self.total - self.done - self.failed - self.skip_count
        current = f" while upscaling {self._path} (no partial output is left)" if self._index else ""
        self._line(
            f"srd: stopped by {by}{current}; {self.done} of {self.total} done, {self.failed} failed,"
            f" {unfinished} not written"
        )

    def note(self, text: str) -> None:
        """Something to say once."""
        self._line(text)

    def summary(self) -> None:
        """Done, failed, time and output megapixels per second."""
        seconds = time.perf_counter() - self.started
        rate = self.output_pixels / 1e6 / seconds if seconds > 0 else 0.0
        failed = f", {self.failed} failed" if self.failed else ""
        failed += f", {self.skip_count} skipped (outputs exist)" if self.skip_count else ""
        self._line(
            f"srd: {self.done} of {self.total} done{failed} in {seconds:.1f} s ({rate:.3g} output Mpx/s)"
        )
