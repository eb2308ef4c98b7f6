"""End-to-end tests of `srd run` on one shared daemon: real files in, upscaled files or error reports out."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.daemon import (
    SRD_COMMAND,
    DaemonProcess,
    FakeNotifySocket,
    files_under,
    job_dirs,
    make_png,
    png_bytes,
    status,
    visible_files,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow

MAX_PIXELS = 20_000  # the over-limit test image is 200 x 200


@dataclass
class Shared:
    root: Path
    config: Path
    daemon: DaemonProcess
    notify: FakeNotifySocket

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def errors(self) -> Path:
        return self.root / "errors"

    @property
    def archive(self) -> Path:
        return self.root / "archive"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("shared")
    cache = tmp_path_factory.getbasetemp() / "jax-cache"
    config = write_config(root, cache, watch={"settle_seconds": 1.0}, limits={"max_pixels": MAX_PIXELS})
    make_png(root / "inbox" / "before.png", seed=1)
    make_png(root / "inbox" / "sub" / "before2.png", seed=2)
    notify = FakeNotifySocket(root / "notify.sock")
    env = {
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "1000000",
        "SRD_TEST_FAULT": "slow_tiles:slow-tiles.png",  # 1 s per tile: its progress can be watched
    }
    daemon = DaemonProcess(config, env).wait_ready()
    yield Shared(root, config, daemon, notify)
    daemon.stop()
    notify.close()
    DaemonProcess.reap_all()


def output_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_ready_and_watchdog_are_notified(shared: Shared) -> None:
    """The fake NOTIFY_SOCKET gets READY=1 with a STATUS, then WATCHDOG=1 pings from the main loop."""
    wait_for(lambda: shared.notify.saw("READY=1"), 10, "READY=1")
    wait_for(lambda: shared.notify.saw("WATCHDOG=1"), 10, "WATCHDOG=1")
    assert any(m.startswith("STATUS=") for msg in shared.notify.drain() for m in msg.splitlines())


def test_startup_logs_backend_device_and_model(shared: Shared) -> None:
    """The daemon.ready line names the observer backend, the device, the model and the convolution path."""
    (ready,) = [e for e in shared.daemon.events() if e.get("event") == "daemon.ready"]
    assert ready["observer"] == "inotify"
    assert ready["device"].startswith("cpu")
    assert ready["model"].startswith("upconv7-art")
    assert ready["conv"] == "native (auto: srd's Winograd kernel on the CPU)"


def test_files_present_before_start_are_processed(shared: Shared) -> None:
    """Images already in the inbox (and its subfolders) at start are upscaled, subfolders mirrored."""
    wait_for((shared.outbox / "sub" / "before2.png").exists, 60, "before2.png output")
    wait_for((shared.outbox / "before.png").exists, 60, "before.png output")
    assert output_size(shared.outbox / "sub" / "before2.png") == (64, 64)
    wait_for((shared.archive / "sub" / "before2.png").exists, 10, "archived before2.png")


def test_dropped_file_is_upscaled_and_archived(shared: Shared) -> None:
    """A dropped PNG appears 2x in the outbox, its original byte-identical in the archive, one job line."""
    source = make_png(shared.inbox / "drop.png", seed=3)
    original = source.read_bytes()

    def job_line() -> list[dict[str, object]]:
        return [j for j in shared.daemon.job_lines() if j["input"] == "drop.png"]

    wait_for(job_line, 60, "the drop.png job line")
    assert output_size(shared.outbox / "drop.png") == (64, 64)
    assert (shared.archive / "drop.png").read_bytes() == original
    assert not source.exists()
    (line,) = job_line()
    assert line["outcome"] == "ok"
    assert line["input_size"] == [32, 32] and line["output_size"] == [64, 64]
    assert line["input_bytes"] == len(original) and line["output_bytes"] > 0
    assert line["ms"] > 0 and line["model"].startswith("upconv7-art")


def test_slowly_written_file_is_not_touched_until_complete(shared: Shared) -> None:
    """A file written in chunks over several seconds stays in the inbox until it is complete."""
    data = png_bytes((48, 48), seed=4)
    path = shared.inbox / "slow.png"
    chunks = [data[i : i + len(data) // 10 + 1] for i in range(0, len(data), len(data) // 10 + 1)]
    with path.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            handle.flush()
            # The writer's own pace (0.3 s per chunk, settle time 1 s); the daemon must keep its hands off.
            time.sleep(0.3)
            assert path.exists(), "the daemon took a file that was still being written"
    wait_for((shared.outbox / "slow.png").exists, 60, "slow.png output")
    assert output_size(shared.outbox / "slow.png") == (96, 96)
    assert not (shared.errors / "slow.png").exists()


def test_file_renamed_into_the_inbox_is_picked_up(shared: Shared) -> None:
    """A file written elsewhere and renamed into the inbox is processed."""
    staged = make_png(shared.root / "staging" / "renamed.png", seed=5)
    staged.rename(shared.inbox / "renamed.png")
    wait_for((shared.outbox / "renamed.png").exists, 60, "renamed.png output")


def test_existing_output_is_never_replaced(shared: Shared) -> None:
    """When the output name is taken, the new output gets a numbered name and the old file survives."""
    shared.outbox.mkdir(exist_ok=True)
    (shared.outbox / "taken.png").write_bytes(b"precious")
    make_png(shared.inbox / "taken.png", seed=6)
    wait_for((shared.outbox / "taken-1.png").exists, 60, "taken-1.png output")
    assert (shared.outbox / "taken.png").read_bytes() == b"precious"


def test_burst_of_300_files_all_arrive(shared: Shared) -> None:
    """300 files written into the inbox as fast as possible all end up upscaled, none left behind."""
    burst = shared.inbox / "burst"
    names = [f"b{i:03d}.png" for i in range(300)]
    for index, name in enumerate(names):
        make_png(burst / name, size=(16, 16), seed=100 + index)
    out = shared.outbox / "burst"
    wait_for(lambda: len(visible_files(out)) >= 300, 200, "300 outputs")
    assert files_under(out) == names
    assert files_under(shared.errors / "burst") == []
    wait_for(lambda: files_under(burst) == [], 10, "an empty burst folder")


def test_bad_files_go_to_errors_and_the_daemon_keeps_going(shared: Shared) -> None:
    """Corrupt, text-as-PNG, symlinked, FIFO and over-limit files get error reports; good ones still work."""
    outside = shared.root / "outside.png"
    outside.write_bytes(png_bytes(seed=7))
    (shared.inbox / "corrupt.png").write_bytes(png_bytes(seed=8)[:60])
    (shared.inbox / "text.png").write_text("this is not an image\n")
    (shared.inbox / "link.png").symlink_to(outside)
    os.mkfifo(shared.inbox / "pipe.png")
    make_png(shared.inbox / "huge.png", size=(200, 200), seed=9)
    make_png(shared.inbox / "after.png", seed=10)
    expected = {
        "corrupt.png": "CorruptImageError",
        "text.png": "UnsupportedFormatError",
        "link.png": "NotARegularFileError",
        "pipe.png": "NotARegularFileError",
        "huge.png": "ImageTooLargeError",
    }
    for name, error_type in expected.items():
        report_path = shared.errors / f"{name}.error.json"
        wait_for(report_path.exists, 60, f"{name}.error.json")
        report = json.loads(report_path.read_text())
        assert report["error_type"] == error_type, report
        assert report["reason"] and report["srd_version"] and report["model"]
        assert os.path.lexists(shared.errors / name)
        assert not os.path.lexists(shared.inbox / name)
    assert (shared.errors / "link.png").is_symlink()
    assert outside.read_bytes() == png_bytes(seed=7)
    wait_for((shared.outbox / "after.png").exists, 60, "after.png output")
    assert shared.daemon.process.poll() is None


def test_no_temporary_files_are_visible_in_the_outbox(shared: Shared) -> None:
    """Between jobs the outbox holds only finished outputs, no dotfiles."""
    work = shared.root / "work"
    wait_for(lambda: not job_dirs(work), 30, "an empty work folder")
    assert [name for name in files_under(shared.outbox) if Path(name).name.startswith(".")] == []


def error_reports(errors: Path) -> list[str]:
    """The error reports under the errors folder: one per failed job."""
    return [name for name in files_under(errors) if name.endswith(".error.json")]


def test_status_command_reports_counts(shared: Shared) -> None:
    """`srd status` prints the running state, the done and failed counters and the last error it caused."""

    def failed_matches_reports() -> bool:
        document = status(shared.root)
        return document.get("failed") == len(error_reports(shared.errors))

    # Whatever ran before (in any order), the failed counter is one per error report; this test adds one.
    wait_for(failed_matches_reports, 15, "the failed counter to match the error reports")
    before = len(error_reports(shared.errors))
    (shared.inbox / "status-bad.png").write_text("not an image either\n")
    wait_for((shared.errors / "status-bad.png.error.json").exists, 60, "status-bad.png.error.json")

    def counted() -> bool:
        document = status(shared.root)
        last_error = document.get("last_error")
        return (
            document.get("failed") == before + 1
            and isinstance(last_error, dict)
            and last_error.get("input") == "status-bad.png"
        )

    wait_for(counted, 15, "the status file to count status-bad.png")
    done = status(shared.root)["done"]
    result = subprocess.run(
        [*SRD_COMMAND, "status", "--config", str(shared.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "state:      running" in result.stdout
    assert f"failed:     {before + 1}" in result.stdout
    assert f"done:       {done}" in result.stdout
    assert "last error: status-bad.png: " in result.stdout


def test_progress_of_a_job_in_flight_is_reported(shared: Shared) -> None:
    """A job in flight shows its tiles done of the total in status.json and `srd status`, then finishes."""
    make_png(shared.inbox / "slow-tiles.png", size=(160, 120), seed=7)  # 6 tiles of 64, 1 s each
    seen: list[dict[str, Any]] = []

    def partly_done() -> bool:
        jobs: list[dict[str, Any]] = status(shared.root).get("in_flight") or []  # type: ignore[assignment]
        for job in jobs:
            progress = job.get("progress") if job.get("input") == "slow-tiles.png" else None
            if progress and 0 < progress["done"] < progress["total"]:
                seen.append(progress)
                return True
        return False

    wait_for(partly_done, 60, "slow-tiles.png in flight with some of its tiles done")
    assert seen[0]["unit"] == "tiles" and seen[0]["total"] == 6
    result = subprocess.run(
        [*SRD_COMMAND, "status", "--config", str(shared.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "slow-tiles.png for " in result.stdout and "/6 tiles" in result.stdout, result.stdout
    wait_for(lambda: any(n.startswith("slow-tiles") for n in visible_files(shared.outbox)), 60, "the output")


def test_sigterm_stops_cleanly_and_notifies_stopping(tmp_path: Path, cache: Path) -> None:
    """SIGTERM makes the daemon send STOPPING=1 and exit 0 (its own daemon: the shared one keeps running)."""
    config = write_config(tmp_path, cache)
    notify = FakeNotifySocket(tmp_path / "notify.sock")
    daemon = DaemonProcess(config, {"NOTIFY_SOCKET": str(notify.path)})
    try:
        daemon.wait_ready()
        make_png(tmp_path / "inbox" / "last.png", seed=11)
        wait_for((tmp_path / "outbox" / "last.png").exists, 60, "last.png output")
        assert daemon.stop() == 0
        assert notify.saw("STOPPING=1")
        assert daemon.has_event("daemon.stopped")
    finally:
        if daemon.process.poll() is None:  # not DaemonProcess.reap_all: that would stop the shared daemon too
            daemon.kill()
        notify.close()


def test_sighup_stops_cleanly_with_a_log_line(tmp_path: Path, cache: Path) -> None:
    """SIGHUP is a clean stop like SIGTERM (exit 0, daemon.stopping naming the signal), not a silent 129."""
    import signal

    daemon = DaemonProcess(write_config(tmp_path, cache))
    try:
        daemon.wait_ready()
        daemon.process.send_signal(signal.SIGHUP)
        assert daemon.wait_exit() == 0
        (stopping,) = [e for e in daemon.events() if e.get("event") == "daemon.stopping"]
        assert stopping["signal"] == "SIGHUP"
        assert daemon.has_event("daemon.stopped")
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
