"""The negacyclic number-theoretic transform over Z_q[X]/(X^N + 1), one RNS limb per row.

Forward: a(X) -> (a(psi^(2*brv(k)+1)))_k, the evaluations at the odd powers of a primitive 2N-th root psi,
in bit-reversed order k. The twist by powers of psi is merged into the butterflies (Longa, Naehrig, CANS 2016):
Cooley-Tukey forward, Gentleman-Sande inverse, no separate pre/post multiplication. Butterflies use Shoup's
precomputed twiddles and Harvey's lazy reduction (Harvey 2014): forward values stay in [0, 4q), inverse
values in [0, 2q), and one final pass brings them to [0, q).

Speed comes from the loop shape: for the wide stages (half-size t >= 8), each block's two halves are passed
as separate array views to a kernel with one twiddle, a loop LLVM vectorises; for the narrow stages the
array is viewed as (blocks, 2t) and each column is one vectorisable loop with a per-block twiddle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numba import njit

from ..instrument import timed
from .modarith import mulhi, shoup_mul, shoup_precompute
from .primes import minimal_primitive_root

_WIDE = 8  # stages with half-size t >= _WIDE use one twiddle per contiguous block


@dataclass(frozen=True)
class NttTable:
    """Twiddles of one prime q for ring degree N (all read-only uint64 arrays of length N).

    psi_rev[k] = psi^brv(k); psi_inv_rev[k] = psi^-brv(k); the *_shoup arrays are floor(w * 2^64 / q).
    """

    modulus: int
    ring_degree: int
    psi_rev: np.ndarray
    psi_rev_shoup: np.ndarray
    psi_inv_rev: np.ndarray
    psi_inv_rev_shoup: np.ndarray
    n_inv: int
    n_inv_shoup: int


def bit_reverse_permutation(n: int) -> np.ndarray:
    """brv: the permutation of range(n) (n a power of two) reversing the log2(n)-bit index."""
    bits = n.bit_length() - 1
    idx = np.arange(n, dtype=np.int64)
    rev = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def _powers(base: int, n: int, q: int) -> np.ndarray:
    out = [1] * n
    for i in range(1, n):
        out[i] = out[i - 1] * base % q
    return np.array(out, dtype=np.uint64)


@cache
def ntt_table(q: int, ring_degree: int) -> NttTable:
    """The NTT twiddle table of prime q (q = 1 mod 2N) for ring degree N, built once and cached."""
    psi = minimal_primitive_root(2 * ring_degree, q)
    rev = bit_reverse_permutation(ring_degree)
    psi_rev = _powers(psi, ring_degree, q)[rev]
    psi_inv_rev = _powers(pow(psi, -1, q), ring_degree, q)[rev]
    n_inv = pow(ring_degree, -1, q)
    arrays = [psi_rev, shoup_precompute(psi_rev, q), psi_inv_rev, shoup_precompute(psi_inv_rev, q)]
    for a in arrays:
        a.setflags(write=False)
    return NttTable(q, ring_degree, *arrays, n_inv, int(shoup_precompute(n_inv, q)))


@njit(cache=True)
def _ct_block(x, y, w, w_shoup, q, two_q):
    """Cooley-Tukey butterflies (x, y) <- (x + w*y, x - w*y) with one twiddle; values lazy in [0, 4q)."""
    for j in range(x.shape[0]):
        u = x[j]
        u = u - two_q if u >= two_q else u
        v = y[j] * w - mulhi(y[j], w_shoup) * q
        x[j] = u + v
        y[j] = u - v + two_q


@njit(cache=True)
def _ct_column(x, y, w, w_shoup, q, two_q):
    """The same butterflies with a twiddle per element (narrow stages, one column of blocks)."""
    for j in range(x.shape[0]):
        u = x[j]
        u = u - two_q if u >= two_q else u
        v = y[j] * w[j] - mulhi(y[j], w_shoup[j]) * q
        x[j] = u + v
        y[j] = u - v + two_q


@njit(cache=True)
def _gs_block(x, y, w, w_shoup, q, two_q):
    """Gentleman-Sande butterflies (x, y) <- (x + y, (x - y) * w); values lazy in [0, 2q)."""
    for j in range(x.shape[0]):
        u = x[j] + y[j]
        t = x[j] - y[j] + two_q
        x[j] = u - two_q if u >= two_q else u
        y[j] = t * w - mulhi(t, w_shoup) * q


@njit(cache=True)
def _gs_column(x, y, w, w_shoup, q, two_q):
    """Gentleman-Sande butterflies with a twiddle per element."""
    for j in range(x.shape[0]):
        u = x[j] + y[j]
        t = x[j] - y[j] + two_q
        x[j] = u - two_q if u >= two_q else u
        y[j] = t * w[j] - mulhi(t, w_shoup[j]) * q


@njit(cache=True)
def ntt_forward_limb(a, psi_rev, psi_rev_shoup, q):
    """In place: a (coefficients in [0, q)) -> its negacyclic NTT in bit-reversed order, in [0, q)."""
    n = a.shape[0]
    two_q = q + q
    t, m = n, 1
    while m < n:
        t //= 2
        if t >= _WIDE:
            for i in range(m):
                j1 = 2 * i * t
                _ct_block(a[j1 : j1 + t], a[j1 + t : j1 + 2 * t], psi_rev[m + i], psi_rev_shoup[m + i], q, two_q)
        else:
            blocks = a.reshape(m, 2 * t)
            for c in range(t):
                _ct_column(blocks[:, c], blocks[:, t + c], psi_rev[m : 2 * m], psi_rev_shoup[m : 2 * m], q, two_q)
        m *= 2
    for j in range(n):
        v = a[j]
        v = v - two_q if v >= two_q else v
        a[j] = v - q if v >= q else v


@njit(cache=True)
def ntt_inverse_limb(a, psi_inv_rev, psi_inv_rev_shoup, n_inv, n_inv_shoup, q):
    """In place: the inverse of ``ntt_forward_limb``, including the factor N^-1; output in [0, q)."""
    n = a.shape[0]
    two_q = q + q
    t, m = 1, n
    while m > 1:
        h = m // 2
        if t >= _WIDE:
            for i in range(h):
                j1 = 2 * i * t
                _gs_block(a[j1 : j1 + t], a[j1 + t : j1 + 2 * t], psi_inv_rev[h + i], psi_inv_rev_shoup[h + i],
                          q, two_q)
        else:
            blocks = a.reshape(h, 2 * t)
            for c in range(t):
                _gs_column(blocks[:, c], blocks[:, t + c], psi_inv_rev[h:m], psi_inv_rev_shoup[h:m], q, two_q)
        t *= 2
        m = h
    for j in range(n):
        a[j] = shoup_mul(a[j], n_inv, n_inv_shoup, q)


@timed("ntt")
def ntt_forward(a: np.ndarray, tables: tuple[NttTable, ...]) -> None:
    """In place, row by row: each limb a[i] (mod tables[i].modulus) to NTT form."""
    for row, tab in zip(a, tables, strict=True):
        ntt_forward_limb(row, tab.psi_rev, tab.psi_rev_shoup, np.uint64(tab.modulus))


@timed("intt")
def ntt_inverse(a: np.ndarray, tables: tuple[NttTable, ...]) -> None:
    """In place, row by row: each limb a[i] from NTT form back to coefficients."""
    for row, tab in zip(a, tables, strict=True):
        ntt_inverse_limb(row, tab.psi_inv_rev, tab.psi_inv_rev_shoup, np.uint64(tab.n_inv),
                         np.uint64(tab.n_inv_shoup), np.uint64(tab.modulus))
