"""Moving RNS polynomials between bases: fast base conversion, division by the last primes (by the last
prime: rescale; by the special primes: mod-down; by both at once), and exact CRT reconstruction to floating
point.

Cheon-Han-Kim-Kim-Song, "A Full RNS Variant of Approximate Homomorphic Encryption" (SAC 2018):
  Conv_{S->T}(x)_j = sum_i [x_i * (S/s_i)^-1]_{s_i} * (S/s_i) mod t_j           (section 2.2)
equals x + u*S for a small integer u (|u| <= |S|/2 with centered digits): exact up to a small multiple of S, which is all key switching
needs (ModUp multiplies that multiple by a key component that vanishes mod S; ModDown divides it by P).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit, prange

from ..instrument import timed
from .modarith import conditional_subtract, shoup_mul, shoup_precompute
from .ntt import ntt_forward, ntt_inverse
from .rns import RnsBasis, rns_basis
from .schedule import job_counter, next_job


@njit(cache=True)
def _reduce(x, q, one_shoup):
    """x mod q for any 64-bit x (Shoup multiplication by 1)."""
    return shoup_mul(x, np.uint64(1), one_shoup, q)


@njit(cache=True, parallel=True)
def _fast_base_convert(x, first, s, shat_inv, shat_inv_shoup, t, shat_mod_t, shat_mod_t_shoup, wrap_mod_t,
                       out, out_rows):
    """K polynomials at once: rows first .. first + |S| - 1 of x (K, rows, N) -> rows out_rows of out
    (K, rows', N), target prime t_j into row out_rows[j]; the (polynomial, prime) rows go to the threads."""
    n_poly, n = x.shape[0], x.shape[2]
    n_src, n_t = s.shape[0], t.shape[0]
    u = np.empty((n_poly, n_src, n), dtype=np.uint64)
    jobs = job_counter()
    for _ in prange(n_poly * n_src):
        row = next_job(jobs)
        while row < n_poly * n_src:
            p, i = row // n_src, row % n_src
            for k in range(n):
                u[p, i, k] = shoup_mul(x[p, first + i, k], shat_inv[i], shat_inv_shoup[i], s[i])
            row = next_job(jobs)
    jobs_2 = job_counter()
    for _ in prange(n_poly * n_t):
        row = next_job(jobs_2)
        while row < n_poly * n_t:
            p, j = row // n_t, row % n_t
            tj = t[j]
            dest = out[p, out_rows[j]]
            for k in range(n):
                dest[k] = 0
            for i in range(n_src):
                w, ws, wrap = shat_mod_t[i, j], shat_mod_t_shoup[i, j], wrap_mod_t[i, j]
                half = s[i] >> np.uint64(1)
                for k in range(n):
                    v = dest[k] + shoup_mul(u[p, i, k], w, ws, tj)
                    v = conditional_subtract(v, tj)
                    if u[p, i, k] > half:  # centered digit: u - s_i, i.e. add -s_i * (S/s_i) mod t_j
                        v = v + wrap
                        v = conditional_subtract(v, tj)
                    dest[k] = v
            row = next_job(jobs_2)


@lru_cache(maxsize=256)
def _conversion_constants(source: tuple[int, ...], target: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    s_prod = math.prod(source)
    shat = [s_prod // s for s in source]
    shat_inv = np.array([pow(h % s, -1, s) for h, s in zip(shat, source)], dtype=np.uint64)
    shat_inv_shoup = np.array([int(shoup_precompute(int(v), s)) for v, s in zip(shat_inv, source)],
                              dtype=np.uint64)
    shape = (len(source), len(target))
    shat_mod_t = np.array([[h % t for t in target] for h in shat], dtype=np.uint64).reshape(shape)
    shat_mod_t_shoup = np.array([[int(shoup_precompute(h % t, t)) for t in target] for h in shat],
                                dtype=np.uint64).reshape(shape)
    wrap_mod_t = np.array([[(-s_prod) % t for t in target] for _ in shat], dtype=np.uint64).reshape(shape)
    return (np.array(source, dtype=np.uint64), shat_inv, shat_inv_shoup, np.array(target, dtype=np.uint64),
            shat_mod_t, shat_mod_t_shoup, wrap_mod_t)


@timed("base_convert")
def fast_base_convert(x: np.ndarray, source: tuple[int, ...], target: tuple[int, ...],
                      out: np.ndarray | None = None, first_row: int = 0,
                      out_rows: tuple[int, ...] | None = None) -> np.ndarray:
    """Conv_{S->T}: coefficients x (|S|, N) modulo the source primes -> (|T|, N) modulo the target primes.

    Result = x + u*S (mod each t_j) with |u| <= |S|/2 (CHKKS 2018, section 2.2), using the centered digits
    [x_i (S/s_i)^-1]_{s_i} in (-s_i/2, s_i/2]: centering halves the size of what key switching multiplies
    by the key's noise and removes its mean. ``x`` may also be K polynomials (K, |S|, N), converted in one
    call; ``out`` (|T|, N) or (K, |T|, N), if given, receives the result. With ``first_row``, x may have
    more rows: rows first_row .. first_row + |S| - 1 hold the residues (a digit of a longer polynomial, read
    in place). With ``out_rows`` (distinct rows of ``out``, one per target prime), ``out`` may have more
    rows: the residues mod t_j go to row out_rows[j] and the other rows are left as they were (key
    switching's ModUp writes each digit's conversion around the digit's own rows).
    """
    rows = x.shape[-2]
    if not 0 <= first_row <= rows - len(source):
        raise ValueError(f"fast_base_convert: rows {first_row} .. {first_row + len(source) - 1} of the "
                         f"{len(source)} source primes are not all in x's {rows} rows")
    stack = np.ascontiguousarray(x).reshape((-1,) + x.shape[-2:])
    if out is None:
        if out_rows is not None:
            raise ValueError("fast_base_convert: out_rows needs the out array they index")
        out = np.empty(x.shape[:-2] + (len(target), x.shape[-1]), dtype=np.uint64)
    elif not out.flags.c_contiguous:  # a reshaped copy would receive the result instead
        raise ValueError("fast_base_convert: out must be C-contiguous")
    out_rows = tuple(range(len(target))) if out_rows is None else tuple(out_rows)
    out_height = out.shape[-2] if out.ndim >= 2 else 0
    if (len(out_rows) != len(target) or len(set(out_rows)) != len(out_rows)
            or any(not 0 <= r < out_height for r in out_rows)):
        raise ValueError(f"fast_base_convert: out_rows must be {len(target)} distinct rows of out's "
                         f"{out_height}, got {out_rows}")
    _fast_base_convert(stack, first_row, *_conversion_constants(source, target),
                       out.reshape((stack.shape[0], out_height, x.shape[-1])),
                       np.array(out_rows, dtype=np.int64))
    return out


@njit(cache=True, parallel=True)
def _subtract_and_scale(c, conv, q, factor, factor_shoup, out):
    """out[p, i] = (c[p, i] - conv[p, i]) * factor[i] mod q[i] for the first rows of c (those of out)."""
    n_poly, n_rows, n = out.shape
    jobs = job_counter()
    for _ in prange(n_poly * n_rows):
        row = next_job(jobs)
        while row < n_poly * n_rows:
            p, i = row // n_rows, row % n_rows
            qi, f, fs = q[i], factor[i], factor_shoup[i]
            for k in range(n):
                out[p, i, k] = shoup_mul(c[p, i, k] + qi - conv[p, i, k], f, fs, qi)
            row = next_job(jobs)


@lru_cache(maxsize=256)
def _division_constants(moduli: tuple[int, ...], count: int) -> tuple[np.ndarray, np.ndarray]:
    """[D^-1]_{q_i} and its Shoup factor for the kept primes q_i, D the product of the last ``count``."""
    kept, divisor = moduli[:-count], math.prod(moduli[-count:])
    inv = np.array([pow(divisor % q, -1, q) for q in kept], dtype=np.uint64)
    inv_shoup = np.array([int(shoup_precompute(int(v), q)) for v, q in zip(inv, kept)], dtype=np.uint64)
    return inv, inv_shoup


def divide_by_last_primes(c: np.ndarray | list[np.ndarray], basis: RnsBasis,
                          count: int) -> np.ndarray | list[np.ndarray]:
    """About round(c / D), D = the product of the last ``count`` primes of ``basis``, over the other primes.

    c' = (c - Conv_{D->rest}([c]_D)) * D^-1 mod q_i (CHKKS 2018: section 3.3 for one prime, Algorithm 2 for
    the special primes). The conversion's centered digits make it round: exactly for one prime, and within
    count/2 + 1/2 units of c / D in general (the small multiple u*D the conversion adds, |u| <= count/2).
    ``c`` is one polynomial (L, N) or several (..., L, N) in NTT form, or a list of such arrays (several
    ciphertexts), left untouched: the dropped rows are transformed out of place, in one call per array,
    and the converted rows of all of them forward in one call, spread over the threads. Result: each array
    with L - count rows.
    """
    n_keep, n = len(basis) - count, basis.ring_degree
    kept = rns_basis(basis.moduli[:n_keep], n)
    dropped = rns_basis(basis.moduli[n_keep:], n)
    parts = [c] if isinstance(c, np.ndarray) else list(c)
    stacks = [np.ascontiguousarray(part).reshape(-1, len(basis), n) for part in parts]
    # the dropped rows of every polynomial as coefficients, transformed out of place (c is left untouched)
    k = sum(stack.shape[0] for stack in stacks)
    tail = np.empty((k, count, n), dtype=np.uint64)
    first = 0
    for stack in stacks:
        m = stack.shape[0]
        dropped_rows = [p * len(basis) + n_keep + i for p in range(m) for i in range(count)]
        ntt_inverse(stack.reshape(m * len(basis), n), dropped.tables * m, dropped_rows,
                    out=tail[first : first + m].reshape(m * count, n))
        first += m
    conv = fast_base_convert(tail, dropped.moduli, kept.moduli)
    ntt_forward(conv.reshape(k * n_keep, n), kept.tables * k)
    constants = _division_constants(basis.moduli, count)
    results, first = [], 0
    for part, stack in zip(parts, stacks, strict=True):
        out = np.empty((stack.shape[0], n_keep, n), dtype=np.uint64)
        _subtract_and_scale(stack, conv[first : first + stack.shape[0]], kept.q, *constants, out)
        first += stack.shape[0]
        results.append(out.reshape(part.shape[:-2] + (n_keep, n)))
    return results[0] if isinstance(c, np.ndarray) else results


@timed("rescale")
def divide_by_last_prime(c: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """Round(c / q_last) over the basis without its last prime: CKKS rescaling, exact rounding.

    ``c``: (L, N), (K, L, N) (a ciphertext's components at once) or a list of those, in NTT form; see
    ``divide_by_last_primes``.
    """
    return divide_by_last_primes(c, basis, 1)


@timed("mod_down")
def mod_down(c: np.ndarray, q_basis: RnsBasis, p_basis: RnsBasis) -> np.ndarray:
    """ModDown: c over Q*P (rows: Q then P, NTT form) -> about round(c / P) over Q (NTT form).

    The centered conversion makes the division round (error within |P|/2 + 1/2 units) instead of flooring,
    whose mean-1/2 bias would grow large in the slots near the root 1. ``c`` is one polynomial (rows, N)
    or several (k, rows, N); see ``divide_by_last_primes``.
    """
    return divide_by_last_primes(c, rns_basis(q_basis.moduli + p_basis.moduli, q_basis.ring_degree), len(p_basis))


@timed("mod_down_rescale")
def mod_down_and_rescale(c: np.ndarray, q_basis: RnsBasis, p_basis: RnsBasis) -> np.ndarray:
    """ModDown and rescale in one division: c over Q*P (rows: Q then P) -> about round(c / (q_last * P))
    over Q without its last prime q_last (NTT form).

    Rounding twice, round(round(c / P) / q_last), costs inverse NTTs of the P rows and forward NTTs of all Q
    rows, then again of the q_last row and the rest; once, it costs the inverse NTTs of the P rows and the
    q_last row and the forward NTTs of the rest: for each polynomial, |Q| fewer transforms. The error is
    within (|P| + 1)/2 + 1/2 units of c / (q_last * P); see ``divide_by_last_primes``.
    """
    basis = rns_basis(q_basis.moduli + p_basis.moduli, q_basis.ring_degree)
    return divide_by_last_primes(c, basis, len(p_basis) + 1)


@njit(cache=True)
def _garner_float(x, q, inv, inv_shoup, one_shoup, out):
    """Centered CRT value of each column of x as float64, by Garner's mixed-radix digits.

    Digits v_k with value = v_0 + v_1 q_0 + v_2 q_0 q_1 + ...; computed for x and for Q - x; the smaller of
    the two (compared exactly, digit by digit from the top) is the centered representative's magnitude.
    """
    n_limbs, n = x.shape
    digits = np.empty(n_limbs, dtype=np.uint64)
    neg_digits = np.empty(n_limbs, dtype=np.uint64)
    for k in range(n):
        for d in range(n_limbs):
            qd = q[d]
            t = x[d, k]
            tn = qd - t if t != 0 else t
            for j in range(d):
                vj = _reduce(digits[j], qd, one_shoup[d])
                nj = _reduce(neg_digits[j], qd, one_shoup[d])
                t = shoup_mul(t + qd - vj, inv[j, d], inv_shoup[j, d], qd)
                tn = shoup_mul(tn + qd - nj, inv[j, d], inv_shoup[j, d], qd)
            digits[d] = t
            neg_digits[d] = tn
        # x < Q - x iff x's mixed-radix digits are smaller, compared exactly from the top digit.
        negative = False
        for d in range(n_limbs - 1, -1, -1):
            if digits[d] != neg_digits[d]:
                negative = neg_digits[d] < digits[d]
                break
        value = 0.0
        for d in range(n_limbs - 1, -1, -1):
            value = value * float(q[d]) + float(neg_digits[d] if negative else digits[d])
        out[k] = -value if negative else value


@lru_cache(maxsize=64)
def _garner_constants(moduli: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    n = len(moduli)
    inv = np.zeros((n, n), dtype=np.uint64)
    inv_shoup = np.zeros((n, n), dtype=np.uint64)
    for j in range(n):
        for d in range(j + 1, n):
            v = pow(moduli[j] % moduli[d], -1, moduli[d])
            inv[j, d], inv_shoup[j, d] = v, int(shoup_precompute(v, moduli[d]))
    one_shoup = np.array([int(shoup_precompute(1, q)) for q in moduli], dtype=np.uint64)
    return np.array(moduli, dtype=np.uint64), inv, inv_shoup, one_shoup


def crt_to_float(x: np.ndarray, moduli: tuple[int, ...]) -> np.ndarray:
    """The centered integers in (-Q/2, Q/2] with residues x (L, N), rounded to float64 (relative error 2^-52)."""
    out = np.empty(x.shape[1], dtype=np.float64)
    _garner_float(np.ascontiguousarray(x), *_garner_constants(tuple(moduli)), out)
    return out
