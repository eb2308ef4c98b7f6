"""queue.backend celery with real processes: a redis-server, a watcher (`srd run`) and two `srd worker` hosts.

One cluster serves the module (the tests run in order; each checks every input so far ended exactly
once). The workers carry SRD_TEST_FAULT hooks for a few named files only.
"""

from __future__ import annotations

import io
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.daemon import (
    DaemonProcess,
    assert_each_input_once,
    files_under,
    make_png,
    queue_drained,
    status,
    wait_for,
    write_config,
)
from support.redis_server import RedisServer
from support.web import WebProcess, request

pytestmark = pytest.mark.slow
pytest.importorskip("celery", reason="the Celery tests need pip install 'srd[celery]'")

FAULTS = "kill:poison.png,slow_write:slow.png,kill_published:published.png,slow_tiles:tiles.png"
ATTEMPTS = 2
JOB_TIMEOUT = 7.0  # slow.png's encode takes 5 s
VISIBILITY = JOB_TIMEOUT * ATTEMPTS + 1  # the shortest the schema allows, so redelivery comes soon


class Cluster:
    """The broker, the watcher and the worker hosts of one test module, with the inputs given so far."""

    def __init__(self, root: Path, cache: Path, redis: RedisServer) -> None:
        self.root = root
        self.redis = redis
        self.config = write_config(
            root,
            cache,
            queue={"backend": "celery", "broker": redis.url, "visibility_timeout": VISIBILITY},
            limits={"job_timeout": JOB_TIMEOUT, "attempts": ATTEMPTS, "stop_grace": 5},
            watch={"settle_seconds": 0.2},
        )
        self.names: list[str] = []
        self.watcher = DaemonProcess(self.config).wait_ready()
        self.workers: list[DaemonProcess] = []
        self._started = 0
        for _ in range(2):
            self.start_worker()

    def start_worker(self) -> DaemonProcess:
        self._started += 1
        worker = DaemonProcess(
            self.config,
            env={"SRD_TEST_FAULT": FAULTS},
            log_name=f"worker{self._started}.log",
            command="worker",
        )
        wait_for(lambda: worker.has_event("worker.consuming"), 180, "the worker host to consume")
        self.workers.append(worker)
        return worker

    def drop(self, names: list[str], size: tuple[int, int] = (24, 24)) -> None:
        for name in names:
            make_png(self.root / "inbox" / name, size=size, seed=len(self.names))
            self.names.append(name)

    def drained(self, timeout: float = 120) -> None:
        wait_for(lambda: queue_drained(self.root, len(self.names)), timeout, "every input to end")
        assert_each_input_once(self.root, self.names)

    def job_lines(self) -> list[dict[str, object]]:
        return [line for worker in self.workers for line in worker.job_lines()]

    def host_holding(self, name: str) -> int | None:
        """The pid of the `srd worker` host whose status file shows it running `name`."""
        for path in (self.root / "work" / ".workers").glob("*.json"):
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if any(name in worker["jobs"] for worker in document["workers"]):
                return int(document["pid"])
        return None

    def kill_host(self, pid: int) -> None:
        worker = next(w for w in self.workers if w.process.pid == pid)
        worker.kill()
        self.workers.remove(worker)

    def close(self) -> None:
        self.watcher.stop()
        for worker in self.workers:
            worker.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A redis-server on a free loopback port, the watcher and two worker hosts, for the whole module."""
    redis = RedisServer(tmp_path_factory.mktemp("redis")).start()
    cache = tmp_path_factory.getbasetemp() / "jax-cache"
    try:
        running = Cluster(tmp_path_factory.mktemp("celery"), cache, redis)
    except BaseException:
        DaemonProcess.reap_all()
        redis.stop()
        raise
    yield running
    running.close()
    DaemonProcess.reap_all()


def test_two_worker_hosts_do_every_file_exactly_once(cluster: Cluster) -> None:
    """100 files through the broker: each is published once, both worker hosts took some."""
    cluster.drop([f"f{i:03d}.png" for i in range(100)], size=(16, 16))
    cluster.drained()
    assert files_under(cluster.root / "errors") == []
    assert sorted(files_under(cluster.root / "archive")) == sorted(cluster.names)
    hosts = {worker.log_path.name for worker in cluster.workers if worker.job_lines()}
    assert len(hosts) == 2, hosts

    def both_ready() -> bool:
        # status.json and the hosts' status files are rewritten every few seconds: the last job of the
        # queue may still show in flight right after the files have all landed.
        workers = status(cluster.root).get("workers")
        return isinstance(workers, list) and len(workers) == 2 and {w["state"] for w in workers} == {"ready"}

    wait_for(both_ready, 30, "status.json to show both worker hosts ready")


def _tiles_progress(cluster: Cluster, seen: list[dict[str, Any]]) -> bool:
    """Whether status.json shows tiles.png in flight with some, not all, of its tiles done."""
    jobs: list[dict[str, Any]] = status(cluster.root).get("in_flight") or []  # type: ignore[assignment]
    for job in jobs:
        progress = job.get("progress") if job.get("input") == "tiles.png" else None
        if progress and 0 < progress["done"] < progress["total"]:
            seen.append(job)
            return True
    return False


def test_a_remote_job_shows_progress_then_history_and_thumbnails(cluster: Cluster) -> None:
    """A job run on a worker host shows its tiles done (status.json, as `srd status` and the page read it)
    while it runs, then is
    listed by `srd web`'s /api/jobs with its sizes, seconds, device, host and before/after thumbnails,
    which leave work/.thumbnails/."""
    web = WebProcess(cluster.config).wait_listening()
    try:
        cluster.drop(["tiles.png"], size=(160, 60))  # 3 tiles of 64, 1 s each (the slow_tiles fault)
        seen: list[dict[str, Any]] = []
        wait_for(lambda: _tiles_progress(cluster, seen), 60, "tiles.png in flight with some tiles done")
        assert seen[0]["progress"]["unit"] == "tiles" and seen[0]["progress"]["total"] == 3
        cluster.drained()

        def listed() -> list[dict[str, Any]]:
            recent: list[dict[str, Any]] = request(web.unix(), "/api/jobs").json()["recent"]  # newest first
            return recent if any(job["input"] == "tiles.png" for job in recent) else []

        wait_for(listed, 30, "tiles.png in the watcher's job history")
        jobs = listed()
        [job] = [job for job in jobs if job["input"] == "tiles.png"]
        assert job["outcome"] == "done" and job["output"] == "tiles.png"
        assert (job["input_size"], job["output_size"]) == ([160, 60], [320, 120])
        assert job["seconds"] >= 3 and job["output_bytes"] > 0
        assert job["device"].startswith("cpu") and job["host"]
        for side, width in (("before", 160), ("after", 320)):
            response = request(web.unix(), job["thumbnails"][side])
            assert response.status == 200 and response.headers["content-type"] == "image/webp"
            with Image.open(io.BytesIO(response.body)) as image:
                assert image.size[0] == min(width, 320)
        assert not [p.name for p in (cluster.root / "work" / ".thumbnails").iterdir()]
        # the page lists the newest 48: tiles.png and the hundred files before it, every one with thumbnails
        assert [job["outcome"] for job in jobs] == ["done"] * 48
        assert all(job["thumbnails"] and job["host"] for job in jobs)
    finally:
        web.stop()


def test_a_poison_file_ends_in_errors_after_the_attempts(cluster: Cluster) -> None:
    """A file that kills the worker process every time goes to errors after limits.attempts, with why."""
    cluster.drop(["poison.png", "after-poison.png"])
    cluster.drained()
    report = json.loads((cluster.root / "errors" / "poison.png.error.json").read_text())
    assert report["error_type"] == "AttemptsExhausted"
    assert report["attempts"] == ATTEMPTS
    assert "crashed" in report["reason"]
    assert (cluster.root / "outbox" / "after-poison.png").exists()


def test_a_host_killed_mid_job_has_its_job_redelivered_and_done_once(cluster: Cluster) -> None:
    """SIGKILL the worker host running a job: the broker hands it to the other host; one output."""
    cluster.drop(["slow.png"])
    wait_for(lambda: cluster.host_holding("slow.png"), 60, "a host to run slow.png")
    pid = cluster.host_holding("slow.png")
    assert pid is not None
    cluster.kill_host(pid)
    cluster.start_worker()
    cluster.drained(timeout=VISIBILITY + 90)
    assert [p for p in files_under(cluster.root / "outbox") if p.startswith("slow")] == ["slow.png"]
    redelivered = [e for w in cluster.workers for e in w.events() if e.get("event") == "job.redelivered"]
    assert [e["input"] for e in redelivered] == ["slow.png"]


def test_a_job_redelivered_after_publishing_makes_no_second_output(cluster: Cluster) -> None:
    """The host dies after publishing, before archiving and acking: the redelivery only finishes it."""
    before = {w.process.pid for w in cluster.workers}
    cluster.drop(["published.png"])
    wait_for(lambda: any(w.process.poll() is not None for w in cluster.workers), 60, "the host to die")
    dead = next(w for w in cluster.workers if w.process.poll() is not None)
    assert dead.process.pid in before
    assert (cluster.root / "outbox" / "published.png").exists()
    cluster.workers.remove(dead)
    cluster.start_worker()
    cluster.drained(timeout=VISIBILITY + 90)
    assert [p for p in files_under(cluster.root / "outbox") if p.startswith("published")] == ["published.png"]
    assert (cluster.root / "archive" / "published.png").exists()
    recovered = [e for w in cluster.workers for e in w.events() if e.get("event") == "job.recovered"]
    assert [e["input"] for e in recovered] == ["published.png"]


def test_the_watcher_killed_and_restarted_loses_and_doubles_nothing(cluster: Cluster) -> None:
    """SIGKILL the watcher with jobs sent and running; the next one resends what is in work/, harmlessly."""
    cluster.drop([f"w{i:02d}.png" for i in range(12)], size=(64, 64))
    work = cluster.root / "work"
    wait_for(lambda: [p for p in work.iterdir() if p.is_dir() and p.name[0] != "."], 30, "a claimed job")
    cluster.watcher.kill()
    cluster.watcher = DaemonProcess(cluster.config, log_name="watcher2.log").wait_ready()
    cluster.drained()
    assert not [
        line for line in cluster.job_lines() if line["outcome"] != "ok" and line["input"] != "poison.png"
    ]


def test_the_broker_restarted_mid_run_loses_nothing(cluster: Cluster) -> None:
    """redis-server stops while files arrive and starts again: the watcher resends, the hosts reconnect."""
    cluster.redis.stop()
    cluster.drop([f"r{i:02d}.png" for i in range(6)])
    wait_for(lambda: cluster.watcher.has_event("queue.send_failed"), 30, "a send to fail")
    cluster.redis.start()
    cluster.drained(timeout=120)
    assert files_under(cluster.root / "inbox") == []


def test_worker_hosts_stop_on_sigterm(cluster: Cluster) -> None:
    """SIGTERM is a warm shutdown: the worker host exits 0 and removes its status file."""
    worker = cluster.workers.pop()
    pid = worker.process.pid
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait_exit(60) == 0
    assert not [p for p in (cluster.root / "work" / ".workers").glob("*.json") if f"-{pid}." in p.name]
    assert os.path.exists(cluster.root / "work" / "status.json")
