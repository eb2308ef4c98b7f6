"""`srd web`'s listeners: the UNIX socket (default), a loopback TCP port when configured, or the sockets
systemd passes (srd-web.socket), each served on its own thread until SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import socketserver
import stat
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import structlog

from srd.errors import ConfigError, FolderError
from srd.settings import Config, parse_listen
from srd.status.web.app import LOCAL_HOSTS, WebApp, WebHandler
from srd.status.web.views import StateReader

SD_LISTEN_FDS_START = 3
log = structlog.get_logger("srd.web")


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """http.server over a UNIX stream socket."""

    daemon_threads = True
    app: WebApp


class TCPHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: WebApp


AnyServer = UnixHTTPServer | TCPHTTPServer


def socket_path(config: Config) -> Path:
    return config.web.socket if config.web.socket is not None else config.state_dir / "web.sock"


def _remove_stale_socket(path: Path) -> None:
    """Unlink a socket left by a crashed `srd web`; refuse to replace anything else, or a live server."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise FolderError(f"At 'web.socket': {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise FolderError(f"At 'web.socket': another server is listening on {path}")


def _bind_unix(config: Config) -> UnixHTTPServer:
    path = socket_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_socket(path)
    mode = config.web.mode
    old = os.umask(0o777 & ~mode)  # the socket never exists with wider permissions, even for an instant
    try:
        server = UnixHTTPServer(str(path), WebHandler)
    finally:
        os.umask(old)
    os.chmod(path, mode)
    if config.web.socket_group is not None:
        try:
            shutil.chown(path, group=config.web.socket_group)
        except (LookupError, OSError) as exc:
            server.server_close()
            raise ConfigError(f"At 'web.socket_group': {exc}") from None
    return server


def _bind_tcp(listen: str) -> TCPHTTPServer:
    host, port = parse_listen(listen)
    TCPHTTPServer.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return TCPHTTPServer((host, port), WebHandler)


def _systemd_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed (LISTEN_FDS), or none."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return [socket.socket(fileno=fd) for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)]


def _adopt(sock: socket.socket) -> AnyServer:
    server: AnyServer
    if sock.family == socket.AF_UNIX:
        server = UnixHTTPServer(sock.getsockname(), WebHandler, bind_and_activate=False)
    else:
        server = TCPHTTPServer(sock.getsockname()[:2], WebHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    return server


def allowed_hosts(config: Config) -> frozenset[str]:
    hosts = {*LOCAL_HOSTS, *(host.lower() for host in config.web.allowed_hosts)}
    if config.web.listen is not None:
        hosts.add(parse_listen(config.web.listen)[0].lower())
    return frozenset(hosts)


def read_token(config: Config) -> str | None:
    path = config.web.token_file
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"At 'web.token_file': cannot read {path}: {exc.strerror or exc}") from None
    if len(token) < 16:
        raise ConfigError(f"At 'web.token_file': {path} must hold a token of at least 16 characters")
    return token


def open_servers(config: Config) -> tuple[list[AnyServer], list[Path]]:
    """The servers to run (systemd's sockets when activated, else the UNIX socket and web.listen), and the
    socket files this process created (to remove at exit; systemd's are systemd's)."""
    passed = _systemd_sockets()
    if passed:
        return [_adopt(sock) for sock in passed], []
    servers: list[AnyServer] = [_bind_unix(config)]
    if config.web.listen is not None:
        try:
            servers.append(_bind_tcp(config.web.listen))
        except OSError as exc:
            servers[0].server_close()
            raise ConfigError(
                f"At 'web.listen': cannot listen on {config.web.listen}: {exc.strerror}"
            ) from None
    return servers, [socket_path(config)]


def describe(server: AnyServer) -> str:
    address = server.socket.getsockname()
    if server.socket.family == socket.AF_UNIX:
        return f"unix:{address}"
    host, port = address[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT; the UNIX socket we created is removed on the way out."""
    app = WebApp(
        reader=StateReader(config),
        allowed_hosts=allowed_hosts(config),
        actions=config.web.actions,
        token=read_token(config),
    )
    servers, created = open_servers(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = []
    for server in servers:
        server.app = app
        thread = threading.Thread(target=server.serve_forever, name=describe(server), daemon=True)
        thread.start()
        threads.append(thread)
    log.info(
        "web.listening",
        addresses=[describe(server) for server in servers],
        actions=app.actions,
        status_file=str(config.status_file),
    )
    while not stop.wait(1.0):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    for path in created:
        with contextlib.suppress(OSError):
            path.unlink()
    log.info("web.stopped")
