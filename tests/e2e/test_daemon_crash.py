"""End-to-end tests of crashes and concurrency: kill -9 mid-job, a killed worker, two daemons, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from support.daemon import (
    DaemonProcess,
    assert_each_input_once,
    files_under,
    job_dirs,
    make_png,
    queue_drained,
    status,
    visible_files,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reap_daemons")]


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_kill_9_mid_job_loses_and_duplicates_nothing(tmp_path: Path, cache: Path) -> None:
    """SIGKILL the daemon while it works, start it again: each input ends in outbox or errors exactly once."""
    names = [f"k{i:02d}.png" for i in range(12)]
    for index, name in enumerate(names):
        make_png(tmp_path / "inbox" / name, size=(384, 384), seed=index)
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2})
    first = DaemonProcess(config).wait_ready()
    wait_for(first.job_lines, 120, "the first finished job")
    wait_for(lambda: status(tmp_path).get("worker_pid"), 10, "the worker pid")
    worker_pid = status(tmp_path)["worker_pid"]
    assert isinstance(worker_pid, int)
    first.kill()
    wait_for(lambda: pid_gone(worker_pid), 10, "the worker to die with the daemon")
    assert len(first.job_lines()) < len(names), "the kill came too late to test anything"

    second = DaemonProcess(config, log_name="daemon2.log").wait_ready()
    wait_for(lambda: queue_drained(tmp_path, len(names)), 180, "every input to finish")
    assert second.stop() == 0
    assert_each_input_once(tmp_path, names)
    assert files_under(tmp_path / "errors") == []
    assert sorted(files_under(tmp_path / "archive")) == names


def worker_pids(daemon: DaemonProcess) -> list[int]:
    """Pids of every worker the daemon has started, from its worker.ready log lines."""
    return [int(e["pid"]) for e in daemon.events() if e.get("event") == "worker.ready"]


def signal_worker_mid_job(tmp_path: Path, daemon: DaemonProcess, name: str, sig: signal.Signals) -> None:
    """Drop an image big enough (about 1 s of network time) that `sig` reaches the worker mid-job, and
    send it once the job is in flight."""
    make_png(tmp_path / "inbox" / name, size=(768, 768), seed=1)
    wait_for(lambda: status(tmp_path).get("in_flight"), 60, "the job to be in flight")
    os.kill(worker_pids(daemon)[-1], sig)


def test_killed_or_frozen_worker_is_restarted(tmp_path: Path, cache: Path) -> None:
    """A worker killed mid-job is restarted and the job retried; a frozen one is caught by its heartbeat."""
    limits = {"heartbeat_timeout": 5}
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2}, limits=limits)
    daemon = DaemonProcess(config).wait_ready()
    signal_worker_mid_job(tmp_path, daemon, "victim.png", signal.SIGKILL)
    wait_for(daemon.job_lines, 120, "the victim.png job line")
    (line,) = daemon.job_lines()
    assert line["outcome"] == "ok" and line["attempts"] == 2

    frozen = worker_pids(daemon)[-1]
    os.kill(frozen, signal.SIGSTOP)  # alive but silent, as a deadlocked process would be
    wait_for(lambda: len(worker_pids(daemon)) == 3, 120, "a third worker after the frozen one")
    lost = [e["reason"] for e in daemon.events() if e.get("event") == "worker.lost"]
    assert lost == ["crashed", "hung"]
    wait_for(lambda: pid_gone(frozen), 10, "the frozen worker to be killed")
    make_png(tmp_path / "inbox" / "after.png", seed=2)
    wait_for((tmp_path / "outbox" / "after.png").exists, 60, "after.png output")
    assert daemon.stop() == 0


def test_two_daemons_on_one_inbox_process_each_file_once(tmp_path: Path, cache: Path) -> None:
    """Two daemons on one inbox (own work folders) process each file once; a shared work/ is refused."""
    shared = {"inbox": "../inbox", "outbox": "../outbox", "errors": "../errors", "archive": "../archive"}
    config_a = write_config(tmp_path / "a", cache, **shared)
    config_b = write_config(tmp_path / "b", cache, **shared)
    daemon_a = DaemonProcess(config_a)
    daemon_b = DaemonProcess(config_b)
    daemon_a.wait_ready()
    daemon_b.wait_ready()
    intruder = DaemonProcess(config_a, log_name="intruder.log")
    assert intruder.wait_exit() == 73, "a third daemon must not share daemon a's work folder"
    assert "in use" in intruder.log_path.read_text()
    names = [f"t{i:02d}.png" for i in range(40)]
    staging = tmp_path / "staging"
    for index, name in enumerate(names):
        make_png(staging / name, size=(24, 24), seed=index)
    for name in names:
        (staging / name).rename(tmp_path / "inbox" / name)

    def all_out() -> bool:
        finished = visible_files(tmp_path / "outbox") + visible_files(tmp_path / "errors")
        return len(finished) >= len(names)

    wait_for(all_out, 120, "40 outputs")
    assert daemon_a.stop() == 0 and daemon_b.stop() == 0
    assert files_under(tmp_path / "outbox") == names
    assert files_under(tmp_path / "errors") == []
    processed = [j["input"] for d in (daemon_a, daemon_b) for j in d.job_lines()]
    assert sorted(processed) == names


def test_sigterm_past_the_grace_period_leaves_the_job_for_the_next_start(tmp_path: Path, cache: Path) -> None:
    """With no grace, SIGTERM mid-job exits 0 and leaves the job in work/; the next start finishes it."""
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2}, limits={"stop_grace": 0})
    # The worker's test-only fault hook holds slow.png's tiles for a second each, so the job is still in
    # flight when SIGTERM comes however fast this CPU upscales it (a plain 384 px image no longer was).
    daemon = DaemonProcess(config, env={"SRD_TEST_FAULT": "slow_tiles:slow.png"}).wait_ready()
    make_png(tmp_path / "inbox" / "slow.png", size=(384, 384), seed=2)
    wait_for(lambda: status(tmp_path).get("in_flight"), 60, "the job to be in flight")
    assert daemon.stop() == 0
    assert daemon.has_event("job.left_in_work"), "the job finished before SIGTERM arrived"
    (job_dir,) = job_dirs(tmp_path / "work")
    assert json.loads((job_dir / "job.json").read_text())["attempts"] == 0
    again = DaemonProcess(config, log_name="daemon2.log").wait_ready()
    wait_for(lambda: queue_drained(tmp_path, 1), 120, "the left job to finish")
    assert again.stop() == 0
    assert files_under(tmp_path / "outbox") == ["slow.png"]


def test_worker_ignores_a_sigterm_meant_for_its_process_group(tmp_path: Path, cache: Path) -> None:
    """SIGTERM reaching the worker (a shell or `timeout` signalling the group) does not cut its job short."""
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2})
    daemon = DaemonProcess(config).wait_ready()
    signal_worker_mid_job(tmp_path, daemon, "steady.png", signal.SIGTERM)
    wait_for(daemon.job_lines, 120, "the steady.png job line")
    (line,) = daemon.job_lines()
    assert line["outcome"] == "ok" and line["attempts"] == 1
    assert not daemon.has_event("worker.lost")
    assert daemon.stop() == 0


def test_a_job_over_its_timeout_goes_to_errors_after_its_attempts(tmp_path: Path, cache: Path) -> None:
    """A job that outlives limits.job_timeout gets the worker killed and, attempts used up, goes to errors."""
    limits = {"job_timeout": 1, "attempts": 1}
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2}, limits=limits)
    # The worker's test-only fault hook hangs on big.png, so the timeout does not depend on the CPU's speed.
    daemon = DaemonProcess(config, env={"SRD_TEST_FAULT": "hang:big.png"}).wait_ready()
    make_png(tmp_path / "inbox" / "big.png", size=(384, 384), seed=3)
    make_png(tmp_path / "inbox" / "small.png", size=(16, 16), seed=4)
    report = tmp_path / "errors" / "big.png.error.json"
    wait_for(report.exists, 120, "big.png.error.json")
    assert json.loads(report.read_text())["error_type"] == "AttemptsExhausted"
    assert any(e.get("reason") == "timeout" for e in daemon.events() if e.get("event") == "worker.lost")
    wait_for((tmp_path / "outbox" / "small.png").exists, 120, "small.png output after the restart")
    assert daemon.stop() == 0
