"""Helpers for the end-to-end daemon tests: configs in tmp folders, real PNGs, a real `srd run` process."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml
from PIL import Image

STARTUP_TIMEOUT = 120.0


# The installed `srd` console script, not `python -m srd`: that puts the working directory first on
# sys.path, and from a checkout it would import the checkout's srd/, which has no compiled extensions
# (the daemon would silently run without the native kernel).
_SCRIPT = Path(sys.executable).parent / "srd"
SRD_COMMAND: tuple[str, ...] = (str(_SCRIPT),) if _SCRIPT.exists() else (sys.executable, "-m", "srd")


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate` until it is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def make_png(path: Path, size: tuple[int, int] = (32, 32), seed: int = 0) -> Path:
    """Write a small noisy RGB PNG (noise, so outputs differ and compress realistically)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def png_bytes(size: tuple[int, int] = (32, 32), seed: int = 0) -> bytes:
    """The bytes of a PNG like make_png's, for tests that write files themselves."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def write_config(root: Path, cache: Path, **overrides: Any) -> Path:
    """A daemon config for folders under `root` with fast test settings; `overrides` are top-level keys."""
    document: dict[str, Any] = {
        "inbox": "inbox",
        "outbox": "outbox",
        "errors": "errors",
        "work": "work",
        "archive": "archive",
        "watch": {"settle_seconds": 0.5, "rescan_interval": 2, "poll_interval": 0.2},
        "model": {"name": "upconv7-art", "scale": 2, "noise": -1},
        "engine": {"device": "cpu", "tile": 64, "compile_cache": str(cache)},
        "limits": {"max_pixels": 1_000_000, "job_timeout": 120, "stop_grace": 20},
        "logging": {"format": "json", "level": "info"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    root.mkdir(parents=True, exist_ok=True)
    path = root / "srd.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


class DaemonProcess:
    """`srd run --config ...` (or `srd worker`) as a child process, its JSON log captured to a file."""

    started: ClassVar[list[DaemonProcess]] = []

    @classmethod
    def reap_all(cls) -> None:
        """Kill daemons a failed test left running, so they do not outlive it."""
        while cls.started:
            daemon = cls.started.pop()
            if daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait(30)
            daemon._log.close()

    def __init__(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        log_name: str = "daemon.log",
        prefix: tuple[str, ...] = (),
        command: str = "run",
    ) -> None:
        self.config = config
        self.log_path = config.parent / log_name
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            # `prefix` runs the daemon under a wrapper that execs it (e.g. unshare with lower limits).
            [*prefix, *SRD_COMMAND, command, "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        DaemonProcess.started.append(self)

    def events(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def has_event(self, name: str) -> bool:
        return any(record.get("event") == name for record in self.events())

    def wait_ready(self) -> DaemonProcess:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}:\n{self.log_path.read_text()}")
            return self.has_event("daemon.ready")

        wait_for(ready, STARTUP_TIMEOUT, "daemon.ready")
        return self

    def job_lines(self) -> list[dict[str, Any]]:
        return [record for record in self.events() if record.get("event") == "job"]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for a daemon expected to exit on its own; returns the exit code."""
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL, as a power cut would; the worker dies with it (PR_SET_PDEATHSIG)."""
        self.process.kill()
        self.process.wait(30)
        self._log.close()


class FakeNotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; a thread reads it as systemd would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.1)
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(data.decode())

    def drain(self) -> list[str]:
        with self._lock:
            return list(self.messages)

    def saw(self, line: str) -> bool:
        return any(line in message.splitlines() for message in self.drain())

    def close(self) -> None:
        self._closed.set()
        self._reader.join()
        self.socket.close()


def visible_files(folder: Path) -> list[str]:
    """files_under without hidden names: what a user of the folder sees as finished files."""
    return [name for name in files_under(folder) if not Path(name).name.startswith(".")]


def files_under(folder: Path) -> list[str]:
    """Every file (or symlink) below `folder`, relative, sorted; hidden ones included."""
    if not folder.exists():
        return []
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    )


def stems(folder: Path) -> list[str]:
    """Stems of the finished files in a folder tree (error reports excluded)."""
    names = visible_files(folder)
    return [Path(name).name.split(".")[0] for name in names if not name.endswith(".error.json")]


def status(root: Path) -> dict[str, object]:
    try:
        document = json.loads((root / "work" / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def job_dirs(work: Path) -> list[Path]:
    """The job folders in work/ (dot folders are not jobs: the job history, .srd-history, lives there when
    status_file does)."""
    if not work.exists():
        return []
    return sorted(p for p in work.iterdir() if p.is_dir() and not p.name.startswith("."))


def queue_drained(root: Path, count: int) -> bool:
    """All `count` inputs accounted for in outbox or errors, and nothing left in the inbox or work/."""
    work_jobs = job_dirs(root / "work")  # hidden folders (.workers, .srd-history) are not jobs
    finished = len(stems(root / "outbox")) + len(stems(root / "errors"))
    return not files_under(root / "inbox") and not work_jobs and finished >= count


def assert_each_input_once(root: Path, names: list[str]) -> None:
    """Every input is in exactly one of outbox or errors, once, and no hidden temporary file is visible."""
    seen = Counter(stems(root / "outbox")) + Counter(stems(root / "errors"))
    assert seen == Counter(Path(n).stem for n in names), seen
    assert [n for n in files_under(root / "outbox") if Path(n).name.startswith(".")] == []
