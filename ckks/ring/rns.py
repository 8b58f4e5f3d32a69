"""Residue-number-system polynomials: an element of Z_Q[X]/(X^N + 1), Q = q_0 * ... * q_{L-1}, stored as an
(L, N) uint64 array whose row i holds the coefficients (or NTT values) modulo q_i.

By the Chinese remainder theorem, Z_Q = Z_q0 x ... x Z_q{L-1}, so ring addition and multiplication are done
independently per row (Cheon-Han-Kim-Kim-Song, SAC 2018, section 2), and the rows go to Numba's threads
(``ckks.set_threads``). This module knows nothing of CKKS.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
from numba import njit, prange

from ..instrument import timed
from .modarith import (
    conditional_subtract,
    mont_mul,
    montgomery_constants,
    shoup_companion,
    shoup_mul,
    shoup_precompute,
)
from .ntt import NttTable, ntt_forward, ntt_inverse, ntt_table
from .schedule import job_counter, next_job


class RnsBasis:
    """An ordered set of NTT-friendly primes for one ring degree, with their precomputed constants.

    Built through ``rns_basis(moduli, N)`` so that equal bases share one cached object.
    """

    def __init__(self, moduli: tuple[int, ...], ring_degree: int) -> None:
        self.moduli = moduli
        self.ring_degree = ring_degree
        self.q = np.array(moduli, dtype=np.uint64)
        consts = [montgomery_constants(q) for q in moduli]
        self.q_neg_inv = np.array([c[0] for c in consts], dtype=np.uint64)
        self.r2_mod_q = np.array([c[1] for c in consts], dtype=np.uint64)
        # R = 2^64 mod q and its Shoup factor: turns REDC's a*b*2^-64 back into a*b.
        self.r_mod_q = np.array([(1 << 64) % q for q in moduli], dtype=np.uint64)
        self.r_mod_q_shoup = np.array([int(shoup_precompute((1 << 64) % q, q)) for q in moduli], dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.moduli)

    def __repr__(self) -> str:
        return f"RnsBasis(N={self.ring_degree}, bits={[q.bit_length() for q in self.moduli]})"

    @cached_property
    def tables(self) -> tuple[NttTable, ...]:
        """The NTT table of each prime (built on first use)."""
        return tuple(ntt_table(q, self.ring_degree) for q in self.moduli)

    @cached_property
    def product(self) -> int:
        """Q = prod q_i, as an exact integer."""
        out = 1
        for q in self.moduli:
            out *= q
        return out


@lru_cache(maxsize=64)
def rns_basis(moduli: tuple[int, ...], ring_degree: int) -> RnsBasis:
    """The (cached) RNS basis of these primes at this ring degree."""
    return RnsBasis(tuple(int(q) for q in moduli), ring_degree)


def to_ntt(a: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """A copy of ``a`` (coefficients, shape (L, N)) in NTT form."""
    out = np.array(a, dtype=np.uint64, order="C", copy=True)
    ntt_forward(out, basis.tables)
    return out


def from_ntt(a: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """A copy of ``a`` (NTT form) as coefficients."""
    out = np.array(a, dtype=np.uint64, order="C", copy=True)
    ntt_inverse(out, basis.tables)
    return out


def from_signed(values: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """The RNS rows [v]_{q_i} of an int64 vector of coefficients."""
    v = np.asarray(values).astype(np.int64)
    if v.size and int(np.max(np.abs(v))) < min(basis.moduli):  # small (errors, secrets): one conditional add
        negative = v < 0
        return np.stack([np.where(negative, v + np.int64(q), v).astype(np.uint64) for q in basis.moduli])
    return np.stack([np.mod(v, np.int64(q)).astype(np.uint64) for q in basis.moduli])


def from_float_integers(values: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """The RNS rows of float64 values that are whole numbers of any size (|v| may exceed 2^63).

    Each v = m * 2^e with m = v's 53-bit integer mantissa, so [v]_q = [m]_q * [2^e]_q: vectorised, no Python
    integers per coefficient.
    """
    mantissa, exponent = np.frexp(values)
    m = (mantissa * 2.0**53).astype(np.int64)  # exact: |mantissa| < 1 has 53 significant bits
    shift = exponent.astype(np.int64) - 53
    if np.any((shift < 0) & (m % (np.int64(1) << np.clip(-shift, 0, 62)) != 0)):
        raise ValueError("from_float_integers: values must be whole numbers")
    small = shift < 0
    m = np.where(small, m >> np.clip(-shift, 0, 62), m)
    shift = np.where(small, 0, shift)
    rows = from_signed(m, basis)
    powers = np.empty_like(rows)
    distinct = np.unique(shift)
    for i, q in enumerate(basis.moduli):
        table = {int(e): pow(2, int(e), q) for e in distinct}
        powers[i] = np.vectorize(table.__getitem__, otypes=[np.uint64])(shift)
    return mul(rows, powers, basis)


@njit(cache=True, parallel=True)
def _copy_rows(a, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            for j in range(a.shape[1]):
                out[i, j] = a[i, j]
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _add(a, b, q, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi = q[i]
            for j in range(a.shape[1]):
                s = a[i, j] + b[i, j]
                out[i, j] = conditional_subtract(s, qi)
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _sub(a, b, q, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi = q[i]
            for j in range(a.shape[1]):
                s = a[i, j] + qi - b[i, j]
                out[i, j] = conditional_subtract(s, qi)
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _neg(a, q, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi = q[i]
            for j in range(a.shape[1]):
                out[i, j] = qi - a[i, j] if a[i, j] != 0 else a[i, j]
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _mul(a, b, q, q_neg_inv, r, r_shoup, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi, qn, ri, rs = q[i], q_neg_inv[i], r[i], r_shoup[i]
            for j in range(a.shape[1]):
                out[i, j] = shoup_mul(mont_mul(a[i, j], b[i, j], qi, qn), ri, rs, qi)
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _square(a0, a1, q, q_neg_inv, r, r_shoup, out):
    """out = (a0^2, 2 a0 a1, a1^2) mod q_i pointwise, in one pass over a0 and a1."""
    jobs = job_counter()
    for _ in prange(a0.shape[0]):
        i = next_job(jobs)
        while i < a0.shape[0]:
            qi, qn, ri, rs = q[i], q_neg_inv[i], r[i], r_shoup[i]
            for j in range(a0.shape[1]):
                x, y = a0[i, j], a1[i, j]
                out[0, i, j] = shoup_mul(mont_mul(x, x, qi, qn), ri, rs, qi)
                m = shoup_mul(mont_mul(x, y, qi, qn), ri, rs, qi)
                m = m + m
                out[1, i, j] = conditional_subtract(m, qi)
                out[2, i, j] = shoup_mul(mont_mul(y, y, qi, qn), ri, rs, qi)
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _mul_add(a, b, q, q_neg_inv, r, r_shoup, acc):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi, qn, ri, rs = q[i], q_neg_inv[i], r[i], r_shoup[i]
            for j in range(a.shape[1]):
                s = acc[i, j] + shoup_mul(mont_mul(a[i, j], b[i, j], qi, qn), ri, rs, qi)
                acc[i, j] = conditional_subtract(s, qi)
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _shoup_companions(a, q, q_neg_inv, r2, out):
    """out[b, i] = floor(a[b, i] * 2^64 / q_i) for every block b of a (B, L, N), all rows in one call."""
    n_blocks, n_rows = a.shape[0], a.shape[1]
    jobs = job_counter()
    for _ in prange(n_blocks * n_rows):
        job = next_job(jobs)
        while job < n_blocks * n_rows:
            b, i = job // n_rows, job % n_rows
            qi, qn, r2i = q[i], q_neg_inv[i], r2[i]
            row, dest = a[b, i], out[b, i]
            for j in range(row.shape[0]):
                dest[j] = shoup_companion(row[j], qi, qn, r2i)
            job = next_job(jobs)


@njit(cache=True, parallel=True)
def _mul_scalar(a, w, w_shoup, q, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi, wi, ws = q[i], w[i], w_shoup[i]
            for j in range(a.shape[1]):
                out[i, j] = shoup_mul(a[i, j], wi, ws, qi)
            i = next_job(jobs)


@njit(cache=True, parallel=True)
def _mul_scalar_add(a, w, w_shoup, q, acc):
    """acc[c, i] += a[c, i] * w[i] mod q_i for every component c and every row i of a (acc may have more)."""
    n_comp, n_rows, n = a.shape
    jobs = job_counter()
    for _ in prange(n_comp * n_rows):
        row = next_job(jobs)
        while row < n_comp * n_rows:
            c, i = row // n_rows, row % n_rows
            qi, wi, ws = q[i], w[i], w_shoup[i]
            for j in range(n):
                v = acc[c, i, j] + shoup_mul(a[c, i, j], wi, ws, qi)
                acc[c, i, j] = conditional_subtract(v, qi)
            row = next_job(jobs)


@njit(cache=True, parallel=True)
def _add_scalar(a, c, q, out):
    jobs = job_counter()
    for _ in prange(a.shape[0]):
        i = next_job(jobs)
        while i < a.shape[0]:
            qi, ci = q[i], c[i]
            for j in range(a.shape[1]):
                s = a[i, j] + ci
                out[i, j] = conditional_subtract(s, qi)
            i = next_job(jobs)


def copy_into(out: np.ndarray, a: np.ndarray) -> None:
    """out[...] = a for uint64 arrays of one shape (..., N), the rows copied on the kernels' threads (a
    numpy copy runs on one); ``out`` must be C-contiguous (a view of it is written)."""
    if out.shape != a.shape or not out.flags.c_contiguous:
        raise ValueError(f"copy_into: a C-contiguous destination of shape {a.shape} is needed, got {out.shape}")
    if a.dtype != np.uint64 or out.dtype != np.uint64:  # the kernel would convert other types silently
        raise ValueError(f"copy_into: copies uint64 residues, got {a.dtype} into {out.dtype}")
    _copy_rows(np.ascontiguousarray(a).reshape(-1, a.shape[-1]), out.reshape(-1, a.shape[-1]))


def stack(arrays: list[np.ndarray]) -> np.ndarray:
    """np.stack(arrays) for uint64 arrays of one shape (..., N), copied with ``copy_into``."""
    if not arrays:
        raise ValueError("stack: no array to stack")
    out = np.empty((len(arrays),) + arrays[0].shape, dtype=np.uint64)
    for a, row in zip(arrays, out, strict=True):
        copy_into(row, a)
    return out


def _rows(basis: RnsBasis, a: np.ndarray) -> np.ndarray:
    return basis.q[: a.shape[0]]


def add(a: np.ndarray, b: np.ndarray, basis: RnsBasis, out: np.ndarray | None = None) -> np.ndarray:
    """(a + b) mod q_i, row-wise (into ``out`` if given)."""
    out = np.empty_like(a) if out is None else out
    _add(a, b, _rows(basis, a), out)
    return out


def sub(a: np.ndarray, b: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """(a - b) mod q_i, row-wise."""
    out = np.empty_like(a)
    _sub(a, b, _rows(basis, a), out)
    return out


def neg(a: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """-a mod q_i, row-wise."""
    out = np.empty_like(a)
    _neg(a, _rows(basis, a), out)
    return out


@timed("mul")
def mul(a: np.ndarray, b: np.ndarray, basis: RnsBasis, out: np.ndarray | None = None) -> np.ndarray:
    """a * b mod q_i, pointwise (the ring product when both are in NTT form), into ``out`` if given."""
    out = np.empty_like(a) if out is None else out
    n = a.shape[0]
    _mul(a, b, basis.q[:n], basis.q_neg_inv[:n], basis.r_mod_q[:n], basis.r_mod_q_shoup[:n], out)
    return out


@timed("mul")
def square(a: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """(a0^2, 2 a0 a1, a1^2) mod q_i pointwise for a = (a0, a1) (2, L, N) in NTT form: the size-3 square of
    a size-2 ciphertext, its three products in one kernel call."""
    if a.ndim != 3 or a.shape[0] != 2 or a.dtype != np.uint64:
        raise ValueError(f"square: expected uint64 components (2, L, N), got {a.dtype} {a.shape}")
    n = a.shape[1]
    out = np.empty((3,) + a.shape[1:], dtype=np.uint64)
    _square(a[0], a[1], basis.q[:n], basis.q_neg_inv[:n], basis.r_mod_q[:n], basis.r_mod_q_shoup[:n], out)
    return out


@timed("mul_add")
def mul_add_into(acc: np.ndarray, a: np.ndarray, b: np.ndarray, basis: RnsBasis) -> None:
    """acc <- acc + a * b mod q_i, pointwise, in place (multiply-accumulate without a temporary)."""
    n = a.shape[0]
    _mul_add(a, b, basis.q[:n], basis.q_neg_inv[:n], basis.r_mod_q[:n], basis.r_mod_q_shoup[:n], acc)


def shoup_companions(a: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """floor(a * 2^64 / q_i) entry-wise: precomputed once for a fixed operand (key, plaintext), it makes
    every later product with it a Shoup multiplication (one high product instead of three)."""
    n = a.shape[-2]
    out = np.empty(a.shape, dtype=np.uint64)
    _shoup_companions(np.ascontiguousarray(a).reshape(-1, n, a.shape[-1]), basis.q[:n], basis.q_neg_inv[:n],
                      basis.r2_mod_q[:n], out.reshape(-1, n, a.shape[-1]))
    return out


def scalar_residues(value: int, basis: RnsBasis, rows: int | None = None) -> np.ndarray:
    """[value]_{q_i} for the first ``rows`` primes of the basis (a signed Python integer of any size)."""
    return np.array([value % q for q in basis.moduli[: rows or len(basis)]], dtype=np.uint64)


def mul_scalar(a: np.ndarray, residues: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """a * c mod q_i for an integer constant c given by its residues (Shoup, no NTT needed)."""
    n = a.shape[0]
    shoup = np.array([int(shoup_precompute(int(c), q)) for c, q in zip(residues, basis.moduli[:n])],
                     dtype=np.uint64)
    out = np.empty_like(a)
    _mul_scalar(a, residues, shoup, basis.q[:n], out)
    return out


def mul_scalar_add_into(acc: np.ndarray, a: np.ndarray, residues: np.ndarray, basis: RnsBasis) -> None:
    """acc[c, i] = acc[c, i] + a[c, i] * c mod q_i in place, for the components c of a (K, L, N) and its L
    rows; ``acc`` (K, R, N), R >= L, may have more rows, left as they are (an integer constant c, by its
    residues)."""
    n = a.shape[1]
    if acc.ndim != 3 or acc.shape[0] != a.shape[0] or acc.shape[1] < n or not acc.flags.c_contiguous:
        raise ValueError(f"mul_scalar_add_into: a C-contiguous accumulator of shape ({a.shape[0]}, >= {n}, N) "
                         f"is needed, got {acc.shape}")
    shoup = np.array([int(shoup_precompute(int(c), q)) for c, q in zip(residues, basis.moduli[:n])],
                     dtype=np.uint64)
    _mul_scalar_add(np.ascontiguousarray(a), residues, shoup, basis.q[:n], acc)


def add_scalar(a: np.ndarray, residues: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """a + c mod q_i for every entry: adds the constant polynomial c when ``a`` is in NTT form."""
    out = np.empty_like(a)
    _add_scalar(a, residues, _rows(basis, a), out)
    return out
