"""Galois automorphisms X -> X^g of Z_q[X]/(X^N + 1), g odd, acting on the CKKS slots.

With slots at the roots zeta^(5^j) (see ``embedding``), g = 5^k rotates the slot vector left by k and
g = 2N - 1 conjugates every slot (CKKS 2017, section 4.2; Halevi-Shoup, "Algorithms in HElib", 2014).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from ..errors import ParameterError
from .ntt import bit_reverse_permutation
from .schedule import job_counter, next_job


def galois_element(step: int, ring_degree: int) -> int:
    """g = 5^step mod 2N: the automorphism that rotates the N/2 slots left by ``step`` (negative: right)."""
    slots = ring_degree // 2
    return pow(5, step % slots, 2 * ring_degree)


def conjugation_element(ring_degree: int) -> int:
    """g = 2N - 1 = -1 mod 2N: X -> X^-1, the automorphism that conjugates every slot."""
    return 2 * ring_degree - 1


@lru_cache(maxsize=256)
def ntt_permutation(galois: int, ring_degree: int) -> np.ndarray:
    """Index map p with NTT(a(X^g))[k] = NTT(a)[p[k]] for the bit-reversed negacyclic NTT.

    NTT(a)[k] = a(psi^e(k)) with e(k) = 2*brv(k) + 1, so a(X^g) at psi^e(k) is a at psi^(g*e(k) mod 2N):
    p[k] = brv((g*e(k) mod 2N - 1) / 2).

    Raises:
        ParameterError: if g is even (not an automorphism of the ring).
    """
    if galois % 2 == 0:
        raise ParameterError(f"Galois element {galois} is even: X -> X^g is an automorphism only for odd g")
    rev = bit_reverse_permutation(ring_degree)
    exponents = 2 * rev + 1
    target = (exponents * galois) % (2 * ring_degree)
    perm = rev[(target - 1) // 2]
    perm.setflags(write=False)
    return perm


@njit(cache=True, parallel=True)
def _permute_rows(a, perm, out):
    """out[i, k] = a[i, perm[k]] for every row i (the rows go to the threads)."""
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            row, dest = a[i], out[i]
            for k in range(perm.shape[0]):
                dest[k] = row[perm[k]]
            i = next_job(jobs)


def apply_ntt(a: np.ndarray, galois: int, ring_degree: int, out: np.ndarray | None = None) -> np.ndarray:
    """a(X^g) for ``a`` in NTT form (rows are RNS limbs): a permutation of the evaluation points; written
    into ``out`` (C-contiguous, a's shape and dtype, not overlapping a) if given.

    Raises:
        ValueError: an ``out`` of another shape or type, or overlapping ``a``.
    """
    rows = np.ascontiguousarray(a).reshape(-1, ring_degree)
    if out is None:
        out = np.empty(a.shape, dtype=rows.dtype)
    elif (out.shape != a.shape or out.dtype != rows.dtype or not out.flags.c_contiguous
          or np.may_share_memory(a, out)):
        raise ValueError(f"apply_ntt: out must be a separate C-contiguous {rows.dtype} array of shape "
                         f"{a.shape}, got {out.dtype} {out.shape}")
    _permute_rows(rows, ntt_permutation(galois, ring_degree), out.reshape(-1, ring_degree))
    return out


def apply_coefficients(a: np.ndarray, galois: int, moduli: tuple[int, ...]) -> np.ndarray:
    """a(X^g) for ``a`` in coefficient form: X^i -> X^(i*g mod 2N), with X^N = -1 (the definition)."""
    n = a.shape[-1]
    dest = (np.arange(n) * galois) % (2 * n)
    wraps = dest >= n
    out = np.empty_like(a)
    for row, q in zip(range(a.shape[0]), moduli, strict=True):
        vals = a[row].copy()
        vals[wraps] = (np.uint64(q) - vals[wraps]) % np.uint64(q)
        out[row, dest % n] = vals
    return out
