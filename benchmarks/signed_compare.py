"""The lazy reductions' comparison, unsigned against signed (``ckks.ring.modarith.conditional_subtract``), in
the two loops that dominate a predict: the NTT's butterflies and the tensor multiply-accumulate.

    .venv/bin/python benchmarks/signed_compare.py [--rounds 30] [--json F]

Every value a lazy reduction compares is below 4q < 2^63, where the signed and the unsigned comparisons of
64-bit integers agree. AVX2 has only the signed one: LLVM builds the unsigned one by flipping both sign bits.
Each loop is compiled twice here, identical but for the comparison: ``v - m if v >= m else v`` on the
unsigned values, or ``conditional_subtract``. The two run alternately in one process on the same data (so
a slow spell of the host hits both), at one thread; each keeps its minimum over the rounds, and their
results are checked to be equal. Printed: both minima and signed / unsigned (below 1: the signed
comparison is faster).
- butterflies: Cooley-Tukey butterflies with Shoup's twiddle product and Harvey's lazy reduction (as
  ``ckks.ring.ntt``), log2(N) passes over each of 8 limbs of N = 16384 (each pass pairs the two halves).
- multiply-accumulate: sum over 14 terms of (w0 x0, w1 x0 + w0 x1, w1 x1), lazy in [0, 2q), per slot
  of 6 limbs (the first Dense layer's inner loop, ``ckks.ring.dot_kernels``, without its cache blocking).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from numba import njit

import ckks
from benchmarks.rounds_cli import main_over_rounds
from ckks.ring.modarith import conditional_subtract, shoup_quotient
from ckks.ring.primes import ntt_primes
from ckks.warmup import target_cpu

N, LIMBS, TERMS = 16384, 8, 14


@njit(inline="always")
def _unsigned_subtract(v, m):
    """The comparison as Python writes it: unsigned, on the uint64 values."""
    return v - m if v >= m else v


def _lazy_product(reduce):
    """Harvey's lazy Shoup product a * w mod q in [0, 2q) (as ``modarith.shoup_mul_lazy``), by ``reduce``."""

    @njit(inline="always")
    def lazy_product(a, w, w_shoup, q):
        return reduce(a * w - shoup_quotient(a, w_shoup) * q, q + q)

    return lazy_product


def _butterflies(reduce):
    """A kernel of Cooley-Tukey butterfly passes whose lazy reductions are ``reduce``."""
    lazy_product = _lazy_product(reduce)

    @njit
    def passes(a, w, w_shoup, q):
        half = a.shape[1] // 2
        for i in range(a.shape[0]):
            two_q = q[i] + q[i]
            x, y = a[i, :half], a[i, half:]
            for _ in range(14):
                for j in range(half):
                    u = reduce(x[j], two_q)
                    v = lazy_product(y[j], w[i], w_shoup[i], q[i])
                    x[j] = u + v
                    y[j] = u - v + two_q

    return passes


def _tensor_sums(reduce):
    """A kernel of the tensor multiply-accumulate whose lazy reductions are ``reduce``."""
    lazy_product = _lazy_product(reduce)

    @njit
    def sums(x, x_shoup, w, q, out):
        for i in range(x.shape[1]):  # x: (component, limb, slot)
            qi = q[i]
            two_q = qi + qi
            a0, a1, a2 = out[0, i], out[1, i], out[2, i]
            a0[:] = 0
            a1[:] = 0
            a2[:] = 0
            for t in range(w.shape[0]):
                x0, x1, s0, s1 = x[0, i], x[1, i], x_shoup[0, i], x_shoup[1, i]
                w0, w1 = w[t, 0, i], w[t, 1, i]
                for k in range(x.shape[2]):
                    a0[k] = reduce(a0[k] + lazy_product(w0[k], x0[k], s0[k], qi), two_q)
                    v = reduce(a1[k] + lazy_product(w1[k], x0[k], s0[k], qi), two_q)
                    a1[k] = reduce(v + lazy_product(w0[k], x1[k], s1[k], qi), two_q)
                    a2[k] = reduce(a2[k] + lazy_product(w1[k], x1[k], s1[k], qi), two_q)

    return sums


def _companions(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """floor(v * 2^64 / q) per entry, q broadcast along the limbs axis (-2), with Python integers."""
    flat = [(int(v) << 64) // int(m) for v, m in zip(values.ravel(), np.broadcast_to(q, values.shape).ravel(),
                                                        strict=True)]
    return np.array(flat, dtype=np.uint64).reshape(values.shape)


def run(rounds: int = 30) -> dict:
    """Time both loops in both versions ``rounds`` times, alternating (after one untimed call each).

    Raises:
        ValueError: ``rounds`` < 1, or the two versions of a loop disagree.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    rng = np.random.default_rng(0)
    q = np.array(ntt_primes(60, N, LIMBS), dtype=np.uint64)
    limbs = rng.integers(0, 1 << 62, (LIMBS, N), dtype=np.uint64) % q[:, None]
    twiddles = rng.integers(0, 1 << 62, LIMBS, dtype=np.uint64) % q
    twiddles_shoup = _companions(twiddles, q)
    x = rng.integers(0, 1 << 62, (2, 6, 512), dtype=np.uint64) % q[None, :6, None]
    x_shoup = _companions(x, q[:6, None])
    x, x_shoup = np.ascontiguousarray(np.tile(x, 32)), np.ascontiguousarray(np.tile(x_shoup, 32))  # N slots
    w = rng.integers(0, 1 << 62, (TERMS, 2, 6, N), dtype=np.uint64) % q[None, None, :6, None]
    versions = {"unsigned": _unsigned_subtract, "signed": conditional_subtract}
    loops = {"butterflies": {name: _butterflies(f) for name, f in versions.items()},
             "multiply-accumulate": {name: _tensor_sums(f) for name, f in versions.items()}}
    before = ckks.get_threads()
    seconds: dict[str, dict[str, list[float]]] = {loop: {v: [] for v in versions} for loop in loops}
    results: dict[str, dict[str, np.ndarray]] = {loop: {} for loop in loops}
    try:
        ckks.set_threads(1)
        for round_ in range(rounds + 1):  # round 0 compiles both versions and warms up
            for name in versions:
                data = limbs.copy()
                start = time.perf_counter()
                loops["butterflies"][name](data, twiddles, twiddles_shoup, q)
                middle = time.perf_counter()
                out = np.empty((3, 6, N), dtype=np.uint64)
                loops["multiply-accumulate"][name](x, x_shoup, w, q, out)
                end = time.perf_counter()
                results["butterflies"][name], results["multiply-accumulate"][name] = data, out
                if round_:
                    seconds["butterflies"][name].append(middle - start)
                    seconds["multiply-accumulate"][name].append(end - middle)
    finally:
        ckks.set_threads(before)
    for loop, by_version in results.items():
        if not np.array_equal(by_version["unsigned"], by_version["signed"]):
            raise ValueError(f"the {loop} differ between the unsigned and the signed comparison")
    best = {loop: {v: min(s) for v, s in per.items()} for loop, per in seconds.items()}
    return {"benchmark": "signed-compare", "rounds": rounds, "cpu": target_cpu(),
            "loops": {loop: {"min_s": b, "signed_over_unsigned": b["signed"] / b["unsigned"],
                             "runs_s": seconds[loop]} for loop, b in best.items()}}


def show(result: dict, rounds: int) -> None:
    """Both minima of each loop and signed / unsigned."""
    print(f"lazy reductions, unsigned against signed comparison, 1 thread, {result['cpu']}; minima of "
          f"{rounds} alternating rounds")
    for loop, row in result["loops"].items():
        print(f"  {loop:<20} unsigned {row['min_s']['unsigned'] * 1e3:8.3f} ms, signed "
              f"{row['min_s']['signed'] * 1e3:8.3f} ms: signed / unsigned {row['signed_over_unsigned']:.3f}")


def main(argv: list[str] | None = None) -> int:
    return main_over_rounds(argv, __doc__, 30, "of each version", run, show)


if __name__ == "__main__":
    sys.exit(main())
