"""Modular arithmetic on 64-bit limbs, as small Numba functions (no int128 needed).

All moduli are primes q < 2^61 so that lazy values in [0, 4q) still fit in 64 bits.

- ``mulhi(a, b)``: the high 64 bits of the 128-bit product, from four 32x32-bit products. LLVM recognises
  this exact formula and emits one scalar 128-bit ``mulx`` per product, which keeps loops from vectorising.
- Shoup's multiplication by a fixed w: with w' = floor(w * 2^64 / q), the quotient floor(w*a / q) is
  mulhi(a, w') or one less (Shoup, NTL; Harvey 2014, section 2). Shoup only needs an estimate of the
  quotient, so ``shoup_quotient`` drops the low-by-low partial product and the carries out of the middle
  word: three 32x32-bit products, at most 2 below mulhi, hence at most 3 below floor(w*a / q). That
  formula is not a 128-bit multiply, so LLVM vectorises it (8 lanes of vpmuludq with AVX-512); a loop of
  Shoup products ran about 2.8x faster than with ``mulhi`` on a Zen 4 (AVX-512). With AVX2 (a Zen 3) the
  vector has 4 lanes and each 64-bit low product costs three 32-bit ones: the gain is smaller
  (``ckks.warmup.target_cpu`` names the CPU in every report). The price is one more conditional
  subtraction: w*a - estimate*q lies in [0, 4q).
- Montgomery's multiplication for two variable operands: REDC(a*b) = a*b*2^-64 mod q
  (Montgomery 1985), two exact mulhi per product.
- ``conditional_subtract(v, m)``: the step of every lazy reduction, v - m if v >= m, compared as signed
  integers. Every value it sees is below 4q < 2^63, where the signed and the unsigned comparisons agree;
  AVX2 compares 64-bit integers only as signed, so the unsigned one costs two more instructions per vector.
"""

from __future__ import annotations

import numpy as np
from numba import int64, njit, uint64

MASK32 = np.uint64(0xFFFFFFFF)
U32 = np.uint64(32)


@njit(uint64(uint64, uint64), inline="always", cache=True)
def conditional_subtract(v, m):
    """v - m if v >= m else v, for v, m < 2^63: v mod m when v < 2m.

    Compared as signed 64-bit integers, the same comparison below 2^63. AVX2 has only a signed 64-bit
    compare, so LLVM makes an unsigned one from it by flipping both sign bits first, then blends; this way
    the vector loop needs a compare, an and-not and a subtraction. On a Zen 3 (AVX2),
    ``benchmarks/signed_compare.py`` times NTT butterflies at 0.80-0.88 and the tensor multiply-accumulate
    at 0.87 of the unsigned version's time, and ``ckkslab bench ops`` the NTT at 0.184-0.192 ms per limb
    instead of 0.201 (README, "How fast, next to SEAL"). AVX-512 has an unsigned compare.
    """
    return v - m if int64(v) >= int64(m) else v


@njit(uint64(uint64, uint64), inline="always", cache=True)
def mulhi(a, b):
    """floor(a * b / 2^64) for 64-bit a, b, from the four 32-bit partial products."""
    a_lo, a_hi = a & MASK32, a >> U32
    b_lo, b_hi = b & MASK32, b >> U32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    middle = (lo_lo >> U32) + (hi_lo & MASK32) + (lo_hi & MASK32)
    return a_hi * b_hi + (hi_lo >> U32) + (lo_hi >> U32) + (middle >> U32)


@njit(uint64(uint64, uint64), inline="always", cache=True)
def shoup_quotient(a, w_shoup):
    """An estimate e of floor(a * w / q), with w_shoup = floor(w * 2^64 / q): floor(a w / q) - 3 <= e <= it.

    e = a_hi b_hi + floor(a_hi b_lo / 2^32) + floor(a_lo b_hi / 2^32) (b = w_shoup, 32-bit halves) is mulhi
    without a_lo b_lo and without the carries of the middle word, which add at most 2.
    """
    a_lo, a_hi = a & MASK32, a >> U32
    b_lo, b_hi = w_shoup & MASK32, w_shoup >> U32
    return a_hi * b_hi + ((a_hi * b_lo) >> U32) + ((a_lo * b_hi) >> U32)


@njit(uint64(uint64, uint64, uint64, uint64), inline="always", cache=True)
def shoup_mul_lazy(a, w, w_shoup, q):
    """a * w mod q in [0, 2q) (Harvey's lazy form), for any a < 2^64 and q < 2^61.

    r = a w - e q with e from ``shoup_quotient`` lies in [0, 4q), so one conditional subtraction of 2q.
    """
    return conditional_subtract(a * w - shoup_quotient(a, w_shoup) * q, q + q)


@njit(uint64(uint64, uint64, uint64, uint64), inline="always", cache=True)
def shoup_mul(a, w, w_shoup, q):
    """a * w mod q in [0, q), where w_shoup = floor(w * 2^64 / q), a < 2^64 and q < 2^61."""
    return conditional_subtract(shoup_mul_lazy(a, w, w_shoup, q), q)


@njit(uint64(uint64, uint64, uint64, uint64), inline="always", cache=True)
def mont_mul(a, b, q, q_neg_inv):
    """REDC(a * b) = a * b * 2^-64 mod q, for a, b < q and q_neg_inv = -q^-1 mod 2^64."""
    lo = a * b
    hi = mulhi(a, b)
    m = lo * q_neg_inv
    # (a*b + m*q) / 2^64: the low words cancel exactly; a carry out of them happens iff lo != 0.
    t = hi + mulhi(m, q) + (uint64(1) if lo != 0 else uint64(0))
    return conditional_subtract(t, q)


@njit(uint64(uint64, uint64, uint64, uint64), inline="always", cache=True)
def shoup_companion(w, q, q_neg_inv, r2):
    """floor(w * 2^64 / q) for w < q, without a 128-bit division.

    r = w * 2^64 mod q = REDC(w * (2^128 mod q)); then w * 2^64 - r is an exact multiple of q, and its
    quotient w' < 2^64 satisfies w' * q = -r (mod 2^64), so w' = r * (-q^-1) mod 2^64.
    """
    return mont_mul(w, r2, q, q_neg_inv) * q_neg_inv


def shoup_precompute(w: np.ndarray | int, q: int) -> np.ndarray:
    """floor(w * 2^64 / q) for each w in [0, q), with exact Python integers (done once per fixed operand)."""
    values = np.asarray(w, dtype=np.uint64)
    flat = [(int(x) << 64) // q for x in values.ravel()]
    return np.array(flat, dtype=np.uint64).reshape(values.shape)


def montgomery_constants(q: int) -> tuple[int, int]:
    """(-q^-1 mod 2^64, 2^128 mod q): the REDC constant and the factor that undoes REDC's 2^-64 twice."""
    return (-pow(q, -1, 1 << 64)) % (1 << 64), (1 << 128) % q
