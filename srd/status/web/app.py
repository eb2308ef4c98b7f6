"""The HTTP side of `srd web`: routes, the security headers, the Host allow-list and the CSRF check.

One handler class on the standard library's http.server. Every response carries a CSP that allows
nothing but the page's own script, style, images and fetches; a request whose Host is not allowed is
refused before routing (DNS rebinding); paths are matched against a fixed set of routes, and the only
variable part of any route, a job id, is looked up, never joined to a path as given.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from srd import __version__
from srd.status.metrics import CONTENT_TYPE as METRICS_TYPE
from srd.status.metrics import render_metrics
from srd.status.web.views import RetryError, StateReader

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
STATIC = {
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
THUMBNAIL = re.compile(r"/thumbs/([0-9a-f-]{1,40})/(before|after)\.webp")
RETRY = re.compile(r"/api/errors/([0-9a-f-]{1,40})/retry")
SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

log = structlog.get_logger("srd.web")


def _static(name: str) -> bytes:
    return resources.files("srd.status.web").joinpath("static", name).read_bytes()


def host_name(header: str | None) -> str | None:
    """The host of a Host header without its port, lower-cased ("[::1]:80" -> "::1"); None if malformed."""
    if not header or any(ch in header for ch in " /\\@"):
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        if end < 0 or not re.fullmatch(r"(:\d{1,5})?", header[end + 1 :]):
            return None
        return header[1:end]
    host, sep, port = header.rpartition(":")
    if sep and port.isdigit() and len(port) <= 5:
        return host if host and ":" not in host else None
    return header if ":" not in header else None


@dataclass
class WebApp:
    """What every request handler shares: the reader, the allowed hosts, the action policy, the secrets."""

    reader: StateReader
    allowed_hosts: frozenset[str]
    actions: bool
    token: str | None = None  # the admin's token: actions over TCP need it
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def index(self) -> bytes:
        page = _static("index.html").decode("utf-8")
        return (
            page.replace("{{csrf}}", html.escape(self.csrf))
            .replace("{{version}}", html.escape(__version__))
            .encode()
        )


def _same(sent: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def _json_bytes(document: object) -> bytes:
    # Names are the inbox writer's: ASCII escapes (a name that is not UTF-8 arrives as lone surrogates),
    # and < > & escaped too, so JSON shown anywhere as HTML stays inert.
    text = json.dumps(document, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("ascii")


class WebHandler(BaseHTTPRequestHandler):
    """One request; `server.app` is the shared WebApp."""

    protocol_version = "HTTP/1.1"
    # Even a malformed request line is answered with a status line and the security headers, never as a
    # bare HTTP/0.9 body.
    default_request_version = "HTTP/1.0"
    server_version = "srd-web"
    sys_version = ""
    timeout = 30  # a client that sends nothing for this long is dropped

    @property
    def app(self) -> WebApp:
        app: WebApp = self.server.app  # type: ignore[attr-defined]
        return app

    @property
    def over_unix_socket(self) -> bool:
        return self.server.socket.family == socket.AF_UNIX  # type: ignore[attr-defined,no-any-return]

    def version_string(self) -> str:
        return self.server_version

    def address_string(self) -> str:
        return "unix" if self.over_unix_socket else str(self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one structured line per request instead, in _send

    # -- responses -----------------------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        level = log.debug if status < 400 and self.command in ("GET", "HEAD") else log.info
        level(
            "web.request",
            method=self.command,
            path=getattr(self, "path", "")[:200],
            status=status,
            peer=self.address_string(),
        )

    def _json(self, status: int, document: object) -> None:
        self._send(status, _json_bytes(document), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # -- request checks ------------------------------------------------------------------------------------

    def _checked_path(self) -> str | None:
        """The path of a request with an allowed Host and a plain path; otherwise answers it, and None."""
        host = host_name(self.headers.get("Host"))
        if host is None or host not in self.app.allowed_hosts:
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "this Host is not served here (web.allowed_hosts)")
            return None
        target = self.path
        if not target.startswith("/") or target.startswith("//"):
            self._error(HTTPStatus.BAD_REQUEST, "only origin-form request targets are served")
            return None
        path = urlsplit(target).path
        if not SAFE_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
            self._error(HTTPStatus.BAD_REQUEST, "not a path this server has")
            return None
        return path

    def _may_act(self) -> str | None:
        """Why an action is refused, or None when it may run."""
        app = self.app
        origin = self.headers.get("Origin")
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        refusals = (
            (not app.actions, "actions are off (web.actions)"),
            (
                not _same(self.headers.get("X-CSRF-Token", ""), app.csrf),
                "missing or wrong CSRF token (reload)",
            ),
            (
                bool(origin) and host_name(urlsplit(origin or "").netloc) not in app.allowed_hosts,
                "cross-origin",
            ),
            (self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"), "cross-site"),
            # Over TCP anyone on the host can connect: the admin's token is needed as well.
            (not self.over_unix_socket and app.token is None, "actions over TCP need web.token_file"),
            (not self.over_unix_socket and not _same(bearer, app.token or ""), "missing or wrong token"),
        )
        return next((why for refused, why in refusals if refused), None)

    # -- methods -------------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self._checked_path()
        if path is None:
            return
        reader = self.app.reader
        if path == "/":
            self._send(HTTPStatus.OK, self.app.index(), "text/html; charset=utf-8")
        elif path in STATIC:
            name, content_type = STATIC[path]
            self._send(HTTPStatus.OK, _static(name), content_type, {"Cache-Control": "no-cache"})
        elif path == "/api/status":
            view, _ = reader.status()
            view["actions"] = self._action_mode()
            self._json(HTTPStatus.OK, view)
        elif path == "/api/jobs":
            self._json(HTTPStatus.OK, reader.jobs())
        elif path == "/metrics":
            view, alive = reader.status()
            self._send(HTTPStatus.OK, render_metrics(view, alive=alive).encode(), METRICS_TYPE)
        elif path == "/healthz":
            view, alive = reader.status()
            self._json(
                HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE,
                {"alive": alive, "state": view.get("state")},
            )
        elif path == "/readyz":
            view, alive = reader.status()
            ready = alive and bool(view.get("ready"))
            self._json(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, {"ready": ready})
        elif match := THUMBNAIL.fullmatch(path):
            self._thumbnail(*match.groups())
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        path = self._checked_path()
        if path is None:
            return
        length_header = self.headers.get("Content-Length") or "0"
        length = int(length_header) if length_header.isdigit() else -1
        if not 0 <= length <= 4096:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too large")
            return
        self.rfile.read(length)
        match = RETRY.fullmatch(path)
        if match is None:
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        refused = self._may_act()
        if refused is not None:
            self._error(HTTPStatus.FORBIDDEN, refused)
            return
        try:
            moved = self.app.reader.retry(match.group(1))
        except RetryError as exc:
            self._error(exc.status, str(exc))
            return
        log.info("web.retry", job_id=match.group(1), input=moved, at=time.time())
        self._json(HTTPStatus.OK, {"retried": moved})

    def _action_mode(self) -> str:
        if not self.app.actions:
            return "off"
        return "on" if self.over_unix_socket else ("token" if self.app.token else "off")

    def _thumbnail(self, job_id: str, side: str) -> None:
        path: Path | None = self.app.reader.thumbnail(job_id, side)
        if path is None:
            self._error(HTTPStatus.NOT_FOUND, "no such thumbnail")
            return
        try:
            body = path.read_bytes()
        except OSError:
            self._error(HTTPStatus.NOT_FOUND, "no such thumbnail")
            return
        self._send(HTTPStatus.OK, body, "image/webp", {"Cache-Control": "private, max-age=86400"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (a malformed request line, an unsupported method) get the same headers.
        self.close_connection = True
        if not hasattr(self, "command") or self.command is None or not hasattr(self, "headers"):
            self.command = "GET"
        self._error(code, message or HTTPStatus(code).phrase)
