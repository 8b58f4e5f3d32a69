"""Hybrid key switching (Han-Ki, CT-RSA 2020, section 3; digits of CHKKS's RNS gadget).

Given d at level l (NTT form over Q_l) and a switching key from s' to s, return (u_0, u_1) over Q_l with
u_0 + u_1 * s ~ d * s'. Steps:
  1. ModUp: for each digit j, the residues of d on the digit's primes D_j are extended to all of Q_l * P by
     fast base conversion (CHKKS 2018), giving d_j ~ [d]_{Q_j} + (multiple of Q_j). On D_j itself d_j is d,
     so those rows are read from d in place: neither converted nor copied.
  2. Inner product with the key over Q_l * P: (v_0, v_1) = sum_j d_j * k_j; this is P * d * s' + small noise.
  3. ModDown: divide by P and round back to Q_l, which also divides the key's noise by P.
``key_switch_extended`` stops before step 3, so that a rescale can share its division (one division by
P * q_l instead of two; see ``Evaluator.relinearize_and_rescale``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..instrument import timed
from ..params import Parameters
from ..ring import rns
from ..ring.basis_conversion import fast_base_convert, mod_down
from ..ring.modarith import conditional_subtract, shoup_mul_lazy
from ..ring.ntt import forward_tables, ntt_forward_limb, ntt_inverse
from ..ring.schedule import job_counter, next_job
from .keys import SwitchingKey


@dataclass(frozen=True)
class PreparedKey:
    """A switching key with the Shoup companions of its entries, so each product costs one high multiply."""

    data: np.ndarray
    shoup: np.ndarray


def prepare_key(key: SwitchingKey, params: Parameters) -> PreparedKey:
    """Precompute floor(k * 2^64 / q) for every entry of the key (done once, when an Evaluator is made)."""
    qp = rns.rns_basis(params.moduli + params.special_moduli, params.ring_degree)
    return PreparedKey(key.data, rns.shoup_companions(key.data, qp))


@njit(cache=True, parallel=True)
def _ntt_and_inner_product(extended, d, digit_size, row_order, psi_rev, psi_rev_shoup, narrow, narrow_shoup,
                           key, key_shoup, key_rows, q, acc):
    """acc[p, c, r] = sum_j x_j[p, r] * key[j, c, key_rows[r]] mod q[r] for each polynomial p, lazily kept in
    [0, 2q) then reduced, where x_j[p, r] is d[p, r] on digit j's own rows (j * digit_size <= r < (j + 1) *
    digit_size, r among d's rows) and, on every other row, the NTT of extended[j, p, r] (its conversion, in
    coefficients; transformed in place here, just before its products, while it is in the cache).

    One pass over each row serves both components c = 0, 1. The jobs, (row, polynomial) pairs, are claimed
    (``schedule``) row by row, in ``row_order``, so that jobs running at once use the same rows of the key
    (1.5 MB for three digits at N = 16384), which then come from the cache instead of from memory once per
    polynomial.
    """
    n_digits, n_poly, n_rows, n = extended.shape
    n_q = d.shape[1]
    jobs = job_counter()
    for _ in prange(n_rows * n_poly):
        job = next_job(jobs)
        while job < n_rows * n_poly:
            r, p = row_order[job // n_poly], job % n_poly
            own = r // digit_size if r < n_q else -1  # the digit whose primes include row r, if any
            qr = q[r]
            two_q = qr + qr
            kr = key_rows[r]
            a0, a1 = acc[p, 0, r], acc[p, 1, r]
            for j in range(n_digits):
                if own == j:
                    x = d[p, r]
                else:
                    x = extended[j, p, r]
                    ntt_forward_limb(x, psi_rev[r], psi_rev_shoup[r], narrow[r], narrow_shoup[r], qr)
                k0, k1, s0, s1 = key[j, 0, kr], key[j, 1, kr], key_shoup[j, 0, kr], key_shoup[j, 1, kr]
                if j == 0:
                    for k in range(n):
                        a0[k] = shoup_mul_lazy(x[k], k0[k], s0[k], qr)
                        a1[k] = shoup_mul_lazy(x[k], k1[k], s1[k], qr)
                else:
                    for k in range(n):
                        v0 = a0[k] + shoup_mul_lazy(x[k], k0[k], s0[k], qr)
                        v1 = a1[k] + shoup_mul_lazy(x[k], k1[k], s1[k], qr)
                        a0[k] = conditional_subtract(v0, two_q)
                        a1[k] = conditional_subtract(v1, two_q)
            for k in range(n):
                a0[k] = conditional_subtract(a0[k], qr)
                a1[k] = conditional_subtract(a1[k], qr)
            job = next_job(jobs)


def _row_order(n_q: int, n_special: int) -> np.ndarray:
    """The rows of Q_level * P in the order their jobs are claimed: the special rows n_q, ..., n_q + n_special
    - 1 first, then the chain rows 0, ..., n_q - 1. A special row belongs to no digit, so each of its jobs
    has one transform more; claimed first, these longest jobs cannot be the last ones, which one thread would
    finish alone."""
    return np.r_[n_q : n_q + n_special, 0:n_q].astype(np.int64)


def key_switch(d: np.ndarray, level: int, key: PreparedKey, params: Parameters) -> np.ndarray:
    """(u_0, u_1) over Q_level, NTT form, shape (2, level + 1, N), with u_0 + u_1 s ~ d s'; for K
    polynomials d (K, level + 1, N) at once, (K, 2, level + 1, N)."""
    n = params.ring_degree
    q_basis = rns.rns_basis(params.moduli[: level + 1], n)
    p_basis = rns.rns_basis(params.special_moduli, n)
    return mod_down(key_switch_extended(d, level, key, params), q_basis, p_basis)


@timed("key_switch")
def key_switch_extended(d: np.ndarray, level: int, key: PreparedKey, params: Parameters) -> np.ndarray:
    """Steps 1 and 2 only: (v_0, v_1) over Q_level * P (rows: Q_level, then P), NTT form, about
    P * (u_0, u_1); ModDown is left to the caller, who may fold another division into it (rescale).

    ``d`` is one polynomial (level + 1, N), or K of them (an array (K, level + 1, N) or a list), switched
    under the same key in one pass: every step's transforms and products of all K go to the threads
    together. Result (2, rows, N), or (K, 2, rows, N) for K polynomials.
    """
    n = params.ring_degree
    n_q = level + 1
    q_moduli = params.moduli[:n_q]
    qp_moduli = q_moduli + params.special_moduli
    qp = rns.rns_basis(qp_moduli, n)
    q_basis = rns.rns_basis(q_moduli, n)
    # Rows of the key that belong to Q_level * P: the first n_q chain primes and the special primes.
    n_all_q = len(params.moduli)
    key_rows = np.r_[0:n_q, n_all_q : n_all_q + len(params.special_moduli)].astype(np.int64)
    # d in NTT form as one array (stacked if given as a list), and its coefficients, transformed out of
    # place so that d stays as it is for the digits' own rows.
    d_ntt = rns.stack(d) if isinstance(d, list) else np.ascontiguousarray(d).reshape(-1, n_q, n)
    k = d_ntt.shape[0]
    d_coeff = np.empty_like(d_ntt)
    ntt_inverse(d_ntt.reshape(k * n_q, n), q_basis.tables * k, out=d_coeff.reshape(k * n_q, n))
    alpha = params.digit_size
    n_rows = len(qp_moduli)
    n_digits = -(-n_q // alpha)
    extended = np.empty((n_digits, k, n_rows, n), dtype=np.uint64)  # a digit's own rows stay unwritten
    for j, lo in enumerate(range(0, n_q, alpha)):
        hi = min(lo + alpha, n_q)  # digit j: the primes q_lo .. q_{hi-1}; every other row by conversion
        others = tuple(r for r in range(n_rows) if not lo <= r < hi)
        fast_base_convert(d_coeff, q_moduli[lo:hi], tuple(qp_moduli[r] for r in others), out=extended[j],
                          first_row=lo, out_rows=others)
    acc = np.empty((k, 2, n_rows, n), dtype=np.uint64)
    _ntt_and_inner_product(extended, d_ntt, alpha, _row_order(n_q, len(params.special_moduli)),
                           *forward_tables(qp_moduli, n), key.data, key.shoup, key_rows, qp.q, acc)
    return acc if isinstance(d, list) else acc.reshape(d.shape[:-2] + (2, n_rows, n))
