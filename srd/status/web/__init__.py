"""`srd web`: a separate, read-only process serving the status page, its JSON API and /metrics from the
daemon's state folder (the daemon itself opens no listener)."""

from srd.status.web.app import SECURITY_HEADERS, WebApp, WebHandler, host_name
from srd.status.web.server import serve, socket_path
from srd.status.web.views import StateReader

__all__ = ["SECURITY_HEADERS", "StateReader", "WebApp", "WebHandler", "host_name", "serve", "socket_path"]
