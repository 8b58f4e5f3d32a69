"""The negacyclic NTT and the modular arithmetic under it, against Python integers.

- modarith (mulhi, Shoup, Montgomery, the conditional subtraction) through small @njit wrappers, at the
  edges 0, 1, q - 1, and up to 4q (the lazy range of the NTT butterflies) and 2^64 - 1 (2^63 - 1 for the
  conditional subtraction) where the contract allows it;
- the NTT's output is the evaluation a(psi^(2 brv(k) + 1)) computed with Python ``pow``;
- NTT-based negacyclic product = schoolbook product mod (X^N + 1, q) with Python ints;
- round trip inverse(forward(a)) = a (hypothesis), for 20..61-bit primes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from ckks.ring.modarith import (
    conditional_subtract,
    mont_mul,
    montgomery_constants,
    mulhi,
    shoup_companion,
    shoup_mul,
    shoup_mul_lazy,
    shoup_precompute,
    shoup_quotient,
)
from ckks.ring.ntt import bit_reverse_permutation, ntt_forward, ntt_inverse, ntt_table
from ckks.ring.primes import minimal_primitive_root, ntt_primes

U64 = (1 << 64) - 1

# ------------------------------------------------------------------------------------------------------------
# modarith through @njit wrappers
# ------------------------------------------------------------------------------------------------------------


@njit(cache=False)
def _mulhi_many(a, b, out):
    for i in range(a.shape[0]):
        out[i] = mulhi(a[i], b[i])


@njit(cache=False)
def _shoup_many(a, w, ws, q, out, lazy_out):
    for i in range(a.shape[0]):
        out[i] = shoup_mul(a[i], w[i], ws[i], q)
        lazy_out[i] = shoup_mul_lazy(a[i], w[i], ws[i], q)


@njit(cache=False)
def _quotient_many(a, ws, out):
    for i in range(a.shape[0]):
        out[i] = shoup_quotient(a[i], ws[i])


@njit(cache=False)
def _mont_many(a, b, q, qinv, out):
    for i in range(a.shape[0]):
        out[i] = mont_mul(a[i], b[i], q, qinv)


@njit(cache=False)
def _conditional_subtract_many(v, m, out):
    for i in range(v.shape[0]):  # long enough arrays run the vectorised loop body
        out[i] = conditional_subtract(v[i], m[i])


def u64(values) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.uint64)


EDGE_64 = [0, 1, 2, 3, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, (1 << 63) - 1, 1 << 63, U64 - 1, U64]
PRIMES = {bits: ntt_primes(bits, 16, 1)[0] for bits in (20, 30, 40, 50, 59, 60, 61)}


def test_mulhi_edges_against_python():
    pairs = [(a, b) for a in EDGE_64 for b in EDGE_64]
    a, b = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    out = np.empty_like(a)
    _mulhi_many(a, b, out)
    assert [int(v) for v in out] == [(x * y) >> 64 for x, y in pairs]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, U64), st.integers(0, U64)), min_size=1, max_size=64))
def test_mulhi_random_against_python(pairs):
    a, b = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    out = np.empty_like(a)
    _mulhi_many(a, b, out)
    assert [int(v) for v in out] == [(x * y) >> 64 for x, y in pairs]


def test_conditional_subtract_against_python_up_to_two_to_the_63():
    """v - m if v >= m else v for every v, m < 2^63 (compared as signed integers inside, the same
    comparison there): the edges around m, 2m and 2^63 - 1, for moduli up to 4q of a 61-bit prime."""
    top = (1 << 63) - 1
    moduli = [1, 2, PRIMES[20], PRIMES[61], 2 * PRIMES[61], 4 * PRIMES[61], 1 << 62, top]
    pairs = [(v, m) for m in moduli
             for v in (0, 1, m - 1, m, m + 1, 2 * m - 1, top - 1, top) if 0 <= v <= top]
    pairs = pairs * 8  # several hundred: the vectorised loop body runs, not only its scalar remainder
    v, m = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    out = np.empty_like(v)
    _conditional_subtract_many(v, m, out)
    assert [int(r) for r in out] == [x - y if x >= y else x for x, y in pairs]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 63) - 1), st.integers(0, (1 << 63) - 1)), min_size=64,
                max_size=256))
def test_conditional_subtract_random(pairs):
    v, m = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    out = np.empty_like(v)
    _conditional_subtract_many(v, m, out)
    assert [int(r) for r in out] == [x - y if x >= y else x for x, y in pairs]


@pytest.mark.parametrize("bits", sorted(PRIMES))
def test_shoup_mul_edges(bits):
    """a * w mod q for w in [0, q) and a anywhere below 2^64 (incl. the lazy range [0, 4q)); the lazy form is
    congruent and in [0, 2q)."""
    q = PRIMES[bits]
    a_vals = [0, 1, q - 1, q, q + 1, 2 * q - 1, 2 * q, 3 * q + 5, 4 * q - 1, U64]
    w_vals = [0, 1, 2, q // 2, q - 2, q - 1]
    pairs = [(a, w) for a in a_vals for w in w_vals]
    a, w = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    ws = shoup_precompute(w, q)
    assert [int(v) for v in ws] == [(int(x) << 64) // q for x in w]
    out, lazy = np.empty_like(a), np.empty_like(a)
    _shoup_many(a, w, ws, np.uint64(q), out, lazy)
    for (x, y), r, rl in zip(pairs, out, lazy, strict=True):
        assert int(r) == x * y % q
        assert 0 <= int(rl) < 2 * q and int(rl) % q == x * y % q


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(PRIMES)), st.data())
def test_shoup_mul_random(bits, data):
    q = PRIMES[bits]
    pairs = data.draw(
        st.lists(st.tuples(st.integers(0, 4 * q - 1), st.integers(0, q - 1)), min_size=1, max_size=32)
    )
    a, w = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    out, lazy = np.empty_like(a), np.empty_like(a)
    _shoup_many(a, w, shoup_precompute(w, q), np.uint64(q), out, lazy)
    assert [int(v) for v in out] == [x * y % q for x, y in pairs]
    assert all(0 <= int(v) < 2 * q and int(v) % q == x * y % q for v, (x, y) in zip(lazy, pairs, strict=True))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(PRIMES)), st.data())
def test_shoup_quotient_is_within_three_below_the_true_quotient(bits, data):
    """floor(a w / q) - 3 <= shoup_quotient(a, floor(w 2^64 / q)) <= floor(a w / q), for every a < 2^64."""
    q = PRIMES[bits]
    pairs = data.draw(st.lists(st.tuples(st.one_of(st.integers(0, U64), st.sampled_from(EDGE_64)),
                                         st.one_of(st.integers(0, q - 1), st.sampled_from([0, 1, q - 1]))),
                               min_size=1, max_size=32))
    a, w = u64(p[0] for p in pairs), u64(p[1] for p in pairs)
    out = np.empty_like(a)
    _quotient_many(a, shoup_precompute(w, q), out)
    for (x, y), e in zip(pairs, out, strict=True):
        assert x * y // q - 3 <= int(e) <= x * y // q


@pytest.mark.parametrize("bits", sorted(PRIMES))
def test_montgomery_mul_edges_and_constants(bits):
    q = PRIMES[bits]
    q_neg_inv, r2 = montgomery_constants(q)
    assert (q * q_neg_inv) % (1 << 64) == (1 << 64) - 1  # q * (-q^-1) = -1 mod 2^64
    assert r2 == (1 << 128) % q
    vals = [0, 1, 2, q // 2, q - 2, q - 1]
    pairs = [(a, b) for a in vals for b in vals]
    out = np.empty(len(pairs), dtype=np.uint64)
    _mont_many(u64(p[0] for p in pairs), u64(p[1] for p in pairs), np.uint64(q), np.uint64(q_neg_inv), out)
    r_inv = pow(1 << 64, -1, q)
    assert [int(v) for v in out] == [a * b * r_inv % q for a, b in pairs]


@njit(cache=False)
def _companion_many(w, q, qinv, r2, out):
    for i in range(w.shape[0]):
        out[i] = shoup_companion(w[i], q, qinv, r2)


@pytest.mark.parametrize("bits", sorted(PRIMES))
def test_shoup_companion_without_division(bits):
    """floor(w * 2^64 / q) via REDC, for w at the edges and random w in [0, q)."""
    q = PRIMES[bits]
    q_neg_inv, r2 = montgomery_constants(q)
    rng = np.random.default_rng(bits)
    w = [0, 1, 2, q // 2, q - 2, q - 1] + [int(v) for v in rng.integers(0, q, size=50, dtype=np.uint64)]
    out = np.empty(len(w), dtype=np.uint64)
    _companion_many(u64(w), np.uint64(q), np.uint64(q_neg_inv), np.uint64(r2), out)
    assert [int(v) for v in out] == [(x << 64) // q for x in w]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(PRIMES)), st.data())
def test_montgomery_mul_random(bits, data):
    q = PRIMES[bits]
    pairs = data.draw(
        st.lists(st.tuples(st.integers(0, q - 1), st.integers(0, q - 1)), min_size=1, max_size=32)
    )
    out = np.empty(len(pairs), dtype=np.uint64)
    _mont_many(
        u64(p[0] for p in pairs),
        u64(p[1] for p in pairs),
        np.uint64(q),
        np.uint64(montgomery_constants(q)[0]),
        out,
    )
    r_inv = pow(1 << 64, -1, q)
    assert [int(v) for v in out] == [a * b * r_inv % q for a, b in pairs]


# ------------------------------------------------------------------------------------------------------------
# NTT tables and transforms
# ------------------------------------------------------------------------------------------------------------


def brv(k: int, n: int) -> int:
    bits = n.bit_length() - 1
    return int(format(k, f"0{bits}b")[::-1], 2) if bits else 0


@pytest.mark.parametrize("n", [1, 2, 16, 256])
def test_bit_reverse_permutation(n):
    assert list(bit_reverse_permutation(n)) == [brv(k, n) for k in range(n)]


@pytest.mark.parametrize("bits,n", [(20, 16), (40, 64), (61, 256)])
def test_ntt_table_against_definition(bits, n):
    q = ntt_primes(bits, n, 1)[0]
    tab = ntt_table(q, n)
    psi = int(tab.psi_rev[n // 2])  # brv(N/2) = 1
    assert pow(psi, n, q) == q - 1 and psi == minimal_primitive_root(2 * n, q)
    assert [int(v) for v in tab.psi_rev] == [pow(psi, brv(k, n), q) for k in range(n)]
    assert all(int(a) * int(b) % q == 1 for a, b in zip(tab.psi_rev, tab.psi_inv_rev, strict=True))
    assert [int(v) for v in tab.psi_rev_shoup] == [(int(w) << 64) // q for w in tab.psi_rev]
    assert tab.n_inv * n % q == 1 and tab.n_inv_shoup == (tab.n_inv << 64) // q
    assert ntt_table(q, n) is tab  # cached
    with pytest.raises(ValueError):
        tab.psi_rev[0] = 2  # read-only


def direct_ntt(a: list[int], psi: int, q: int) -> list[int]:
    """NTT(a)[k] = a(psi^(2 brv(k) + 1)) mod q, by Horner with Python ints."""
    n = len(a)
    out = []
    for k in range(n):
        x = pow(psi, 2 * brv(k, n) + 1, q)
        acc = 0
        for c in reversed(a):
            acc = (acc * x + c) % q
        out.append(acc)
    return out


def psi_of(q: int, n: int) -> int:
    """The 2N-th root the NTT uses, checked to be primitive (psi^N = -1) independently of the table."""
    psi = int(ntt_table(q, n).psi_rev[n // 2])
    assert pow(psi, n, q) == q - 1
    return psi


def random_poly(rng: np.random.Generator, q: int, n: int) -> list[int]:
    return [int(v) for v in rng.integers(0, q, size=n, dtype=np.uint64)]


@pytest.mark.parametrize("bits", [20, 36, 50, 60, 61])
@pytest.mark.parametrize("n", [4, 8, 16, 32, 128])
def test_forward_ntt_is_evaluation_at_odd_powers_bit_reversed(bits, n):
    q = ntt_primes(bits, n, 1)[0]
    rng = np.random.default_rng(bits * n)
    polys = [random_poly(rng, q, n), [q - 1] * n, [0] * n, [1] + [0] * (n - 1), [0] * (n - 1) + [q - 1]]
    psi = psi_of(q, n)
    for a in polys:
        arr = np.array([a], dtype=np.uint64)
        ntt_forward(arr, (ntt_table(q, n),))
        assert [int(v) for v in arr[0]] == direct_ntt(a, psi, q)


@pytest.mark.parametrize("n", [1024, 4096])
def test_forward_ntt_large_ring_sampled_points(n):
    """At N = 1024, 4096 (all butterfly shapes): 24 sampled outputs against Horner evaluation (61 bits)."""
    q = ntt_primes(61, n, 1)[0]
    rng = np.random.default_rng(n)
    a = random_poly(rng, q, n)
    a[0], a[-1] = q - 1, q - 1
    arr = np.array([a], dtype=np.uint64)
    ntt_forward(arr, (ntt_table(q, n),))
    psi = psi_of(q, n)
    assert int(arr.max()) < q
    for k in list(rng.choice(n, size=22, replace=False)) + [0, n - 1]:
        x = pow(psi, 2 * brv(int(k), n) + 1, q)
        acc = 0
        for c in reversed(a):
            acc = (acc * x + c) % q
        assert int(arr[0, k]) == acc


def schoolbook(a: list[int], b: list[int], q: int) -> list[int]:
    n = len(a)
    out = [0] * n
    for i in range(n):
        for j in range(n):
            if i + j < n:
                out[i + j] += a[i] * b[j]
            else:
                out[i + j - n] -= a[i] * b[j]
    return [v % q for v in out]


@pytest.mark.parametrize("bits", [20, 40, 60, 61])
@pytest.mark.parametrize("n", [16, 64, 256])
def test_ntt_negacyclic_product_equals_schoolbook(bits, n, ref):
    q = ntt_primes(bits, n, 1)[0]
    tabs = (ntt_table(q, n),)
    rng = np.random.default_rng(7 * bits + n)
    cases = [
        (random_poly(rng, q, n), random_poly(rng, q, n)),
        ([q - 1] * n, [q - 1] * n),
        ([0] * (n - 1) + [1], [0] * (n - 1) + [1]),
    ]  # X^(N-1) * X^(N-1) = -X^(N-2)
    for a, b in cases:
        fa, fb = np.array([a], dtype=np.uint64), np.array([b], dtype=np.uint64)
        ntt_forward(fa, tabs)
        ntt_forward(fb, tabs)
        prod = np.array([[int(x) * int(y) % q for x, y in zip(fa[0], fb[0], strict=True)]], dtype=np.uint64)
        ntt_inverse(prod, tabs)
        expected = schoolbook(a, b, q)
        assert [int(v) for v in prod[0]] == expected
        assert expected == ref.negacyclic_mul(a, b, q)  # the two references agree
    # the explicit wrap check of the last case
    assert schoolbook([0] * (n - 1) + [1], [0] * (n - 1) + [1], q)[n - 2] == q - 1


@settings(max_examples=30, deadline=None)
@given(
    log_n=st.integers(2, 10),
    bits=st.sampled_from([20, 30, 45, 59, 60, 61]),
    limbs=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    edge=st.sampled_from(["random", "zero", "max", "mixed"]),
)
def test_ntt_round_trip(log_n, bits, limbs, seed, edge):
    n = 1 << log_n
    moduli = ntt_primes(bits, n, limbs)
    tabs = tuple(ntt_table(q, n) for q in moduli)
    rng = np.random.default_rng(seed)
    rows = []
    for q in moduli:
        if edge == "zero":
            rows.append(np.zeros(n, dtype=np.uint64))
        elif edge == "max":
            rows.append(np.full(n, q - 1, dtype=np.uint64))
        elif edge == "mixed":
            rows.append(rng.choice(np.array([0, 1, q - 1], dtype=np.uint64), size=n))
        else:
            rows.append(rng.integers(0, q, size=n, dtype=np.uint64))
    a = np.stack(rows)
    work = a.copy()
    ntt_forward(work, tabs)
    assert all(int(work[i].max()) < q for i, q in enumerate(moduli))
    ntt_inverse(work, tabs)
    np.testing.assert_array_equal(work, a)


def test_ntt_rows_use_their_own_prime():
    """Each limb is transformed with its own table: row i equals the single-row transform mod q_i."""
    n = 32
    moduli = ntt_primes(40, n, 2) + ntt_primes(60, n, 1)
    rng = np.random.default_rng(3)
    a = np.stack([rng.integers(0, q, size=n, dtype=np.uint64) for q in moduli])
    whole = a.copy()
    ntt_forward(whole, tuple(ntt_table(q, n) for q in moduli))
    for i, q in enumerate(moduli):
        assert [int(v) for v in whole[i]] == direct_ntt([int(v) for v in a[i]], psi_of(q, n), q)
    with pytest.raises(ValueError):  # a table per row, no silent truncation
        ntt_forward(a.copy(), tuple(ntt_table(q, n) for q in moduli[:2]))


def test_selected_rows_are_transformed_and_the_others_kept():
    """rows= transforms a[rows[k]] with tables[k]; every other row is left as it was."""
    n = 64
    moduli = ntt_primes(40, n, 3)
    rng = np.random.default_rng(21)
    a = np.stack([rng.integers(0, q, n, dtype=np.uint64) for q in moduli + moduli[:1]])
    whole = a[:3].copy()
    ntt_forward(whole, tuple(ntt_table(q, n) for q in moduli))
    picked = a.copy()
    ntt_forward(picked, (ntt_table(moduli[2], n), ntt_table(moduli[0], n)), rows=np.array([2, 0]))
    assert np.array_equal(picked[[0, 2]], whole[[0, 2]]) and np.array_equal(picked[[1, 3]], a[[1, 3]])
    ntt_inverse(picked, (ntt_table(moduli[0], n), ntt_table(moduli[2], n)), rows=[0, 2])
    assert np.array_equal(picked, a)


@pytest.mark.parametrize(("rows", "message"), [
    ([0, 0], "distinct indices"), ([0, 4], r"distinct indices in \[0, 4\)"), ([-1, 1], "distinct indices"),
    ([0], "1 rows but 2 tables"),
])
def test_bad_rows_are_refused_before_any_thread_writes(rows, message):
    """A repeated index would be transformed twice (by two threads at once); one past the end would write
    outside the array: both are refused."""
    n = 16
    moduli = ntt_primes(30, n, 2)
    a = np.zeros((4, n), dtype=np.uint64)
    with pytest.raises(ValueError, match=message):
        ntt_forward(a, tuple(ntt_table(q, n) for q in moduli), rows=rows)


def test_tables_of_another_ring_degree_are_refused():
    q = ntt_primes(30, 32, 1)[0]
    with pytest.raises(ValueError, match="another ring degree"):
        ntt_forward(np.zeros((1, 16), dtype=np.uint64), (ntt_table(q, 32),))


def test_inverse_out_of_place_writes_out_and_leaves_the_input():
    """out= receives the inverse of the selected rows, in their order, and the input keeps its NTT form."""
    n = 64
    moduli = ntt_primes(40, n, 3)
    rng = np.random.default_rng(5)
    coeffs = np.stack([rng.integers(0, q, n, dtype=np.uint64) for q in moduli])
    a = coeffs.copy()
    ntt_forward(a, tuple(ntt_table(q, n) for q in moduli))
    before = a.copy()
    out = np.empty((2, n), dtype=np.uint64)
    ntt_inverse(a, (ntt_table(moduli[2], n), ntt_table(moduli[0], n)), rows=[2, 0], out=out)
    assert np.array_equal(out, coeffs[[2, 0]]) and np.array_equal(a, before)
    whole = np.empty_like(a)
    ntt_inverse(a, tuple(ntt_table(q, n) for q in moduli), out=whole)
    assert np.array_equal(whole, coeffs)


@pytest.mark.parametrize("bad", ["shape", "dtype", "overlap", "strided"])
def test_inverse_refuses_an_out_it_could_not_write_into(bad):
    n = 16
    moduli = ntt_primes(30, n, 2)
    a = np.zeros((2, n), dtype=np.uint64)
    out = {"shape": np.empty((1, n), dtype=np.uint64), "dtype": np.empty((2, n), dtype=np.int64),
           "overlap": a, "strided": np.empty((n, 2), dtype=np.uint64).T}[bad]
    with pytest.raises(ValueError, match="out must be a separate C-contiguous uint64 array"):
        ntt_inverse(a, tuple(ntt_table(q, n) for q in moduli), out=out)
