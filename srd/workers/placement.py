"""Where each worker process runs: one per device (`engine.devices`), or CPU workers sharing the cores.

Decided in the daemon, which never imports JAX: a placement is applied by the spawned worker before JAX
starts (`apply_placement`), through the environment JAX reads once and the process's CPU affinity.

- GPUs: each worker sees only its own (CUDA_VISIBLE_DEVICES), so JAX's memory preallocation (75% of
  the device by default; XLA_PYTHON_CLIENT_MEM_FRACTION changes it) happens on that device alone.
- CPU: N workers run in a process with N forced host devices (--xla_force_host_platform_device_count),
  worker i on cpu:i, each pinned to its share of the cores; XLA sizes its thread pools to the CPUs the
  process may run on, so the intra-op threads of the workers do not compete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from srd.settings import EngineSettings

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
_GPU_PLATFORMS = frozenset({"gpu", "cuda"})


@dataclass(frozen=True)
class Placement:
    """One worker's device: its label in logs, the engine's `device` setting, and the process setup."""

    label: str  # how logs and status name the device: cpu:1, gpu:0; "" for the single default worker
    device: str  # engine.device inside the worker (cpu:1 picks the forced host device 1)
    host_devices: int | None = None  # forced host CPU devices in the worker's JAX
    cpus: tuple[int, ...] | None = None  # the cores the worker may use
    visible_gpu: int | None = None  # CUDA_VISIBLE_DEVICES for the worker


def _nvidia_gpus() -> list[int]:
    """The NVIDIA GPUs this process may use (CUDA_VISIBLE_DEVICES when set), without importing JAX."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [int(part) for part in visible.split(",") if part.strip().isdigit()]
    try:
        return list(range(len(list(NVIDIA_GPUS.iterdir()))))
    except OSError:
        return []


def _split_cores(count: int) -> list[tuple[int, ...] | None]:
    cores = sorted(os.sched_getaffinity(0))
    if count <= 1 or len(cores) < count:
        return [None] * count  # fewer cores than workers: they share them all
    share, extra = divmod(len(cores), count)
    shares: list[tuple[int, ...] | None] = []
    start = 0
    for index in range(count):
        size = share + (index < extra)
        shares.append(tuple(cores[start : start + size]))
        start += size
    return shares


def _cpu_placements(ids: list[int]) -> list[Placement]:
    if ids == [0] or not ids:
        return [Placement("", "cpu")]
    host_devices = max(ids) + 1
    return [
        Placement(f"cpu:{device}", f"cpu:{device}", host_devices=host_devices, cpus=cpus)
        for device, cpus in zip(ids, _split_cores(len(ids)), strict=True)
    ]


def plan_placements(engine: EngineSettings) -> list[Placement]:
    """One placement per worker the settings ask for (one, with today's defaults)."""
    platform = engine.device.partition(":")[0]
    devices = engine.devices
    if devices == "auto":
        gpus = _nvidia_gpus() if platform in ("auto", *_GPU_PLATFORMS) else []
        if len(gpus) > 1:
            return [Placement(f"gpu:{gpu}", engine.device, visible_gpu=gpu) for gpu in gpus]
        if gpus or platform not in ("auto", "cpu"):
            return [Placement("", engine.device)]  # one GPU, or a TPU: one worker on it, as before
        return _cpu_placements(list(range(engine.workers)))
    ids = list(range(devices)) if isinstance(devices, int) else list(devices)
    if platform in _GPU_PLATFORMS or (platform == "auto" and _nvidia_gpus()):
        return [Placement(f"gpu:{gpu}", engine.device, visible_gpu=gpu) for gpu in ids]
    if platform in ("auto", "cpu"):
        return _cpu_placements(ids)
    return [Placement(f"{platform}:{device}", f"{platform}:{device}") for device in ids]


def apply_placement(placement: Placement) -> None:
    """In the spawned worker, before JAX is imported: the environment and affinity of its placement."""
    if placement.visible_gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(placement.visible_gpu)
    if placement.host_devices is not None:
        name = "--xla_force_host_platform_device_count"
        kept = [flag for flag in os.environ.get("XLA_FLAGS", "").split() if not flag.startswith(name)]
        os.environ["XLA_FLAGS"] = " ".join([*kept, f"{name}={placement.host_devices}"])
    if placement.cpus is not None:
        os.sched_setaffinity(0, placement.cpus)
