"""Several workers in one host: two forced host CPU devices, one supervised worker on each."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from support.daemon import (
    DaemonProcess,
    assert_each_input_once,
    files_under,
    make_png,
    queue_drained,
    status,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reap_daemons")]


def ready_workers(root: Path, holding: frozenset[str] = frozenset()) -> dict[str, int]:
    """Device -> pid of the workers status.json shows ready (and holding one of `holding`, if given)."""
    workers = status(root).get("workers") or []
    assert isinstance(workers, list)
    return {
        w["device"]: w["pid"]
        for w in workers
        if w.get("state") == "ready" and w.get("pid") and (not holding or holding & set(w.get("jobs") or []))
    }


def test_two_devices_both_busy_and_one_crash_leaves_the_other(tmp_path: Path, cache: Path) -> None:
    """engine.devices: 2 runs a worker on cpu:0 and cpu:1; SIGKILL of one leaves the other working."""
    config = write_config(
        tmp_path, cache, engine={"device": "cpu", "devices": 2}, watch={"settle_seconds": 0.2}
    )
    # Slow writes keep both workers holding jobs long enough for status to show it and the kill to land.
    slow = frozenset(f"b{i:02d}.png" for i in range(4))
    faults = ",".join(f"slow_write:{name}" for name in sorted(slow))
    daemon = DaemonProcess(config, env={"SRD_TEST_FAULT": faults}).wait_ready()
    wait_for(lambda: len(ready_workers(tmp_path)) == 2, 120, "both workers ready")
    first = [f"a{i:02d}.png" for i in range(12)]
    for index, name in enumerate(first):
        make_png(tmp_path / "inbox" / name, size=(96, 96), seed=index)
    wait_for(lambda: queue_drained(tmp_path, len(first)), 120, "the first batch")
    assert {line["device"] for line in daemon.job_lines()} == {"cpu:0", "cpu:1"}

    survivor = ready_workers(tmp_path)["cpu:0"]
    second = [f"b{i:02d}.png" for i in range(12)]
    for index, name in enumerate(second):
        make_png(tmp_path / "inbox" / name, size=(96, 96), seed=100 + index)
    wait_for(lambda: "cpu:1" in ready_workers(tmp_path, slow), 60, "cpu:1 holding a job")
    os.kill(ready_workers(tmp_path)["cpu:1"], signal.SIGKILL)
    wait_for(lambda: queue_drained(tmp_path, len(first) + len(second)), 180, "the second batch")
    lost = [e for e in daemon.events() if e.get("event") == "worker.lost"]
    assert [(e["device"], e["phase"]) for e in lost] == [("cpu:1", "busy")]
    assert ready_workers(tmp_path)["cpu:0"] == survivor, "the other worker was restarted too"
    lost_at = lost[0]["timestamp"]
    assert any(line["device"] == "cpu:0" and line["timestamp"] > lost_at for line in daemon.job_lines())
    assert daemon.stop() == 0
    assert_each_input_once(tmp_path, first + second)
    assert files_under(tmp_path / "errors") == []
