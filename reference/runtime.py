"""Process-level controls around HElayers runs: thread count, native output capture, peak memory.

HElayers parallelises with OpenMP through the ``libgomp`` bundled in the pyhelayers wheel
(``pyhelayers.libs/libgomp-*.so``). ``omp_set_num_threads`` on that very library changes the thread count
at run time for calls made from this thread (OpenMP 5.0, section 3.2.1); ``OMP_NUM_THREADS`` would only be
read when the library loads. SEAL itself is single-threaded. Every control here is a context manager that
restores what it changed.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ckks.memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from reference.errors import HelayersInputError, HelayersUnavailable


def _bundled_openmp(pyhelayers: ModuleType) -> ctypes.CDLL:
    """The OpenMP runtime pyhelayers links against (the same handle the loaded extension uses).

    Raises:
        HelayersUnavailable: the wheel's libgomp cannot be found next to the pyhelayers package.
    """
    site = os.path.dirname(os.path.dirname(os.path.abspath(pyhelayers.__file__)))
    candidates = sorted(glob.glob(os.path.join(site, "pyhelayers.libs", "libgomp*.so*")))
    if not candidates:
        raise HelayersUnavailable(f"cannot find the OpenMP runtime bundled with pyhelayers under {site}")
    return ctypes.CDLL(candidates[0])


@contextmanager
def openmp_threads(pyhelayers: ModuleType, threads: int) -> Iterator[int]:
    """Run the block with HElayers' OpenMP limited to ``threads``; yields the count OpenMP reports.

    Raises:
        HelayersInputError: ``threads`` is not a positive integer.
        HelayersUnavailable: the bundled OpenMP runtime is missing.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise HelayersInputError(f"threads must be a positive integer, got {threads!r}")
    omp = _bundled_openmp(pyhelayers)
    previous = omp.omp_get_max_threads()
    omp.omp_set_num_threads(threads)
    try:
        yield int(omp.omp_get_max_threads())
    finally:
        omp.omp_set_num_threads(previous)


@contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Redirect file descriptors 1 and 2 (where HElayers' C++ code and HDF5 print) into a list of one string.

    HElayers explains an infeasible compilation only by printing; capturing it lets us put the reasons
    into the error we raise, and keeps them (and HDF5's diagnostics) off a ``--quiet`` terminal.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    captured: list[str] = []
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", errors="replace"))


class PeakRss:
    """Peak resident memory of the process during a block, in bytes (``.peak_bytes`` after exit).

    On Linux the kernel's high-water mark is reset on entry (``ckks.memory.reset_peak_rss``), so the figure
    covers the block only. Where that is impossible the figure is the process-wide peak since start, and
    ``.scope`` says so.
    """

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.scope = "block"

    def __enter__(self) -> PeakRss:
        self.scope = "block" if reset_peak_rss() and current_rss_bytes() is not None else "process"
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak_bytes = peak_rss_bytes()
