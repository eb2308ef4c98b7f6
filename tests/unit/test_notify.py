"""Tests for srd.notify: sd_notify datagrams to a real socket, path and abstract."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from srd.daemon.systemd import Notifier


def test_datagrams_reach_a_path_socket(tmp_path: Path) -> None:
    """READY, STATUS, WATCHDOG and STOPPING arrive as KEY=value lines, one datagram each."""
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(5)
        notifier = Notifier(address)
        assert notifier.ready("up")
        assert notifier.watchdog()
        assert notifier.stopping()
        notifier.close()
        ready = server.recv(4096).decode().splitlines()
        assert ready == ["READY=1", "STATUS=up", f"MAINPID={os.getpid()}"]
        assert server.recv(4096) == b"WATCHDOG=1"
        assert server.recv(4096).decode().startswith("STOPPING=1\n")


def test_abstract_socket_address() -> None:
    """An address starting with '@' names a socket in the abstract namespace."""
    name = f"srd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        with Notifier("@" + name) as notifier:
            notifier.status("hello")
        assert server.recv(4096) == b"STATUS=hello"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside systemd the notifier is disabled and never raises."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert not notifier.ready("x")


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    """WATCHDOG_USEC=10 s means a ping every 5 s; a WATCHDOG_PID for another process disables it."""
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with Notifier("@x") as notifier:
        assert notifier.watchdog_interval() == 5.0
        monkeypatch.setenv("WATCHDOG_PID", "1")
        assert notifier.watchdog_interval() is None
