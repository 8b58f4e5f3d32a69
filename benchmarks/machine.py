"""What the benchmarks read of the machine and set for it: load, resident memory, BLAS threads, the heap.

Shared by ``benchmarks.ops``, ``benchmarks.inference`` and ``benchmarks.server_threads``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any


def machine_load() -> float | None:
    """The 1-minute load average (None where the OS does not tell)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def current_rss_bytes() -> int | None:
    """Resident memory of this process now (``ckks.memory.current_rss_bytes``; imported when called, as
    this module's imports are the standard library's only), None off Linux."""
    from ckks.memory import current_rss_bytes as resident_now

    return resident_now()


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


def idle_spin_cpu_seconds(threads: int, idle_s: float = 0.2) -> float:
    """CPU seconds this process spends in the ``idle_s`` seconds after a kernel at ``threads`` threads,
    while its main thread sleeps: the kernel threads' spinning before they sleep (``GOMP_SPINCOUNT``; see
    ``ckks.threads``), plus a few microseconds of the sleep call itself. Leaves the thread count at
    ``threads``."""
    import time

    import numpy as np

    import ckks
    from ckks.ring import rns
    from ckks.ring.primes import ntt_primes

    ckks.set_threads(threads)
    basis = rns.rns_basis(tuple(ntt_primes(40, 4096, 2)), 4096)
    a = np.zeros((2, 4096), dtype=np.uint64)
    rns.add(a, a, basis)
    start = time.process_time()
    time.sleep(idle_s)
    return time.process_time() - start


class ThreadBaseline:
    """Forward NTTs of ``rows`` independent rows (N = 16384, one 51-bit prime): work with nothing serial in
    it, spread over ``ckks.get_threads()`` threads. Timed at each thread count beside the work a benchmark
    measures, its speed-up min(1 thread) / min(T threads) is what this (shared, virtual) machine gave T
    threads at those moments: the ceiling for any code's speed-up then.
    """

    def __init__(self, rows: int = 32, ring_degree: int = 16384) -> None:
        import numpy as np

        from ckks.ring import rns
        from ckks.ring.primes import ntt_primes

        self.what = f"forward NTT of {rows} independent rows"
        q = ntt_primes(51, ring_degree, 1)[0]
        self._rows = np.random.default_rng(0).integers(0, q, (rows, ring_degree), dtype=np.uint64)
        self._tables = rns.rns_basis((q,), ring_degree).tables * rows
        self.seconds: dict[int, list[float]] = {}

    def sample(self, calls: int = 3) -> float:
        """Time the transform ``calls`` times at the current thread count, keep each time under that count,
        and return the fastest.

        Raises:
            ValueError: ``calls`` < 1.
        """
        import time

        import ckks
        from ckks.ring.ntt import ntt_forward

        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ValueError(f"calls must be a positive integer, got {calls!r}")
        times = []
        for _ in range(calls):
            work = self._rows.copy()
            start = time.perf_counter()
            ntt_forward(work, self._tables)
            times.append(time.perf_counter() - start)
        self.seconds.setdefault(ckks.get_threads(), []).extend(times)
        return min(times)

    def speedup(self, first: int, threads: int,
                statistic: Callable[[list[float]], float] = min) -> float | None:
        """statistic(seconds at ``first`` threads) / statistic(seconds at ``threads``): with ``min``, what the
        best moments gave; with ``statistics.median``, what a typical one did. None before both were
        sampled."""
        if not self.seconds.get(first) or not self.seconds.get(threads):
            return None
        return statistic(self.seconds[first]) / statistic(self.seconds[threads])
