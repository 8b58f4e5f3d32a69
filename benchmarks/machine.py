"""What the benchmarks read of the machine and set for it: load, resident memory, BLAS threads, the heap.

Shared by ``benchmarks.ops`` and ``benchmarks.inference``.
"""

from __future__ import annotations

import gc
import os
from contextlib import nullcontext
from typing import Any


def machine_load() -> float | None:
    """The 1-minute load average (None where the OS does not tell)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def current_rss_bytes() -> int | None:
    """Resident memory of this process now (VmRSS), None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def release_free_memory() -> None:
    """Collect garbage and give the C heap's free pages back to the OS (glibc ``malloc_trim``, else no-op).

    Both engines run in this one process: without this, memory the previous run freed stays resident and
    inflates the next run's peak RSS.
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def one_blas_thread() -> Any:
    """A context limiting numpy's BLAS to one thread (threadpoolctl), or a no-op when it is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1)


def single_thread_environment() -> None:
    """Ask the BLAS runtimes for one thread, if not set already (ckkslab's own kernels: ``ckks.set_threads``;
    NUMBA_NUM_THREADS must not change once Numba's pool runs, so it is left alone)."""
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
