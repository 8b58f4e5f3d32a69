"""Sampling the secret, the errors and the masks: uniform ternary, discrete Gaussian, uniform mod q.

The randomness comes from the operating system's CSPRNG (``os.urandom``) unless a seed is given. A seed makes
runs reproducible and is for TESTS ONLY: it switches to numpy's PCG64, which is not cryptographically secure.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..instrument import timed

GAUSSIAN_SIGMA = 3.2  # Homomorphic Encryption Standard, section 2.1
GAUSSIAN_TAIL = 6  # tail cut at 6 sigma
GAUSSIAN_BOUND = math.ceil(GAUSSIAN_TAIL * GAUSSIAN_SIGMA)  # 20: every error coefficient is in [-20, 20]


class RandomSource:
    """Uniform random 64-bit words: OS CSPRNG by default, or a seeded PCG64 for reproducible tests only."""

    def __init__(self, seed: int | None = None) -> None:
        self.seeded = seed is not None
        self._rng = np.random.Generator(np.random.PCG64(seed)) if self.seeded else None

    def words(self, count: int) -> np.ndarray:
        """``count`` independent uniform uint64 words."""
        if self._rng is not None:
            return self._rng.integers(0, 2**64, size=count, dtype=np.uint64, endpoint=False)
        return np.frombuffer(os.urandom(8 * count), dtype=np.uint64).copy()

    def unit_floats(self, count: int) -> np.ndarray:
        """``count`` uniform floats in [0, 1) with 53 random bits each."""
        return (self.words(count) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@timed("sample_ternary")
def ternary(source: RandomSource, n: int) -> np.ndarray:
    """n coefficients uniform in {-1, 0, 1} (int64): the uniform ternary secret of the HE Standard."""
    # Rejection from 2-bit values {0,1,2,3}: keep 0..2, map to -1..1.
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        w = source.words(n // 8 + 8)
        two_bits = np.stack([(w >> np.uint64(2 * k)) & np.uint64(3) for k in range(32)], axis=1).ravel()
        out = np.concatenate([out, two_bits[two_bits < 3].astype(np.int64) - 1])
    return out[:n]


def _gaussian_cdf() -> tuple[np.ndarray, np.ndarray]:
    support = np.arange(-GAUSSIAN_BOUND, GAUSSIAN_BOUND + 1)
    weights = np.exp(-(support.astype(np.float64) ** 2) / (2 * GAUSSIAN_SIGMA**2))
    cdf = np.cumsum(weights) / weights.sum()
    return support, cdf


_SUPPORT, _CDF = _gaussian_cdf()


@timed("sample_gaussian")
def gaussian(source: RandomSource, n: int) -> np.ndarray:
    """n coefficients from the discrete Gaussian of sigma 3.2 on [-20, 20] (int64), by inverting its CDF."""
    idx = np.searchsorted(_CDF, source.unit_floats(n), side="right")
    return _SUPPORT[np.minimum(idx, _SUPPORT.size - 1)]


@timed("sample_uniform")
def uniform_mod(source: RandomSource, moduli: tuple[int, ...], n: int) -> np.ndarray:
    """An (L, N) array with row i uniform in [0, q_i), by rejection of the top bits of 64-bit words."""
    out = np.empty((len(moduli), n), dtype=np.uint64)
    for i, q in enumerate(moduli):
        shift = np.uint64(64 - q.bit_length())
        row = np.empty(0, dtype=np.uint64)
        while row.size < n:
            w = source.words(n + n // 64 + 16) >> shift  # primes sit just below 2^bits: few rejections
            row = np.concatenate([row, w[w < np.uint64(q)]])
        out[i] = row[:n]
    return out
