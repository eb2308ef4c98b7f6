"""Fault injection for the reliability tests (tests/e2e/test_chaos.py, bench/chaos.py); off by default.

SRD_TEST_FAULT=ACTION:NAME[,ACTION:NAME...] makes the worker misbehave on the input file called NAME.
When the job starts (stage "compute"): `kill` (SIGKILL itself, as the OOM killer would), `abort`
(SIGABRT, as a crashing native library would) or `hang` (block forever while the heartbeat goes on,
as a stuck computation would). When its output is encoded (stage "encode"): `slow_write` (take
SLOW_WRITE_SECONDS longer, as a slow disk would, so the next job computes meanwhile). While it is
upscaled: `slow_tiles` (SLOW_TILE_SECONDS more each time tiles finish, as a slow device would, so that its
progress can be watched). When a Celery worker host has published its output (stage "publish", in
`srd worker`'s own process): `kill_published` (SIGKILL itself before the input is archived and the task
acknowledged). When the first of a job's several outputs (output.tiff_pages `separate`) is linked into the
outbox and before its name is recorded (stage "page_linked", in the process that publishes: the daemon, or
`srd worker`): `kill_mid_publish` (SIGKILL that process, so the next start must complete the set). When a
video job's segment other than its last is durable (stage "segment"): `kill_after_segment` (SIGKILL the
worker, so that each try adds one segment and the last try finishes). Only srd's own processes read it,
from the environment the admin started them with; an inbox writer cannot set it. `slow_frames` waits
SLOW_TILE_SECONDS after each frame of an animation or a video, so that a test can kill a video job's
daemon between its segments.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Literal

TEST_FAULT_VARIABLE = "SRD_TEST_FAULT"
SLOW_WRITE_SECONDS = 5.0
SLOW_TILE_SECONDS = 1.0


def _action(name: str) -> str | None:
    actions = [
        action
        for action, _, target in (
            item.partition(":") for item in os.environ.get(TEST_FAULT_VARIABLE, "").split(",")
        )
        if target == name
    ]
    return actions[0] if actions else None


def tile_delay(name: str) -> float:
    """Seconds to wait each time tiles of the input called `name` finish: SLOW_TILE_SECONDS or 0."""
    return SLOW_TILE_SECONDS if _action(name) == "slow_tiles" else 0.0


def frame_delay(name: str) -> float:
    """Seconds to wait after each frame of the input called `name`: SLOW_TILE_SECONDS or 0."""
    return SLOW_TILE_SECONDS if _action(name) == "slow_frames" else 0.0


def inject_test_fault(
    name: str, stage: Literal["compute", "encode", "publish", "page_linked", "segment"]
) -> None:
    """Misbehave as SRD_TEST_FAULT asks for the input called `name` at this stage; a no-op otherwise."""
    action = _action(name)
    if stage == "publish":
        if action == "kill_published":
            os.kill(os.getpid(), signal.SIGKILL)
    elif stage == "page_linked":
        if action == "kill_mid_publish":
            os.kill(os.getpid(), signal.SIGKILL)
    elif stage == "segment":
        if action == "kill_after_segment":
            os.kill(os.getpid(), signal.SIGKILL)
    elif stage == "encode":
        if action == "slow_write":
            time.sleep(SLOW_WRITE_SECONDS)
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "abort":
        os.abort()
    elif action == "hang":
        threading.Event().wait()


def page_fault(name: str) -> Callable[[str, str], None]:
    """A publish step callback (srd/jobs/pages.py) that injects the "page_linked" fault for input `name`."""

    def step(event: str, page: str) -> None:
        if event == "linked":
            inject_test_fault(name, "page_linked")

    return step
