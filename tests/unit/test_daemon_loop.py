"""In-process tests of the daemon's main-loop duties that need no model: watcher liveness and the inbox."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import SRD_COMMAND, wait_for

from srd.daemon import Daemon
from srd.daemon.folders import prepare_folders
from srd.daemon.service import INBOX_GRACE
from srd.errors import WatchError
from srd.settings import parse_config


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    document = {"inbox": "in", "outbox": "out", "errors": "err", "work": "work", "archive": "delete"}
    config = parse_config(document, tmp_path)
    prepare_folders(config)
    instance = Daemon(config)
    instance.watcher.start()
    yield instance
    instance.watcher.stop()
    instance.notifier.close()


def test_dead_observer_is_restarted_and_the_inbox_rescanned(daemon: Daemon) -> None:
    """When the observer is found dead, the loop starts a new one and rescans, so nothing is missed."""
    daemon.watcher.stop()  # as if its thread had died
    (daemon.config.inbox / "missed.png").write_bytes(b"x")
    assert not daemon.watcher.alive
    daemon.check_inbox_and_observer()
    assert daemon.watcher.alive
    assert daemon.config.inbox / "missed.png" in daemon.scheduler.tracker


def test_an_observer_that_keeps_dying_stops_the_daemon(daemon: Daemon) -> None:
    """After repeated observer deaths the daemon gives up with WatchError (exit 74) for systemd to see."""
    with pytest.raises(WatchError, match="keeps dying"):
        for _ in range(10):
            daemon.watcher.stop()
            daemon.check_inbox_and_observer()


def test_a_vanished_inbox_stops_the_daemon_after_a_grace_period(daemon: Daemon) -> None:
    """An inbox gone for longer than INBOX_GRACE (unmounted share) is a WatchError, not a blind daemon."""
    shutil.rmtree(daemon.config.inbox)
    daemon.check_inbox_and_observer()  # within the grace period: logged, not fatal
    assert daemon.inbox_missing_since is not None
    daemon.inbox_missing_since -= INBOX_GRACE + 1  # as if the grace period had passed
    with pytest.raises(WatchError, match="disappeared"):
        daemon.check_inbox_and_observer()


def test_a_recreated_inbox_gets_a_new_observer_and_a_rescan(daemon: Daemon) -> None:
    """An inbox deleted and re-created is watched again (new observer on the new folder) and rescanned."""
    inbox = daemon.config.inbox
    shutil.rmtree(inbox)
    daemon.check_inbox_and_observer()
    inbox.mkdir()
    wait_for(lambda: daemon.watcher.check_inbox() == "replaced", 10, "the observer to report the deletion")
    (inbox / "new.png").write_bytes(b"x")
    daemon.check_inbox_and_observer()
    assert daemon.inbox_missing_since is None
    assert daemon.watcher.alive and daemon.watcher.check_inbox() == "ok"
    assert inbox / "new.png" in daemon.scheduler.tracker


@pytest.mark.slow
def test_unknown_model_exits_with_the_config_error_code(tmp_path: Path) -> None:
    """A model name the worker cannot load ends `srd run` with exit 78, so systemd does not restart it."""
    config = tmp_path / "srd.yaml"
    config.write_text(
        "inbox: in\noutbox: out\nerrors: err\nwork: work\narchive: delete\n"
        "model: {name: no-such-model}\nlogging: {format: json}\n"
    )
    result = subprocess.run(
        [*SRD_COMMAND, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 78, result.stdout + result.stderr
    assert "no-such-model" in result.stderr
