"""glibc malloc tuning (srd/heap.py): freed big buffers are reused without page faults."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# malloc (as XLA does), touch, free and malloc SIZE MB again, on the main thread or on a thread of its own
# (as XLA's pool threads do); prints whether srd tuned malloc and the page faults of the second buffer.
_PROBE = """
import ctypes, resource, threading, srd.runtime as heap
tuned = heap.tune_malloc()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = SIZE << 20
faults = []
def work():
    first = libc.malloc(size); ctypes.memset(first, 1, size); libc.free(first)
    if TRIM:
        heap.release_free_memory()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = libc.malloc(size); ctypes.memset(second, 1, size)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
if THREAD:
    worker = threading.Thread(target=work); worker.start(); worker.join()
else:
    work()
print(tuned, faults[0])
"""

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")


def _probe(trim: bool = False, size_mb: int = 128, thread: bool = False, **env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    code = f"TRIM = {trim}\nSIZE = {size_mb}\nTHREAD = {thread}\n" + _PROBE
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


@glibc_only
def test_a_freed_big_buffer_is_reused_without_page_faults() -> None:
    """With srd's settings a second 128 MB buffer reuses the first's pages; without them it faults again."""
    tuned, faults = _probe()
    assert tuned
    assert faults < 1000
    untuned, faults_default = _probe(SRD_MALLOC_DEFAULTS="0")
    assert not untuned
    assert faults_default > 20000  # 128 MB of 4 KiB pages, mapped afresh


@glibc_only
@pytest.mark.parametrize(("size_mb", "thread"), [(768, False), (2200, False), (128, True), (768, True)])
def test_big_buffers_of_pool_threads_are_reused_too(size_mb: int, thread: bool) -> None:
    """Buffers bigger than the old 512 MB trim threshold or than the largest one mallopt takes (2 GB: a
    1024 px tile's activations), and buffers of a thread other than the main one (XLA's pool threads
    allocate too), are reused without faults; glibc's defaults fault on each."""
    tuned, faults = _probe(size_mb=size_mb, thread=thread)
    assert tuned
    assert faults < 1000
    _, faults_default = _probe(size_mb=size_mb, thread=thread, SRD_MALLOC_DEFAULTS="0")
    assert faults_default > 20000


@glibc_only
def test_release_free_memory_gives_the_pages_back() -> None:
    """After release_free_memory (between bands of a huge image) the freed buffer's pages are gone: the
    next buffer faults them in again, so they no longer count in the process's memory."""
    tuned, faults = _probe(trim=True)
    assert tuned
    assert faults > 20000


@glibc_only
def test_the_users_own_malloc_settings_win() -> None:
    """Any MALLOC_* or GLIBC_TUNABLES setting in the environment leaves malloc as the user set it."""
    assert _probe(MALLOC_ARENA_MAX="2")[0] is False
    assert _probe(GLIBC_TUNABLES="glibc.malloc.mxfast=0")[0] is False
