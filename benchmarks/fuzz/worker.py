"""Running a loader's inputs, each in isolation.

Isolation: every input runs in a forked worker process; no answer within ``--timeout`` seconds (+2) counts as
a crash (a hang: HDF5 can loop in C code, where no signal reaches Python) and the worker is replaced.
Memory: the worker's address space is capped at its size + ``--mem-cap-mb`` (default 1024), so a loader that
believes a huge declared length fails loudly (MemoryError: a crash) instead of swapping the machine; the
peak RSS growth of every input is measured (VmHWM reset before each one) and the largest is reported.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .draw import NumpyDraw
from .mutators import mutate
from .oracle import BUGS, Loader, Result, classify


@contextlib.contextmanager
def memory_cap(extra_mb: int) -> Iterator[None]:
    """Cap the address space at its current size + ``extra_mb`` (restored on exit)."""
    if extra_mb <= 0:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    current = _vm_size()
    limit = current + extra_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_mb() -> float:
    """Peak resident set size since the last ``reset_peak_rss`` (VmHWM), or ru_maxrss where unavailable."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs); no-op elsewhere."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class Isolated:
    """Runs ``classify`` in a forked worker process, so that a hang inside C code (an HDF5 loop that no
    signal interrupts) is caught: no answer within ``timeout`` seconds counts as a crash, and the worker is
    killed and forked again. The worker also measures each input's peak RSS growth (VmHWM reset before every
    input).
    """

    def __init__(self, loader: Loader, timeout: float, mem_cap_mb: int = 1024) -> None:
        import multiprocessing

        self.loader, self.timeout, self.mem_cap_mb = loader, timeout, mem_cap_mb
        self.context = multiprocessing.get_context("fork")
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(self.loader, child, self.timeout,
                                                                   self.mem_cap_mb), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent

    def _restart(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()
        self.restarts += 1
        self._start()

    def classify(self, i: int, buf: bytes) -> tuple[str, str, float]:
        """(outcome, detail, peak RSS growth in MB) of one input."""
        self.conn.send((i, buf))
        if not self.conn.poll(self.timeout + 2):
            self._restart()
            return "crash", f"hang: no answer after {self.timeout + 2:g} s (worker killed) at ?", 0.0
        try:
            return self.conn.recv()
        except EOFError:
            self.process.join(1)
            code = self.process.exitcode
            self._restart()
            return "crash", f"worker died: exit code {code} (-11: a segmentation fault) at ?", 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(None)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker(loader: Loader, conn: Any, timeout: float, mem_cap_mb: int) -> None:
    with memory_cap(mem_cap_mb):
        while True:
            message = conn.recv()
            if message is None:
                return
            i, buf = message
            reset_peak_rss()
            rss = current_rss_mb()
            outcome, detail = classify(loader, i, buf, timeout)
            conn.send((outcome, detail, max(0.0, peak_rss_mb() - rss)))


def run_loader(loader: Loader, count: int, seed: int, foreign: Sequence[bytes], timeout: float,
               crash_dir: Path | None = None, progress: bool = False, mem_cap_mb: int = 1024) -> Result:
    """``count`` inputs through ``loader``: its edge cases, then mutations; each in an ``Isolated`` worker."""
    result = Result(loader.name)
    draw = NumpyDraw(seed)
    t0 = time.perf_counter()
    cases: Iterator[tuple[int, str, bytes]] = iter(loader.edge_cases)
    with Isolated(loader, timeout, mem_cap_mb) as runner:
        for n in range(count):
            case = next(cases, None)
            if case is None:
                i, buf = mutate(loader, draw, foreign)
                label = f"mutation #{n} of seed {i}"
            else:
                i, name, buf = case
                label = f"edge case {name}"
            outcome, detail, grown = runner.classify(i, buf)
            result.add(outcome, detail, buf, label)
            result.rss_growth_mb = max(result.rss_growth_mb, grown)
            if crash_dir is not None and outcome in BUGS and result.counts[outcome] <= 20:
                crash_dir.mkdir(parents=True, exist_ok=True)
                (crash_dir / f"{loader.name}-{outcome}-{result.counts[outcome]}.bin").write_bytes(buf)
            if progress and n and n % 5000 == 0:
                print(f"  {loader.name}: {n}/{count} ({time.perf_counter() - t0:.0f} s) "
                      f"{dict(result.counts)}", file=sys.stderr, flush=True)
    result.seconds = time.perf_counter() - t0
    return result
