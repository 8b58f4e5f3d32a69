"""Moving RNS polynomials between bases: fast base conversion, division by the last prime (rescale),
division by the special primes (mod-down), and exact CRT reconstruction to floating point.

Cheon-Han-Kim-Kim-Song, "A Full RNS Variant of Approximate Homomorphic Encryption" (SAC 2018):
  Conv_{S->T}(x)_j = sum_i [x_i * (S/s_i)^-1]_{s_i} * (S/s_i) mod t_j           (section 2.2)
equals x + u*S for a small integer u (|u| <= |S|/2 with centered digits): exact up to a small multiple of S, which is all key switching
needs (ModUp multiplies that multiple by a key component that vanishes mod S; ModDown divides it by P).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from ..instrument import timed
from .modarith import shoup_mul, shoup_precompute
from .ntt import ntt_forward, ntt_inverse
from .rns import RnsBasis, rns_basis


@njit(cache=True)
def _reduce(x, q, one_shoup):
    """x mod q for any 64-bit x (Shoup multiplication by 1)."""
    return shoup_mul(x, np.uint64(1), one_shoup, q)


@njit(cache=True, parallel=True)
def _fast_base_convert(x, s, shat_inv, shat_inv_shoup, t, shat_mod_t, shat_mod_t_shoup, wrap_mod_t, out):
    n_src, n = x.shape
    u = np.empty((n_src, n), dtype=np.uint64)
    for i in prange(n_src):
        for k in range(n):
            u[i, k] = shoup_mul(x[i, k], shat_inv[i], shat_inv_shoup[i], s[i])
    for j in prange(t.shape[0]):
        tj = t[j]
        for k in range(n):
            out[j, k] = 0
        for i in range(n_src):
            w, ws, wrap, half = shat_mod_t[i, j], shat_mod_t_shoup[i, j], wrap_mod_t[i, j], s[i] >> np.uint64(1)
            for k in range(n):
                v = out[j, k] + shoup_mul(u[i, k], w, ws, tj)
                v = v - tj if v >= tj else v
                if u[i, k] > half:  # centered digit: u - s_i, i.e. add -s_i * (S/s_i) mod t_j
                    v = v + wrap
                    v = v - tj if v >= tj else v
                out[j, k] = v


@lru_cache(maxsize=256)
def _conversion_constants(source: tuple[int, ...], target: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    s_prod = 1
    for s in source:
        s_prod *= s
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
                      out: np.ndarray | None = None) -> np.ndarray:
    """Conv_{S->T}: coefficients x (|S|, N) modulo the source primes -> (|T|, N) modulo the target primes.

    Result = x + u*S (mod each t_j) with |u| <= |S|/2 (CHKKS 2018, section 2.2), using the centered digits
    [x_i (S/s_i)^-1]_{s_i} in (-s_i/2, s_i/2]: centering halves the size of what key switching multiplies
    by the key's noise and removes its mean. ``out`` (|T|, N), if given, receives the result.
    """
    if out is None:
        out = np.empty((len(target), x.shape[1]), dtype=np.uint64)
    _fast_base_convert(np.ascontiguousarray(x), *_conversion_constants(source, target), out)
    return out


@njit(cache=True, parallel=True)
def _subtract_and_scale(c, conv, q, factor, factor_shoup, out):
    for i in prange(c.shape[0]):
        qi, f, fs = q[i], factor[i], factor_shoup[i]
        for k in range(c.shape[1]):
            out[i, k] = shoup_mul(c[i, k] + qi - conv[i, k], f, fs, qi)


@njit(cache=True, parallel=True)
def _centered_lift(last, q_last, targets, one_shoup, offset, out):
    """out[i] = the centered representative of ``last`` (in (-q_last/2, q_last/2]) modulo targets[i]."""
    half = q_last >> np.uint64(1)
    for i in prange(targets.shape[0]):
        qi, os, off = targets[i], one_shoup[i], offset[i]
        for k in range(last.shape[0]):
            v = _reduce(last[k], qi, os)
            if last[k] > half:  # value is last - q_last: add (q_i - q_last mod q_i)
                v = v + off
                v = v - qi if v >= qi else v
            out[i, k] = v


@lru_cache(maxsize=256)
def _rescale_constants(basis: RnsBasis) -> tuple[np.ndarray, ...]:
    *rest, q_last = basis.moduli
    one_shoup = np.array([int(shoup_precompute(1, q)) for q in rest], dtype=np.uint64)
    offset = np.array([(q - q_last % q) % q for q in rest], dtype=np.uint64)
    inv = np.array([pow(q_last, -1, q) for q in rest], dtype=np.uint64)
    inv_shoup = np.array([int(shoup_precompute(int(v), q)) for v, q in zip(inv, rest)], dtype=np.uint64)
    return one_shoup, offset, inv, inv_shoup


@timed("rescale")
def divide_by_last_prime(c: np.ndarray, basis: RnsBasis) -> np.ndarray:
    """Round(c / q_last) over the basis without its last prime; ``c`` (L, N) in NTT form, result (L-1, N).

    c' = (c - [c]_{q_last}) * q_last^-1 mod q_i, with [c]_{q_last} the centered remainder so that the
    result is c / q_last rounded to nearest (CKKS rescaling; CHKKS 2018, section 3.3).
    """
    sub = rns_basis(basis.moduli[:-1], basis.ring_degree)
    last = c[-1].copy()
    ntt_inverse(last[None, :], basis.tables[-1:])
    one_shoup, offset, inv, inv_shoup = _rescale_constants(basis)
    lifted = np.empty((len(sub), c.shape[1]), dtype=np.uint64)
    _centered_lift(last, np.uint64(basis.moduli[-1]), sub.q, one_shoup, offset, lifted)
    ntt_forward(lifted, sub.tables)
    out = np.empty_like(lifted)
    _subtract_and_scale(c[:-1], lifted, sub.q, inv, inv_shoup, out)
    return out


@lru_cache(maxsize=256)
def _mod_down_constants(q_moduli: tuple[int, ...], p_moduli: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    p_prod = 1
    for p in p_moduli:
        p_prod *= p
    inv = np.array([pow(p_prod % q, -1, q) for q in q_moduli], dtype=np.uint64)
    inv_shoup = np.array([int(shoup_precompute(int(v), q)) for v, q in zip(inv, q_moduli)], dtype=np.uint64)
    return inv, inv_shoup


@timed("mod_down")
def mod_down(c: np.ndarray, q_basis: RnsBasis, p_basis: RnsBasis) -> np.ndarray:
    """ModDown: c over Q*P (rows: Q then P, NTT form) -> about round(c / P) over Q (NTT form).

    c' = (c - Conv_{P->Q}([c]_P)) * P^-1 mod q_i (CHKKS 2018, Algorithm 2; Han-Ki 2020, section 3). The
    conversion uses centered digits, so the division rounds (error within |P|/2 + 1/2 units) instead of
    flooring, whose mean-1/2 bias would grow large in the slots near the root 1. ``c`` is one polynomial
    (rows, N) or several (k, rows, N): their NTTs then go in one call, spread over the threads.
    """
    n_q, n_p, n = len(q_basis), len(p_basis), c.shape[-1]
    stack = c.reshape(-1, n_q + n_p, n)
    k = stack.shape[0]
    c_p = stack[:, n_q:].copy().reshape(k * n_p, n)  # a copy: the inverse NTT below works in place
    ntt_inverse(c_p, p_basis.tables * k)
    conv = np.empty((k, n_q, n), dtype=np.uint64)
    for i in range(k):
        fast_base_convert(c_p[i * n_p : (i + 1) * n_p], p_basis.moduli, q_basis.moduli, out=conv[i])
    ntt_forward(conv.reshape(k * n_q, n), q_basis.tables * k)
    inv, inv_shoup = _mod_down_constants(q_basis.moduli, p_basis.moduli)
    out = np.empty((k, n_q, n), dtype=np.uint64)
    for i in range(k):
        _subtract_and_scale(stack[i, :n_q], conv[i], q_basis.q, inv, inv_shoup, out[i])
    return out.reshape(c.shape[:-2] + (n_q, n))


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
