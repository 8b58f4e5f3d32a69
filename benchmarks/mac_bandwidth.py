"""The first Dense layer's multiply-accumulate with encrypted weights, against reading its weights: whether a
second thread's gain on this kernel is bounded by the memory bandwidth this machine gives it.

    .venv/bin/python benchmarks/mac_bandwidth.py [--rounds 6] [--json F]

The shape is the clinical model's first layer (``ckkslab profile`` lists it): 14 input ciphertexts, 10
outputs, 140 weight ciphertexts of 6 limbs at N = 16384: 220 MB that
``ckks.ring.dot_kernels.dot_tensor_shoup`` streams once per batch (the Shoup companions are the inputs',
which stay in the cache). Each round times, at 1 thread and then at 2 (``ckks.set_threads``): (a) a plain
read of those 220 MB (XOR of the weights, a parallel loop with nothing serial), (b) the multiply-accumulate
itself. Reported: the minimum of each, the bandwidth it reached (weights' bytes / seconds), and each one's
speed-up from 1 to 2 threads. The read's speed-up is the ceiling for any kernel bound by these bytes; the
multiply-accumulate's results are checked to be the same at both counts. Random residues stand in for the
weights: the timing depends on the shapes only.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from numba import njit, prange

from benchmarks.rounds_cli import main_over_rounds

N, LIMBS, INPUTS, OUTPUTS = 16384, 6, 14, 10


@njit(cache=True, parallel=True)
def _read_all(w):
    """XOR of every weight word, per limb (the limbs go to the threads): a read, no more."""
    out = np.zeros(w.shape[2], dtype=np.uint64)
    for i in prange(w.shape[2]):
        acc = np.uint64(0)
        for t in range(w.shape[0]):
            for c in range(w.shape[1]):
                row = w[t, c, i]
                for k in range(w.shape[3]):
                    acc ^= row[k]
        out[i] = acc
    return out


def run(rounds: int = 6) -> dict:
    """Time the read and the multiply-accumulate ``rounds`` times at 1 and at 2 threads, alternating.

    Raises:
        ValueError: ``rounds`` < 1, or a machine with one core (nothing to compare).
    """
    import ckks
    from ckks.ring import rns
    from ckks.ring.dot_kernels import dot_tensor_shoup
    from ckks.ring.primes import ntt_primes

    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if ckks.available_threads() < 2:
        raise ValueError("one core: no second thread to compare with")
    basis = rns.rns_basis(tuple(ntt_primes(51, N, LIMBS)), N)
    q = np.array(basis.moduli, dtype=np.uint64)[None, None, :, None]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1 << 62, (INPUTS, 2, LIMBS, N), dtype=np.uint64) % q
    w = rng.integers(0, 1 << 62, (INPUTS * OUTPUTS, 2, LIMBS, N), dtype=np.uint64) % q
    terms = [[(i, r * INPUTS + i) for i in range(INPUTS)] for r in range(OUTPUTS)]
    before = ckks.get_threads()
    seconds: dict[str, dict[int, list[float]]] = {"read": {1: [], 2: []}, "mac": {1: [], 2: []}}
    results = {}
    try:
        for round_ in range(rounds + 1):  # round 0 compiles and warms up
            for threads in (1, 2):
                ckks.set_threads(threads)
                start = time.perf_counter()
                _read_all(w)
                middle = time.perf_counter()
                results[threads] = dot_tensor_shoup(x, w, terms, basis)
                if round_:
                    seconds["read"][threads].append(middle - start)
                    seconds["mac"][threads].append(time.perf_counter() - middle)
    finally:
        ckks.set_threads(before)
    if not np.array_equal(results[1], results[2]):
        raise ValueError("the multiply-accumulate differs between 1 and 2 threads")
    gigabytes = w.nbytes / 1e9
    out = {"benchmark": "mac-bandwidth", "weights_gb": gigabytes, "rounds": rounds}
    for name, per_count in seconds.items():
        best = {t: min(s) for t, s in per_count.items()}
        out[name] = {"min_s": best, "gb_per_s": {t: gigabytes / s for t, s in best.items()},
                     "speedup": best[1] / best[2], "runs_s": per_count}
    return out


def show(result: dict, rounds: int) -> None:
    """Each minimum, its bandwidth and each speed-up."""
    print(f"first Dense layer, encrypted weights: {INPUTS} inputs x {OUTPUTS} outputs, {LIMBS} limbs, "
          f"N = {N}: {result['weights_gb']:.2f} GB of weights; minima of {rounds} rounds")
    for name, label in (("read", "read of the weights"), ("mac", "multiply-accumulate")):
        row = result[name]
        print(f"  {label:<22} 1 thread {row['min_s'][1] * 1e3:7.2f} ms ({row['gb_per_s'][1]:5.1f} GB/s), "
              f"2 threads {row['min_s'][2] * 1e3:7.2f} ms ({row['gb_per_s'][2]:5.1f} GB/s): "
              f"speed-up {row['speedup']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    return main_over_rounds(argv, __doc__, 6, "per thread count", run, show)


if __name__ == "__main__":
    sys.exit(main())
