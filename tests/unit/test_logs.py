"""Tests for srd.logs: one JSON line per event, library records rendered the same way."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from srd.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_for_structlog_and_stdlib(capsys: pytest.CaptureFixture[str]) -> None:
    """Both structlog events and stdlib records come out as one JSON object per line with level and time."""
    configure_logging("json", "info")
    structlog.get_logger().info("job", outcome="ok", ms=12.5)
    logging.getLogger("watchdog.observers").warning("queue %s", "overflow")
    structlog.get_logger().debug("hidden")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["job", "queue overflow"]
    assert lines[0]["outcome"] == "ok" and lines[0]["level"] == "info" and "timestamp" in lines[0]
    assert lines[1]["logger"] == "watchdog.observers" and lines[1]["level"] == "warning"


def test_auto_is_json_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """Under a pipe (journald, tests) "auto" picks JSON."""
    configure_logging("auto", "debug")
    structlog.get_logger().debug("visible", n=1)
    assert json.loads(capsys.readouterr().out)["n"] == 1


def test_unknown_format_is_rejected() -> None:
    """A bad format name is a ValueError, not silent plain text."""
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml")


def test_jax_backend_probing_stays_out_of_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    """JAX's INFO records (backend probing) are not logged at level info, and are at debug."""
    import logging

    configure_logging("json", "info")
    logging.getLogger("jax._src.xla_bridge").info("Unable to initialize backend 'tpu'")
    assert "tpu" not in capsys.readouterr().out
    configure_logging("json", "debug")
    logging.getLogger("jax._src.xla_bridge").info("Unable to initialize backend 'tpu'")
    assert "tpu" in capsys.readouterr().out
