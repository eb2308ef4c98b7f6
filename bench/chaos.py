"""Long reliability runs against the real daemon; one summary line per scenario.

    python bench/chaos.py                      # every scenario at full size
    python bench/chaos.py kill9 --files 50 --rounds 3

Scenarios: `kill9` (N files, SIGKILL the daemon at random moments for R rounds, then a clean run),
`flood` (N small files dropped as fast as possible), `faults` (the worker killed, aborting and hanging on
one file each, via SRD_TEST_FAULT), `hostile` (tests/e2e/test_chaos.py's hostile inputs). Each line gives
inputs, outputs, errors, lost, duplicated, partial (hidden or temporary files left visible in the outbox)
and the peak RSS of the daemon and of its workers. lost, duplicated and partial must all be 0.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.daemon import (  # noqa: E402 -- the test helpers live beside the tests
    DaemonProcess,
    files_under,
    make_png,
    queue_drained,
    status,
    wait_for,
    write_config,
)


class PeakMemory:
    """Samples VmHWM of the daemon and of every worker it starts, in a background thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemon_kib = 0
        self.worker_kib = 0
        self.daemons: list[DaemonProcess] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _peak(pid: object) -> int:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return 0
        return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("VmHWM:")), 0)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for daemon in list(self.daemons):
                self.daemon_kib = max(self.daemon_kib, self._peak(daemon.process.pid))
            self.worker_kib = max(self.worker_kib, self._peak(status(self.root).get("worker_pid")))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def summarize(name: str, root: Path, inputs: list[str], memory: PeakMemory, seconds: float) -> bool:
    """Print the scenario's line; True when nothing was lost, duplicated or left partial."""

    def key(rel: str) -> str:
        return Path(rel).name.split(".")[0]

    outputs = [n for n in files_under(root / "outbox") if not Path(n).name.startswith(".")]
    errors = [
        n
        for n in files_under(root / "errors")
        if not n.endswith(".error.json") and not Path(n).name.startswith(".")
    ]
    seen = Counter(key(n) for n in outputs + errors)
    expected = Counter(key(n) for n in inputs)
    lost = sum((expected - seen).values())
    duplicated = sum((seen - expected).values())
    partial = len([n for n in files_under(root / "outbox") if Path(n).name.startswith(".")])
    print(
        f"{name:8s} inputs={len(inputs)} outputs={len(outputs)} errors={len(errors)} lost={lost} "
        f"duplicated={duplicated} partial={partial} max_rss_daemon={memory.daemon_kib // 1024}MiB "
        f"max_rss_worker={memory.worker_kib // 1024}MiB seconds={seconds:.0f}",
        flush=True,
    )
    return lost == duplicated == partial == 0


def run_scenario(name: str, body: Callable[[Path, Path, PeakMemory], list[str]], cache: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix=f"srd-chaos-{name}-") as folder:
        root = Path(folder)
        memory = PeakMemory(root)
        started = time.monotonic()
        try:
            inputs = body(root, cache, memory)
        finally:
            memory.close()
            DaemonProcess.reap_all()
        return summarize(name, root, inputs, memory, time.monotonic() - started)


def drain(root: Path, config: Path, count: int, memory: PeakMemory, log_name: str, timeout: float) -> None:
    """Run a daemon until every input is accounted for, then stop it cleanly."""
    daemon = DaemonProcess(config, log_name=log_name).wait_ready()
    memory.daemons.append(daemon)
    wait_for(lambda: queue_drained(root, count), timeout, f"{count} inputs to finish")
    if daemon.stop() != 0:
        raise SystemExit(f"the daemon did not stop cleanly; see {daemon.log_path}")


def kill9(files: int, rounds: int, seed: int) -> Callable[[Path, Path, PeakMemory], list[str]]:
    def body(root: Path, cache: Path, memory: PeakMemory) -> list[str]:
        names = [f"k{i:04d}.png" for i in range(files)]
        for index, name in enumerate(names):
            make_png(root / "inbox" / name, size=(48, 48), seed=index)
        config = write_config(root, cache, watch={"settle_seconds": 0.1})
        chooser = random.Random(seed)
        for number in range(rounds):
            daemon = DaemonProcess(config, log_name=f"round{number}.log").wait_ready()
            memory.daemons.append(daemon)
            # Random moments: anywhere in claiming, running, publishing or archiving a job.
            deadline = time.monotonic() + chooser.uniform(0.2, 3.0)
            while time.monotonic() < deadline and not queue_drained(root, files):
                time.sleep(0.01)
            daemon.kill()
        drain(root, config, files, memory, "final.log", 600)
        return names

    return body


def flood(files: int) -> Callable[[Path, Path, PeakMemory], list[str]]:
    def body(root: Path, cache: Path, memory: PeakMemory) -> list[str]:
        config = write_config(root, cache, watch={"settle_seconds": 0.5}, archive="delete")
        daemon = DaemonProcess(config).wait_ready()
        memory.daemons.append(daemon)
        names = [f"f{i:05d}.png" for i in range(files)]
        staging = root / "staging"
        for index, name in enumerate(names):
            make_png(staging / name, size=(8, 8), seed=index)
        for name in names:  # as fast as rename(2) goes
            os.rename(staging / name, root / "inbox" / name)
        wait_for(lambda: queue_drained(root, files), 1200, f"{files} outputs")
        daemon.stop()
        return names

    return body


def faults(root: Path, cache: Path, memory: PeakMemory) -> list[str]:
    names = ["killed.png", "aborted.png", "hung.png", *[f"ok{i}.png" for i in range(20)]]
    config = write_config(
        root, cache, watch={"settle_seconds": 0.2}, limits={"attempts": 3, "job_timeout": 5}
    )
    env = {"SRD_TEST_FAULT": "kill:killed.png,abort:aborted.png,hang:hung.png"}
    daemon = DaemonProcess(config, env=env).wait_ready()
    memory.daemons.append(daemon)
    for index, name in enumerate(names):
        make_png(root / "inbox" / name, seed=index)
    wait_for(lambda: queue_drained(root, len(names)), 300, "every input")
    daemon.stop()
    return names


def hostile(root: Path, cache: Path, memory: PeakMemory) -> list[str]:
    from e2e.test_chaos import hostile_inputs  # tests/ is on sys.path; e2e is a namespace package

    config = write_config(root, cache, watch={"settle_seconds": 0.3}, limits={"max_pixels": 100_000})
    daemon = DaemonProcess(config).wait_ready()
    memory.daemons.append(daemon)
    cases = hostile_inputs()
    for name, (data, _) in cases.items():
        (root / "inbox" / name).write_bytes(data)
    wait_for(lambda: queue_drained(root, len(cases)), 300, "every hostile input")
    daemon.stop()
    return list(cases)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", default=["kill9", "flood", "faults", "hostile"])
    parser.add_argument("--files", type=int, default=200, help="kill9 inputs (default 200)")
    parser.add_argument("--rounds", type=int, default=10, help="kill9 rounds (default 10)")
    parser.add_argument("--flood", type=int, default=2000, help="flood inputs (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    bodies: dict[str, Callable[[Path, Path, PeakMemory], list[str]]] = {
        "kill9": kill9(args.files, args.rounds, args.seed),
        "flood": flood(args.flood),
        "faults": faults,
        "hostile": hostile,
    }
    with tempfile.TemporaryDirectory(prefix="srd-chaos-cache-") as cache:
        results = [run_scenario(name, bodies[name], Path(cache)) for name in args.scenarios]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
