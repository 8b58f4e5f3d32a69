"""The parallel kernels' job sharing, static shares against claims from a counter (``ckks.ring.schedule``),
on the transform that dominates a predict: forward NTTs of 100 limbs of N = 16384 over 10 primes (the rows
the square activation's relinearization transforms).

    .venv/bin/python benchmarks/dynamic_schedule.py [--rounds 30] [--json F]

``ckks.ring.ntt._forward_rows`` claims its rows from a counter; the static version here is the same loop
over ``prange(rows)``, which gives each thread one fixed contiguous share. Each round times both, three
calls each, at 1 thread and then at 2, on the same rows, so that a slow spell of the host hits both; the
results are checked to be equal. Printed per version and thread count: minimum and median, and the speed-up
from 1 to 2 threads of each statistic. On a shared host whose cores change speed from moment to moment, the
static version's 2-thread time follows the slower core's; the counter's, the two together.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from numba import njit, prange

import ckks
from benchmarks.rounds_cli import main_over_rounds
from ckks.ring.ntt import _forward_rows, _stacked, ntt_forward_limb
from ckks.ring.primes import ntt_primes
from ckks.warmup import target_cpu

N, ROWS, PRIMES, CALLS = 16384, 100, 10, 3


@njit(cache=True, parallel=True)
def _forward_rows_static(a, rows, table, psi_rev, psi_rev_shoup, narrow, narrow_shoup, q):
    """``_forward_rows`` with ``prange``'s static shares: thread k of T transforms rows k R/T .. (k+1) R/T."""
    for r in prange(rows.shape[0]):
        t = table[r]
        ntt_forward_limb(a[rows[r]], psi_rev[t], psi_rev_shoup[t], narrow[t], narrow_shoup[t], q[t])


VERSIONS = {"static": _forward_rows_static, "counter": _forward_rows}


def run(rounds: int = 30) -> dict:
    """Time both versions at 1 and 2 threads ``rounds`` times, alternating (after one untimed call each).

    Raises:
        ValueError: ``rounds`` < 1, one core only, or the two versions disagree.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if ckks.available_threads() < 2:
        raise ValueError("one core: no second thread to compare with")
    moduli = tuple(ntt_primes(51, N, PRIMES))
    st = _stacked(moduli, N)
    limbs = np.random.default_rng(0).integers(0, min(moduli), (ROWS, N), dtype=np.uint64)
    rows = np.arange(ROWS, dtype=np.int64)
    operands = (rows, rows % PRIMES, st["psi_rev"], st["psi_rev_shoup"], st["narrow_rev"],
                st["narrow_rev_shoup"], st["modulus"])
    work = {name: limbs.copy() for name in VERSIONS}
    for name, kernel in VERSIONS.items():
        kernel(work[name], *operands)
    if not np.array_equal(work["static"], work["counter"]):
        raise ValueError("the static and the counter versions transform the rows differently")
    before = ckks.get_threads()
    seconds: dict[str, dict[int, list[float]]] = {name: {1: [], 2: []} for name in VERSIONS}
    try:
        for _ in range(rounds):
            for threads in (1, 2):
                ckks.set_threads(threads)
                for name, kernel in VERSIONS.items():
                    for _ in range(CALLS):
                        work[name][:] = limbs
                        start = time.perf_counter()
                        kernel(work[name], *operands)
                        seconds[name][threads].append(time.perf_counter() - start)
    finally:
        ckks.set_threads(before)
    result = {}
    for name, by_count in seconds.items():
        stats = {f"{label}_s": {t: fn(s) for t, s in by_count.items()}
                 for label, fn in (("min", min), ("median", statistics.median))}
        result[name] = {**stats, "speedup": stats["min_s"][1] / stats["min_s"][2],
                        "speedup_median": stats["median_s"][1] / stats["median_s"][2], "runs_s": by_count}
    return {"benchmark": "dynamic-schedule", "rounds": rounds, "calls_per_round": CALLS, "cpu": target_cpu(),
            "rows": ROWS, "primes": PRIMES, "ring_degree": N, "versions": result}


def show(result: dict, rounds: int) -> None:
    """Each version's minimum and median at 1 and 2 threads, and its speed-ups."""
    print(f"forward NTT of {result['rows']} rows (N = {result['ring_degree']}, {result['primes']} primes), "
          f"{result['cpu']}; {rounds} rounds of {result['calls_per_round']} calls per version and count")
    for name, row in result["versions"].items():
        low, mid = row["min_s"], row["median_s"]
        print(f"  {name:<8} 1 thread {low[1] * 1e3:7.2f} ms (median {mid[1] * 1e3:7.2f}), 2 threads "
              f"{low[2] * 1e3:7.2f} ms (median {mid[2] * 1e3:7.2f}): speed-up {row['speedup']:.2f} "
              f"(medians {row['speedup_median']:.2f})")


def main(argv: list[str] | None = None) -> int:
    return main_over_rounds(argv, __doc__, 30, "of both versions at both counts", run, show)


if __name__ == "__main__":
    sys.exit(main())
