"""How many threads the engine's parallel kernels use.

The kernels (the NTT, base conversion, the key-switching inner product, mod-down, rescale, the
automorphism, the dot products and the element-wise RNS arithmetic) run their RNS limbs in parallel with
Numba's ``prange``. Each limb is computed by the same
code whatever thread computes it, so results are bit-identical for every thread count. The count can be
at most Numba's pool size, fixed when Numba starts: ``NUMBA_NUM_THREADS`` if set, else the number of cores.
"""

from __future__ import annotations

import numbers

import numba

from .errors import ParameterError


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
