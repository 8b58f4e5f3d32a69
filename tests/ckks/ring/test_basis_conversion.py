"""Basis conversion, rescaling, mod-down and CRT-to-float against Python-int arithmetic.

- fast_base_convert: the result is the residues of ONE integer X + u*S (the same u on every target prime)
  with |u| <= |S|/2, X the centered representative of the input (documented bound, CHKKS 2018 section 2.2);
- divide_by_last_prime: exactly round(C / q_last) mod Q', for every representative C, including the
  rounding boundary r = (q_last -+ 1)/2;
- mod_down: round(C / P) - u with |u| <= |P|/2 (exact rounding for one special prime);
- divide_by_last_primes / mod_down_and_rescale: round(C / D) - u with |u| <= count/2, D the product of the
  dropped primes, for several polynomials at once (each as if alone);
- crt_to_float: the centered integer to within float rounding.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckks.ring import rns
from ckks.ring.basis_conversion import (
    crt_to_float,
    divide_by_last_prime,
    divide_by_last_primes,
    fast_base_convert,
    mod_down,
    mod_down_and_rescale,
)
from ckks.ring.primes import ntt_primes

N = 16


def chain(*bits: int, n: int = N, avoid: tuple[int, ...] = ()) -> tuple[int, ...]:
    moduli: list[int] = []
    for b in bits:
        moduli.append(
            next(q for q in ntt_primes(b, n, len(bits) + len(avoid)) if q not in moduli and q not in avoid)
        )
    return tuple(moduli)


def centered(x: int, m: int) -> int:
    x %= m
    return x - m if x > m // 2 else x


def round_div(c: int, d: int) -> int:
    """round(c / d) for odd d (no ties), with Python ints."""
    return (2 * c + d) // (2 * d)


@pytest.mark.parametrize(
    "src_bits,dst_bits",
    [
        ((40,), (50, 60)),
        ((40, 40), (61,)),
        ((30, 40, 50), (60, 60)),
        ((61, 61, 61, 61), (40, 50, 61)),
        ((20, 20), (20,)),
    ],
)
def test_fast_base_convert_is_x_plus_small_multiple_of_s(src_bits, dst_bits):
    src = chain(*src_bits)
    dst = chain(*dst_bits, avoid=src)
    s_prod = math.prod(src)
    rnd = random.Random(len(src) * 100 + len(dst))
    values = [0, 1, s_prod - 1, s_prod // 2, s_prod // 2 + 1] + [rnd.randrange(s_prod) for _ in range(N - 5)]
    x = np.array([[v % s for v in values] for s in src], dtype=np.uint64)
    out = fast_base_convert(x, src, dst)
    assert out.shape == (len(dst), N)
    worst = 0
    for k, v in enumerate(values):
        xc = centered(v, s_prod)
        us = {centered((int(out[j, k]) - xc) * pow(s_prod, -1, t), t) for j, t in enumerate(dst)}
        assert len(us) == 1, "the target residues are not those of one integer X + u*S"
        u = us.pop()
        assert abs(u) <= len(src) / 2
        worst = max(worst, abs(u))
        assert all(0 <= int(out[j, k]) < t for j, t in enumerate(dst))
    if len(src) == 1:
        assert worst == 0  # one prime: the centered digit is X itself, exact


@settings(max_examples=30, deadline=None)
@given(n_src=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_fast_base_convert_bound_random(n_src, seed):
    src = chain(*([45] * n_src))
    dst = chain(55, 61, avoid=src)
    s_prod = math.prod(src)
    rnd = random.Random(seed)
    values = [rnd.randrange(s_prod) for _ in range(N)]
    out = fast_base_convert(np.array([[v % s for v in values] for s in src], dtype=np.uint64), src, dst)
    for k, v in enumerate(values):
        xc = centered(v, s_prod)
        us = [centered((int(out[j, k]) - xc) * pow(s_prod, -1, t), t) for j, t in enumerate(dst)]
        assert us[0] == us[1] and abs(us[0]) <= n_src / 2


@pytest.mark.parametrize("bits", [(40, 30), (50, 40, 40), (61, 61, 61), (20, 20, 20, 20), (60, 45, 61)])
def test_divide_by_last_prime_is_exact_rounding(bits, ref):
    moduli = chain(*bits)
    basis = rns.rns_basis(moduli, N)
    sub = rns.rns_basis(moduli[:-1], N)
    q_all, q_last = basis.product, moduli[-1]
    q_sub = q_all // q_last
    h = (q_last - 1) // 2
    rnd = random.Random(q_last)
    values = [
        0,
        1,
        -1,
        h,
        h + 1,
        -h,
        -h - 1,
        7 * q_last + h,
        7 * q_last + h + 1,
        q_all // 2,
        -(q_all // 2),
        q_all - 1,
    ] + [rnd.randrange(q_all) for _ in range(N - 12)]
    c = rns.to_ntt(ref.residues(values, moduli), basis)
    before = c.copy()
    out = rns.from_ntt(divide_by_last_prime(c, basis), sub)
    np.testing.assert_array_equal(c, before)  # input untouched
    assert ref.crt(out, sub.moduli, centered=False) == [round_div(v, q_last) % q_sub for v in values]


@pytest.mark.parametrize("k_special", [1, 2, 3])
def test_mod_down_is_rounding_within_documented_bound(k_special, ref):
    """ModDown(c) = round(c / P) - u with |u| <= K/2 (so within K/2 + 1/2 of c / P); exact for K = 1."""
    q_moduli = chain(40, 50, 30)
    p_moduli = chain(*([60] * k_special), avoid=q_moduli)
    q_basis, p_basis = rns.rns_basis(q_moduli, N), rns.rns_basis(p_moduli, N)
    qp = rns.rns_basis(q_moduli + p_moduli, N)
    q_all, p_all = q_basis.product, p_basis.product
    rnd = random.Random(k_special)
    worst = 0
    for _ in range(8):
        values = [rnd.randrange(-(q_all * p_all) // 2, (q_all * p_all) // 2) for _ in range(N)]
        values[:3] = [0, p_all // 2, -(p_all // 2) - 1]
        c = rns.to_ntt(ref.residues(values, q_moduli + p_moduli), qp)
        out = ref.crt(rns.from_ntt(mod_down(c, q_basis, p_basis), q_basis), q_moduli)
        for v, got in zip(values, out, strict=True):
            u = centered(round_div(v, p_all) - got, q_all)
            assert abs(u) <= k_special / 2
            worst = max(worst, abs(u))
    if k_special == 1:
        assert worst == 0


def _check_division(values: list[int], got: list[int], divisor: int, kept_product: int, count: int) -> int:
    """Every got == round(v / divisor) - u (mod the kept product) with |u| <= count / 2; the worst |u|."""
    worst = 0
    for v, g in zip(values, got, strict=True):
        u = centered(round_div(v, divisor) - g, kept_product)
        assert abs(u) <= count / 2
        worst = max(worst, abs(u))
    return worst


@pytest.mark.parametrize("count", [1, 2, 3])
def test_divide_by_last_primes_rounds_each_of_several_polynomials(count, ref):
    """Three polynomials in one call: each is round(C / D) - u, |u| <= count/2, exact for one prime; the
    stacked result equals the polynomials divided one by one, and the input is untouched."""
    moduli = chain(40, 50, 30, 61, 55)
    basis = rns.rns_basis(moduli, N)
    kept = rns.rns_basis(moduli[:-count], N)
    q_all, divisor = basis.product, math.prod(moduli[-count:])
    rnd = random.Random(count)
    polys = [[rnd.randrange(-(q_all // 2), q_all // 2) for _ in range(N)] for _ in range(3)]
    polys[0][:4] = [0, divisor // 2, -(divisor // 2) - 1, q_all // 2]
    c = np.stack([rns.to_ntt(ref.residues(values, moduli), basis) for values in polys])
    before = c.copy()
    out = divide_by_last_primes(c, basis, count)
    np.testing.assert_array_equal(c, before)
    assert out.shape == (3, len(moduli) - count, N)
    worst = 0
    for values, got, alone in zip(polys, out, c, strict=True):
        np.testing.assert_array_equal(got, divide_by_last_primes(alone, basis, count))
        coefficients = ref.crt(rns.from_ntt(got, kept), kept.moduli)
        worst = max(worst, _check_division(values, coefficients, divisor, kept.product, count))
    if count == 1:
        assert worst == 0


def test_mod_down_and_rescale_divides_by_p_times_the_last_prime(ref):
    """c over Q*P -> round(c / (q_last * P)) - u over Q without q_last, |u| <= (|P| + 1)/2."""
    q_moduli = chain(40, 50, 45)
    p_moduli = chain(60, 60, avoid=q_moduli)
    q_basis, p_basis = rns.rns_basis(q_moduli, N), rns.rns_basis(p_moduli, N)
    qp = rns.rns_basis(q_moduli + p_moduli, N)
    kept = rns.rns_basis(q_moduli[:-1], N)
    rnd = random.Random(5)
    values = [rnd.randrange(-(qp.product // 2), qp.product // 2) for _ in range(N)]
    c = np.stack([rns.to_ntt(ref.residues(values, q_moduli + p_moduli), qp)] * 2)
    out = mod_down_and_rescale(c, q_basis, p_basis)
    assert out.shape == (2, len(q_moduli) - 1, N)
    got = ref.crt(rns.from_ntt(out[1], kept), kept.moduli)
    _check_division(values, got, q_moduli[-1] * p_basis.product, kept.product, len(p_moduli) + 1)


def test_fast_base_convert_refuses_an_out_it_could_not_write_into():
    src, dst = chain(40), chain(50, 60, avoid=chain(40))
    x = np.ones((1, N), dtype=np.uint64)
    with pytest.raises(ValueError, match="C-contiguous"):
        fast_base_convert(x, src, dst, out=np.empty((N, 2), dtype=np.uint64).T)


@settings(max_examples=30, deadline=None)
@given(n_limbs=st.integers(1, 6), bits=st.sampled_from([30, 45, 60, 61]), seed=st.integers(0, 2**32))
def test_crt_to_float_random(n_limbs, bits, seed, ref):
    """Within (L + 1) * 2^-52 relative error of the exact centered integer (Garner + Horner in float64)."""
    moduli = chain(*([bits] * n_limbs))
    q_all = math.prod(moduli)
    rnd = random.Random(seed)
    values = [0, 1, -1, 2**52, -(2**52)] + [rnd.randrange(-(q_all // 2), q_all // 2) for _ in range(N - 5)]
    values = [centered(v, q_all) for v in values]
    got = crt_to_float(ref.residues(values, moduli), moduli)
    for v, g in zip(values, got, strict=True):
        assert abs(g - v) <= (n_limbs + 1) * 2.0**-52 * abs(v)
    # values representable in float64 come back exactly
    assert list(got[:3]) == [0.0, 1.0, -1.0]


def test_crt_to_float_exact_for_small_moduli(ref):
    moduli = chain(20, 25)  # Q < 2^45: every centered value is an exact float
    q_all = math.prod(moduli)
    values = [q_all // 2, -(q_all // 2), 0, 1, -1] + list(range(-5, 6))
    got = crt_to_float(ref.residues(values, moduli), moduli)
    assert [int(g) for g in got] == values


def test_crt_to_float_sign_at_the_centering_boundary(ref):
    moduli = chain(60, 60)
    q_all = math.prod(moduli)
    values = [-(q_all // 2), q_all // 2, -(q_all // 2) + 1] + [0] * (N - 3)
    got = crt_to_float(ref.residues(values, moduli), moduli)
    assert got[0] < 0 and got[1] > 0 and got[2] < 0


def test_fast_base_convert_reads_a_digit_in_place_from_first_row():
    src = chain(40, 45)
    dst = chain(50, 61, avoid=src)
    s_prod = math.prod(src)
    rnd = random.Random(7)
    polys = [[rnd.randrange(s_prod) for _ in range(N)] for _ in range(3)]
    x = np.random.default_rng(7).integers(0, 2**40, size=(3, 5, N), dtype=np.uint64)  # other rows: noise
    for p, values in enumerate(polys):
        x[p, 2:4] = [[v % s for v in values] for s in src]
    out = fast_base_convert(x, src, dst, first_row=2)
    assert out.shape == (3, len(dst), N)
    for p, values in enumerate(polys):
        for k, v in enumerate(values):
            xc = centered(v, s_prod)
            us = {centered((int(out[p, j, k]) - xc) * pow(s_prod, -1, t), t) for j, t in enumerate(dst)}
            assert len(us) == 1 and abs(us.pop()) <= len(src) / 2


@pytest.mark.parametrize("first_row", [-1, 4])
def test_fast_base_convert_refuses_source_rows_outside_x(first_row):
    src, dst = chain(40, 45), chain(50, avoid=chain(40, 45))
    with pytest.raises(ValueError, match="source primes are not all in x's 5 rows"):
        fast_base_convert(np.zeros((5, N), dtype=np.uint64), src, dst, first_row=first_row)


def test_fast_base_convert_writes_out_rows_and_leaves_the_others():
    """out_rows= puts target prime j in row out_rows[j] of each polynomial (the residues a conversion to
    those primes alone gives) and leaves every other row of out as it was."""
    src = chain(40, 45)
    dst = chain(50, 55, 61, avoid=src)
    rnd = random.Random(11)
    s_prod = math.prod(src)
    polys = [[rnd.randrange(s_prod) for _ in range(N)] for _ in range(2)]
    x = np.array([[[v % s for v in values] for s in src] for values in polys], dtype=np.uint64)
    out = np.random.default_rng(11).integers(0, 2**40, size=(2, 5, N), dtype=np.uint64)
    before = out.copy()
    fast_base_convert(x, src, (dst[2], dst[0]), out=out, out_rows=(4, 1))
    full = fast_base_convert(x, src, dst)
    assert np.array_equal(out[:, 4], full[:, 2]) and np.array_equal(out[:, 1], full[:, 0])
    assert np.array_equal(out[:, [0, 2, 3]], before[:, [0, 2, 3]])


@pytest.mark.parametrize("out_rows", [(0,), (1, 1), (0, 3), (-1, 0)])
def test_fast_base_convert_refuses_out_rows_that_are_not_distinct_rows_of_out(out_rows):
    src, dst = chain(40), chain(50, 60, avoid=chain(40))
    with pytest.raises(ValueError, match="out_rows must be 2 distinct rows of out's 3"):
        fast_base_convert(np.ones((1, N), dtype=np.uint64), src, dst, out=np.empty((3, N), dtype=np.uint64),
                          out_rows=out_rows)
    with pytest.raises(ValueError, match="out_rows needs the out array"):
        fast_base_convert(np.ones((1, N), dtype=np.uint64), src, dst, out_rows=(0, 1))
