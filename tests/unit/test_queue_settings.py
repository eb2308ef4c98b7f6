"""The queue section: local by default; celery needs a broker URL and a long enough visibility timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from srd.errors import ConfigError
from srd.settings import parse_config
from srd.status import format_status

FOLDERS = {"inbox": "i", "outbox": "o", "errors": "e", "work": "w", "archive": "a"}


def test_default_is_local_and_the_visibility_timeout_covers_every_attempt() -> None:
    """Without a queue section srd needs no broker; the default timeout exceeds job_timeout x attempts."""
    config = parse_config(FOLDERS, Path("/tmp"))
    assert config.queue.backend == "local"
    limits = config.limits
    assert config.visibility_timeout > limits.job_timeout * limits.attempts


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ({"backend": "celery"}, "queue.broker is required"),
        ({"broker": "http://broker"}, "At 'queue.broker': expected a redis:// or amqp:// URL"),
        ({"backend": "celery", "broker": "redis://b", "visibility_timeout": 60}, "must exceed"),
    ],
)
def test_bad_queue_settings_are_refused(queue: dict[str, object], message: str) -> None:
    """A celery backend without a broker, a foreign URL or a too short visibility timeout are refused."""
    with pytest.raises(ConfigError, match=message):
        parse_config({**FOLDERS, "queue": queue}, Path("/tmp"))


def test_status_shows_every_worker() -> None:
    """`srd status` prints one line per worker: host, device, pid, state, job, last seen."""
    now = 1000.0
    document = {
        "state": "running",
        "pid": None,
        "updated_at": now,
        "workers": [
            {
                "host": "h1",
                "device": "cpu:0",
                "pid": 7,
                "state": "ready",
                "jobs": ["a.png"],
                "last_seen": 998,
            },
            {"host": "h2", "device": "gpu:1", "pid": 8, "state": "starting", "jobs": [], "last_seen": 990},
        ],
    }
    text, _ = format_status(document, now)
    assert "workers:    2" in text
    assert "h1 cpu:0 pid 7: ready, a.png, seen 2 s ago" in text
    assert "h2 gpu:1 pid 8: starting, idle, seen 10 s ago" in text
