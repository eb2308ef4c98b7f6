"""Where each worker runs: engine.devices and engine.workers as placements, applied before JAX starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from srd.settings import EngineSettings
from srd.workers.placement import Placement, apply_placement, plan_placements


def test_default_is_one_worker_as_before() -> None:
    """The defaults keep the one worker on engine.device, with nothing forced or pinned."""
    assert plan_placements(EngineSettings(device="cpu")) == [Placement("", "cpu")]


def test_a_count_of_cpu_devices_forces_host_devices_and_splits_the_cores() -> None:
    """devices: 2 on the CPU: workers on cpu:0 and cpu:1 of 2 forced host devices, each its own cores."""
    placements = plan_placements(EngineSettings(device="cpu", devices=2))
    assert [(p.label, p.device, p.host_devices) for p in placements] == [
        ("cpu:0", "cpu:0", 2),
        ("cpu:1", "cpu:1", 2),
    ]
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        shares = [p.cpus or () for p in placements]
        assert sorted(c for share in shares for c in share) == cores
        assert not set(shares[0]) & set(shares[1])


def test_workers_split_the_cpu_with_devices_auto() -> None:
    """engine.workers: 3 on a CPU host gives three workers; a list of ids picks those devices."""
    assert [p.label for p in plan_placements(EngineSettings(device="cpu", workers=3))] == [
        "cpu:0",
        "cpu:1",
        "cpu:2",
    ]
    listed = plan_placements(EngineSettings(device="cpu", devices=(1, 3)))
    assert [(p.label, p.host_devices) for p in listed] == [("cpu:1", 4), ("cpu:3", 4)]


def test_gpu_workers_each_see_only_their_device() -> None:
    """On GPUs a worker's CUDA_VISIBLE_DEVICES is its own device, so memory is preallocated there only."""
    placements = plan_placements(EngineSettings(device="gpu", devices=(0, 2)))
    assert [(p.label, p.visible_gpu) for p in placements] == [("gpu:0", 0), ("gpu:2", 2)]


@pytest.mark.slow
def test_a_placed_worker_sees_its_forced_device() -> None:
    """apply_placement before JAX starts: the process has the forced devices and picks its own."""
    script = (
        "from srd.workers.placement import Placement, apply_placement\n"
        "apply_placement(Placement('cpu:1', 'cpu:1', host_devices=2))\n"
        "from srd.engine.engine import pick_device\n"
        "import jax; print(len(jax.devices('cpu')), pick_device('cpu:1').id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split()[0] == "2"
    assert out.stdout.split()[1] == "1"


def test_apply_placement_replaces_an_earlier_forced_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forced device count already in XLA_FLAGS is replaced, other flags are kept."""
    monkeypatch.setenv("XLA_FLAGS", "--a=1 --xla_force_host_platform_device_count=8")
    apply_placement(Placement("cpu:0", "cpu:0", host_devices=2))
    assert os.environ["XLA_FLAGS"] == "--a=1 --xla_force_host_platform_device_count=2"
