"""How many threads the engine's parallel kernels use.

The kernels (the NTT, base conversion, the key-switching inner product, mod-down, rescale, the
automorphism, the dot products and the element-wise RNS arithmetic) run their jobs, RNS limbs or blocks of
them, in parallel on Numba's threads, each job claimed by the first thread free (``ckks.ring.schedule``).
Each job is computed by the same code whatever thread computes it, so results are bit-identical for every
thread count. The count can be
at most Numba's pool size, fixed when Numba starts: ``NUMBA_NUM_THREADS`` if set, else the number of cores.

Work outside the kernels that releases Python's GIL (hashing a buffer, numpy's copies and comparisons, as in
loading a batch of ciphertexts) shares the same count of Python threads: ``map_in_threads``; at one thread
it runs in the calling thread, in order, and so it does while ``ckks.instrument.recording()`` is on (its
recorder belongs to one thread: every timed call is booked).

Numba's "omp" threading layer runs the kernels on GNU OpenMP (libgomp), whose idle threads wait for the next
kernel by spinning ``GOMP_SPINCOUNT`` times before they sleep; libgomp reads the variable once, when it is
loaded. Its default, 300,000 spins, keeps a thread busy about 7.5 ms after every kernel on this project's
2-core machine (``benchmarks/server_threads.py`` prints it). That is right for a process that has the cores
to itself, whose next kernel follows within microseconds: with 10,000 spins (0.35 ms), the two-thread
predict of ``ckkslab bench inference`` took 0.14-0.18 s instead of 0.13 s. It is wrong where processes
share the cores: ``spin_briefly_before_sleeping`` is for those, and the embedded Dask cluster uses it for its
client (the ``ckkslab`` command) and gives its workers the same count (``nn.dask_scheduler``).
"""

from __future__ import annotations

import ctypes
import numbers
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numba

from .errors import ParameterError
from .instrument import active as recording_active

# About 0.35 ms of spinning on this machine.
SHARED_CORES_SPIN_COUNT = 10_000


def spin_briefly_before_sleeping() -> bool:
    """For a process whose cores other busy processes need too: load libgomp now with ``GOMP_SPINCOUNT`` =
    ``SHARED_CORES_SPIN_COUNT``, so that an idle kernel thread soon sleeps. Call it before the first kernel
    or ``set_threads``; returns whether it took effect.

    The variable is removed again at once (libgomp has read it): child processes, and another OpenMP
    runtime loaded later (pyhelayers bundles its own libgomp), do not see it. Nothing changes if the user
    chose a wait policy (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` is set), if libgomp is loaded already (its
    setting is fixed), or if there is none (Numba then runs another threading layer).
    """
    no_load = getattr(os, "RTLD_NOLOAD", None)  # POSIX only; elsewhere there is no libgomp.so.1 either
    if no_load is None or "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return False
    try:
        ctypes.CDLL("libgomp.so.1", mode=no_load)  # succeeds only if it is loaded already
        return False
    except OSError:
        pass
    os.environ["GOMP_SPINCOUNT"] = str(SHARED_CORES_SPIN_COUNT)
    try:
        ctypes.CDLL("libgomp.so.1")
        return True
    except OSError:  # no GNU OpenMP here
        return False
    finally:
        del os.environ["GOMP_SPINCOUNT"]


def available_threads() -> int:
    """The size of Numba's thread pool: the most threads ``set_threads`` accepts."""
    return int(numba.config.NUMBA_NUM_THREADS)


def set_threads(count: int | None = None) -> int:
    """Run the parallel kernels on ``count`` threads (None: all of ``available_threads()``); returns it.

    The setting belongs to the calling thread (Numba's rule), like an OpenMP ``omp_set_num_threads``.

    Raises:
        ParameterError: ``count`` is not an integer in [1, available_threads()].
    """
    most = available_threads()
    if count is None:
        count = most
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 1 <= count <= most:
        raise ParameterError(f"threads must be an integer in [1, {most}] (this machine's cores, or "
                             f"NUMBA_NUM_THREADS), got {count!r}")
    numba.set_num_threads(int(count))
    return int(count)


def get_threads() -> int:
    """The number of threads the parallel kernels use now."""
    return int(numba.get_num_threads())


T = TypeVar("T")
R = TypeVar("R")
_pools: dict[int, ThreadPoolExecutor] = {}  # one pool per thread count, made on first use
# A forked child has none of its parent's threads: its pools are made anew (the inherited ones would hang).
os.register_at_fork(after_in_child=_pools.clear)


def _pool() -> ThreadPoolExecutor | None:
    """The Python thread pool of ``get_threads()`` workers; None at one thread or while recording."""
    count = get_threads()
    if count == 1 or recording_active() is not None:
        return None
    if count not in _pools:
        _pools[count] = ThreadPoolExecutor(max_workers=count, thread_name_prefix=f"ckks-{count}")
    return _pools[count]


def map_in_threads(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(item) for item in items], the calls shared among ``get_threads()`` Python threads.

    Worth it only when ``fn`` spends its time with the GIL released. The results are in the order of the
    items, and an exception is the one the first failing item (in that order) raised, as in the plain loop.
    ``fn`` must not itself wait on this pool (the workers could all be waiting).
    """
    pool = _pool()
    return [fn(item) for item in items] if pool is None else list(pool.map(fn, items))
