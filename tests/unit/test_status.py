"""Tests for srd.status and srd.folders: the status file, `srd status`, and start-up folder checks."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from support.daemon import SRD_COMMAND

from srd.cli.status import status_command as print_status
from srd.daemon.folders import prepare_folders
from srd.errors import FolderError
from srd.settings import parse_config
from srd.status import InFlightJob, JobProgress, Stats, StatusFile, format_status, read_status
from srd.status.stats import WorkerStatus

CONFIG = "inbox: in\noutbox: out\nerrors: err\nwork: work\narchive: arc\n"


def test_status_file_round_trip_and_print(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A status written by this (live) process prints queue, in-flight job, counters and last error."""
    config_path = tmp_path / "srd.yaml"
    config_path.write_text(CONFIG)
    status_path = tmp_path / "work" / "status.json"
    status_path.parent.mkdir()
    document = {
        "state": "running",
        "queue": {"waiting": 4, "settling": 1},
        "in_flight": [{"input": "sub/a.png", "job_id": "j", "since": time.time() - 3}],
        "done": 7,
        "failed": 2,
        "last_error": {"input": "b.png", "reason": "text, not an image", "type": "X", "at": "now"},
        "model": "upconv7-art",
        "device": "cpu:0",
        "observer": "inotify",
    }
    StatusFile(status_path).write(document, force=True)
    stored = read_status(status_path)
    assert stored is not None and stored["pid"] == os.getpid()
    assert print_status(config_path) == 0
    out = capsys.readouterr().out
    expected = ("running", "4 waiting", "sub/a.png", "done:       7", "failed:     2", "text, not an image")
    for fragment in expected:
        assert fragment in out


def test_status_reports_a_stopped_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing status file, or one saying stopped, exits 3 (not running)."""
    config_path = tmp_path / "srd.yaml"
    config_path.write_text(CONFIG)
    assert print_status(config_path) == 3
    (tmp_path / "work").mkdir()
    StatusFile(tmp_path / "work" / "status.json").write({"state": "stopped"}, force=True)
    assert print_status(config_path) == 3
    assert "not running" in capsys.readouterr().out


def test_folders_are_created_and_probed(tmp_path: Path) -> None:
    """prepare_folders creates every configured folder and leaves no probe files behind."""
    config = parse_config({"inbox": "i", "outbox": "o", "errors": "e", "work": "w", "archive": "a"}, tmp_path)
    prepare_folders(config)
    for name in "ioewa":
        assert (tmp_path / name).is_dir()
        assert list((tmp_path / name).iterdir()) == []


@pytest.mark.parametrize("key", ["outbox", "errors", "work", "archive"])
def test_folders_inside_the_inbox_are_refused(tmp_path: Path, key: str) -> None:
    """Any output folder inside the inbox is a FolderError naming it."""
    document = {"inbox": "i", "outbox": "o", "errors": "e", "work": "w", "archive": "a", key: "i/nested"}
    with pytest.raises(FolderError, match=f"At '{key}': .* inside the inbox"):
        prepare_folders(parse_config(document, tmp_path))


def test_unusable_folder_is_refused(tmp_path: Path) -> None:
    """A folder path that is taken by a file stops the start with FolderError naming the key."""
    (tmp_path / "o").write_bytes(b"")
    document = {"inbox": "i", "outbox": "o", "errors": "e", "work": "w", "archive": "delete"}
    config = parse_config(document, tmp_path)
    with pytest.raises(FolderError, match="outbox"):
        prepare_folders(config)


def test_daemon_refuses_nested_folders_with_its_own_exit_code(tmp_path: Path) -> None:
    """`srd run` with the outbox inside the inbox exits 73 before starting anything."""
    config_path = tmp_path / "srd.yaml"
    config_path.write_text("inbox: in\noutbox: in/out\nerrors: err\nwork: work\narchive: delete\n")
    result = subprocess.run(
        [*SRD_COMMAND, "run", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 73
    assert "inside the inbox" in result.stderr


def test_stats_feed_the_status_file_and_the_status_line_alike() -> None:
    """One Stats object renders status.json's document and systemd's STATUS= line from the same counts."""
    stats = Stats(state="running", waiting=3, model="upconv7-art", device="cpu:0", observer="inotify")
    stats.in_flight = [InFlightJob("sub/a.png", "j1", time.time() - 2)]
    stats.job_done()
    stats.job_failed("b.png", "CorruptImageError", "truncated")
    assert stats.status_line() == "running: 3 waiting, 1 in flight, 1 done, 1 failed"
    document = stats.document()
    assert document["queue"] == {"waiting": 3, "settling": 0, "claimed": 0}
    assert document["done"] == 1 and document["failed"] == 1
    text, alive = format_status({**document, "pid": os.getpid(), "updated_at": time.time()}, time.time())
    assert alive
    assert "in flight:  sub/a.png for 2 s" in text
    assert "last error: b.png: truncated (" in text


def test_status_of_a_crashed_daemon_shows_no_job_as_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a crash the last in-flight job is reported as left in work/, not as running for N s; a
    job that started just now never reads as running for -0 s."""
    now = time.time()
    document = {
        "state": "running",
        "pid": 2**22 + 12345,  # no such process
        "updated_at": now - 100,
        "in_flight": [{"input": "barbara.png", "job_id": "j", "since": now - 120}],
        "last_error": {"input": "x.png", "reason": "x.png: text, not an image", "type": "X", "at": "t"},
    }
    text, alive = format_status(document, now)
    assert not alive
    assert "barbara.png left in work/" in text and " for " not in text
    assert "last error: x.png: text, not an image (t)" in text
    document |= {"pid": os.getpid(), "updated_at": now, "in_flight": [{"input": "b.png", "since": now + 0.4}]}
    text, alive = format_status(document, now)
    assert alive and "b.png for 0 s" in text and "-0" not in text


def test_a_damaged_status_file_is_not_reported_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A status.json that is not JSON says it is damaged (exit 3), rather than 'no status file'."""
    config_path = tmp_path / "srd.yaml"
    config_path.write_text(CONFIG)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "status.json").write_text("{not json")
    assert print_status(config_path) == 3
    err = capsys.readouterr().err
    assert "damaged" in err and "no status file" not in err


def test_an_uncreatable_compile_cache_is_a_folder_error_naming_the_key(tmp_path: Path) -> None:
    """engine.compile_cache under a file: `srd run`'s folder checks exit 73 naming the key, before the
    worker (which used to fail with exit 70 and a bare errno)."""
    (tmp_path / "blocker").write_text("a file")
    config = parse_config(
        {
            **{k: v for k, v in (line.split(": ") for line in CONFIG.splitlines())},
            "engine": {"compile_cache": "blocker/c"},
        },
        tmp_path,
    )
    with pytest.raises(FolderError, match=r"At 'engine\.compile_cache'") as info:
        prepare_folders(config)
    assert info.value.exit_code == 73


def test_in_flight_progress_is_reported_with_an_eta() -> None:
    """A job 10 s in with 25 of 100 tiles done shows 25% and about 30 s left, in status.json and in print."""
    now = time.time()
    stats = Stats(state="running")
    stats.in_flight = [
        InFlightJob("big.png", "j1", now - 10, JobProgress(25, 100)),
        InFlightJob("b.png", "j2", now),
    ]
    entries = stats.document()["in_flight"]
    assert isinstance(entries, list)
    progress = entries[0]["progress"]
    assert (progress["done"], progress["total"], progress["unit"]) == (25, 100, "tiles")
    assert progress["eta"] == pytest.approx(30, abs=1)
    assert "progress" not in entries[1]
    text, _ = format_status({**stats.document(), "pid": os.getpid(), "updated_at": now}, now)
    assert "big.png for 10 s (25%, 25/100 tiles, about 30 s left)" in text


def test_a_stopped_daemon_shows_what_it_left_in_work(tmp_path: Path) -> None:
    """After a stop, a job claimed ahead is "left in work/", not "waiting", and no pid is shown."""
    stats = Stats(state="stopped", waiting=3, claimed=1, model="cunet", device="cpu:0")
    stats.workers = [WorkerStatus("host", "cpu:0", None, "stopped", (), time.time())]
    document = {**stats.document(), "pid": 12345, "updated_at": time.time()}
    text, alive = format_status(document, time.time())
    assert not alive
    assert "queue:      2 in the inbox, 1 claimed and left in work/ (run at the next start)" in text
    assert "pid:        none" in text and "None" not in text
    assert "host cpu:0 no process: stopped" in text
