"""Helpers for the `srd web` tests: the real `srd web` process, and http.client over its UNIX socket."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.daemon import SRD_COMMAND, wait_for


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX stream socket (the Host header stays whatever the request says)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    connection: http.client.HTTPConnection,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    host: str | None = "localhost",
) -> Response:
    """One request on a fresh connection; `host` None sends no Host header at all."""
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        body = answer.read()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, body)
    finally:
        connection.close()


class WebProcess:
    """`srd web --config ...` as a child process; its addresses come from its web.listening log line."""

    def __init__(self, config: Path, log_name: str = "web.log") -> None:
        self.log_path = config.parent / log_name
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*SRD_COMMAND, "web", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        self.addresses: list[str] = []

    def wait_listening(self, timeout: float = 30.0) -> WebProcess:
        def listening() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"srd web exited {self.process.returncode}:\n{self.log_path.read_text()}"
                )
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("{") and json.loads(line).get("event") == "web.listening":
                    self.addresses = json.loads(line)["addresses"]
                    return True
            return False

        wait_for(listening, timeout, "srd web to listen")
        return self

    @property
    def socket_path(self) -> Path:
        return Path(next(a for a in self.addresses if a.startswith("unix:")).removeprefix("unix:"))

    @property
    def url(self) -> str:
        return next(a for a in self.addresses if a.startswith("http://"))

    @property
    def port(self) -> int:
        match = re.search(r":(\d+)$", self.url)
        assert match is not None
        return int(match.group(1))

    def unix(self) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.socket_path)

    def tcp(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        finally:
            self._log.close()
