"""`srd web --config FILE`: the status page, its JSON API and /metrics, read from the state folder."""

from __future__ import annotations

from pathlib import Path

from srd.errors import ExitCode
from srd.logs import configure_logging
from srd.settings import load_config


def web_command(config_path: Path) -> ExitCode:
    """Serve until SIGTERM or Ctrl-C; never imports JAX, never writes but for web.actions' retry."""
    from srd.status.web import serve

    config = load_config(config_path)
    configure_logging(config.logging.format, config.logging.level)
    serve(config)
    return ExitCode.OK
