"""Process-wide tuning for the processes that run JAX: XLA's CPU flags and glibc malloc's settings.

Nothing here runs on `import srd`: the entry points that run networks (`srd upscale`, the worker process,
the bench scripts) call `configure_runtime()` before JAX is first imported, so a library user's process
keeps its own XLA_FLAGS and malloc behaviour unless they ask for srd's.

XLA flags: XLA reads XLA_FLAGS once, when JAX starts, so they must be set before the first `import jax`.

Malloc: glibc malloc settings for a process that allocates and frees buffers of hundreds of MB over and over.

XLA allocates each network call's activations afresh. glibc serves anything over 32 MB with its own mmap
and unmaps it on free, so every call page-faults (and the kernel zeroes) every activation byte again:
for upconv7-art on one 1024x1024 tile that was a third of the time (2.73 s -> 1.76 s with the settings
below, `python bench/speed.py`). Serving big blocks from the heap and keeping freed memory for reuse
removes that. Two more ways the pages went back, measured with cunet on one 512 px tile (Intel Xeon with
AVX-512, 2 cores): a heap top of more than 512 MB free after a call was trimmed (the old threshold: 190k
page faults and 0.3 s of system time per 1 s call), and XLA's pool threads allocate from arenas of their
own, whose heaps glibc shrinks as they empty (220k faults per call with a 2 GB threshold alone); and on one
1024 px tile the heap top past any threshold mallopt takes (2 GB) went back too (cunet: 800k faults and
5.4 s of system time per call, 8.3 s against 3.6 s without). So: one arena and no trimming at all (-1,
which mallopt documents as that); the worker hands the memory back when idle and `srd upscale` between
the bands of a huge image (`release_free_memory`). Linux/glibc only; SRD_MALLOC_DEFAULTS=0, or any
MALLOC_* / GLIBC_TUNABLES setting of the user's own, leaves malloc alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

# YNNPACK kernels for the convolutions' dot products: about 3x faster lax.conv on x86 CPUs, same results
# to 1e-5 (the equivalence tests run with it on). SRD_XLA_DEFAULTS=0 leaves XLA_FLAGS untouched.
_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=dot",)


def apply_default_xla_flags() -> None:
    """Append srd's CPU flags to XLA_FLAGS unless the user set them or opted out."""
    if os.environ.get("SRD_XLA_DEFAULTS", "1") == "0" or "jax" in sys.modules:
        return
    current = os.environ.get("XLA_FLAGS", "")
    names = {flag.split("=", 1)[0] for flag in current.split()}
    extra = [flag for flag in _CPU_FLAGS if flag.split("=", 1)[0] not in names]
    if extra:
        os.environ["XLA_FLAGS"] = " ".join([current, *extra]).strip()


M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
M_ARENA_MAX = -8
SETTINGS = (
    (M_MMAP_MAX, 0),  # no per-block mmap: big blocks come from the heap and are reused after free
    (M_ARENA_MAX, 1),  # every thread on the main heap: XLA's pool threads' arenas gave their pages back
    (M_TRIM_THRESHOLD, -1),  # never give memory back by itself: only when asked (release_free_memory)
    (M_TOP_PAD, 64 << 20),  # grow the heap 64 MB at a time
)


def tune_malloc() -> bool:
    """Apply SETTINGS through mallopt; False where that is not glibc or the user set their own."""
    if os.environ.get("SRD_MALLOC_DEFAULTS", "1") == "0":
        return False
    if "GLIBC_TUNABLES" in os.environ or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in SETTINGS)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), where SETTINGS keep them.

    For loops over huge images (`srd upscale` streaming a 64 Mpx input band by band): the settings keep
    freed blocks for reuse (the decoder's, then each band's), and they add up; trimming after decoding
    and after each band took the peak RSS of an 8000x8000 upscale from 1.82-2.02 GB to 1.75 GB (glibc's
    defaults: 1.54 GB, 20% slower) while every network call inside a band still reuses its memory.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def configure_runtime() -> None:
    """srd's XLA flags and malloc settings, for an entry point about to run JAX (each has an opt-out)."""
    apply_default_xla_flags()
    tune_malloc()
