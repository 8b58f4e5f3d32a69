"""RNS polynomials against Python integers: CRT round trip, row-wise ring operations, and the RNS ring product
(NTT, pointwise Montgomery product, inverse NTT) against the schoolbook product over Z_Q with big integers."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckks.ring import dot_kernels, rns
from ckks.ring.primes import ntt_primes


def basis_of(n: int, bits: tuple[int, ...]) -> rns.RnsBasis:
    moduli: list[int] = []
    for b in bits:
        moduli.append(next(q for q in ntt_primes(b, n, len(bits)) if q not in moduli))
    return rns.rns_basis(tuple(moduli), n)


def rows(a: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in row] for row in a]


def test_rns_basis_constants_and_cache():
    b = basis_of(32, (40, 50, 61))
    assert rns.rns_basis(b.moduli, 32) is b
    assert len(b) == 3 and b.product == math.prod(b.moduli)
    assert [int(v) for v in b.q] == list(b.moduli)
    for q, r, rs, qn in zip(b.moduli, b.r_mod_q, b.r_mod_q_shoup, b.q_neg_inv, strict=True):
        assert int(r) == (1 << 64) % q and int(rs) == (int(r) << 64) // q
        assert (int(qn) * q + 1) % (1 << 64) == 0
    assert [t.modulus for t in b.tables] == list(b.moduli)
    assert "N=32" in repr(b)


@settings(max_examples=40, deadline=None)
@given(
    bits=st.lists(st.sampled_from([20, 30, 40, 50, 60, 61]), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_crt_round_trip_python_ints(bits, seed, ref):
    """Residues of x (Python %), then the RNS round trip (to_ntt, from_ntt), then Python-int CRT give back
    every x in (-Q/2, Q/2], including both ends."""
    basis = basis_of(16, tuple(bits))
    q_all = basis.product
    rnd = random.Random(seed)
    values = [0, 1, -1, q_all // 2, -(q_all // 2)] + [
        rnd.randrange(-(q_all // 2), q_all // 2 + 1) for _ in range(11)
    ]
    res = ref.residues(values, basis.moduli)
    back = rns.from_ntt(rns.to_ntt(res, basis), basis)
    assert ref.crt(back, basis.moduli) == values


def test_from_signed_int64_matches_python_mod(ref):
    basis = basis_of(16, (20, 30, 61))
    values = np.array(
        [0, 1, -1, 2**62, -(2**62), 2**63 - 1, -(2**63), 12345, -98765, 7, -7, 0, 3, -3, 2**40, -(2**40)],
        dtype=np.int64,
    )
    out = rns.from_signed(values, basis)
    assert out.dtype == np.uint64 and out.shape == (3, 16)
    assert rows(out) == [[int(v) % q for v in values] for q in basis.moduli]
    # a vector of small ints (the samplers' output) and its CRT
    small = np.arange(-8, 8, dtype=np.int64)
    assert ref.crt(rns.from_signed(small, basis), basis.moduli) == list(range(-8, 8))


def test_from_float_integers_matches_python_ints():
    """Whole-number floats of any size (beyond int64) reduce exactly: [v]_q = int(v) mod q."""
    basis = basis_of(16, (20, 40, 61))
    values = np.array(
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.0**53 + 2,
            -(2.0**53) - 2,
            2.0**62,
            2.0**63,
            -(2.0**63),
            3 * 2.0**70,
            -(2.0**100) * 5,
            2.0**200,
            123456789.0,
            -987654321.0,
            2.0**61 - 1.0,
            -7.0,
        ]
    )
    out = rns.from_float_integers(values, basis)
    assert rows(out) == [[int(v) % q for v in values] for q in basis.moduli]


def test_from_float_integers_refuses_fractions():
    basis = basis_of(16, (40,))
    with pytest.raises(ValueError, match="whole"):
        rns.from_float_integers(np.array([1.0, 2.5]), basis)


@settings(max_examples=25, deadline=None)
@given(
    log_n=st.integers(4, 9),
    bits=st.lists(st.sampled_from([20, 40, 60, 61]), min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_to_ntt_from_ntt_round_trip(log_n, bits, seed):
    n = 1 << log_n
    basis = basis_of(n, tuple(bits))
    rng = np.random.default_rng(seed)
    a = np.stack([rng.integers(0, q, size=n, dtype=np.uint64) for q in basis.moduli])
    a_ntt = rns.to_ntt(a, basis)
    assert a_ntt is not a and not np.shares_memory(a_ntt, a)
    np.testing.assert_array_equal(rns.from_ntt(a_ntt, basis), a)


def random_rows(basis: rns.RnsBasis, rng: np.random.Generator, edge: bool = False) -> np.ndarray:
    out = np.stack([rng.integers(0, q, size=basis.ring_degree, dtype=np.uint64) for q in basis.moduli])
    if edge:  # plant 0 and q - 1 at the start of every row
        for i, q in enumerate(basis.moduli):
            out[i, :4] = [0, q - 1, q - 1, 0]
    return out


@pytest.mark.parametrize("bits", [(20,), (40, 50), (60, 61, 61)])
def test_rowwise_operations_against_python(bits):
    basis = basis_of(32, bits)
    rng = np.random.default_rng(len(bits))
    a, b, acc = (random_rows(basis, rng, edge=True) for _ in range(3))
    b[:, :4] = a[:, [0, 1, 0, 1]]  # pairs (0,0), (q-1,q-1), (q-1,0), (0,q-1)
    pa, pb, pacc = rows(a), rows(b), rows(acc)
    qs = basis.moduli
    assert rows(rns.add(a, b, basis)) == [
        [(x + y) % q for x, y in zip(r, s, strict=True)] for r, s, q in zip(pa, pb, qs, strict=True)
    ]
    assert rows(rns.sub(a, b, basis)) == [
        [(x - y) % q for x, y in zip(r, s, strict=True)] for r, s, q in zip(pa, pb, qs, strict=True)
    ]
    assert rows(rns.neg(a, basis)) == [[(-x) % q for x in r] for r, q in zip(pa, qs, strict=True)]
    assert rows(rns.mul(a, b, basis)) == [
        [x * y % q for x, y in zip(r, s, strict=True)] for r, s, q in zip(pa, pb, qs, strict=True)
    ]
    work = acc.copy()
    rns.mul_add_into(work, a, b, basis)
    assert rows(work) == [
        [(z + x * y) % q for x, y, z in zip(r, s, t, strict=True)]
        for r, s, t, q in zip(pa, pb, pacc, qs, strict=True)
    ]
    for c in (0, 1, -1, 3**50, -(7**40), basis.product - 1):
        res = rns.scalar_residues(c, basis)
        assert [int(v) for v in res] == [c % q for q in qs]
        assert rows(rns.mul_scalar(a, res, basis)) == [
            [x * c % q for x in r] for r, q in zip(pa, qs, strict=True)
        ]
        assert rows(rns.add_scalar(a, res, basis)) == [
            [(x + c) % q for x in r] for r, q in zip(pa, qs, strict=True)
        ]
    # Shoup products with a fixed operand: companions floor(b * 2^64 / q) computed without division
    b_shoup = rns.shoup_companions(b, basis)
    assert rows(b_shoup) == [[(y << 64) // q for y in s] for s, q in zip(pb, qs, strict=True)]
    # dot products with fixed operands: three terms (a, acc) * b, (acc, a) * a, (b, b) * acc
    xs = np.stack([np.stack([a, acc]), np.stack([acc, a]), np.stack([b, b])])
    ws = np.stack([b, a, acc])
    terms = [[(0, 0), (1, 1), (2, 2)], [(2, 1)]]
    got = dot_kernels.dot_plain_shoup(xs, ws, rns.shoup_companions(ws, basis), terms, basis)
    assert [rows(part) for part in got[0]] == [
        [[(x * y + z * x + y * z) % q for x, y, z in zip(r, s, t, strict=True)]
         for r, s, t, q in zip(pa, pb, pacc, qs, strict=True)],
        [[(z * y + x * x + y * z) % q for x, y, z in zip(r, s, t, strict=True)]
         for r, s, t, q in zip(pa, pb, pacc, qs, strict=True)],
    ]
    b_times_a = [[x * y % q for x, y in zip(r, s, strict=True)] for r, s, q in zip(pb, pa, qs, strict=True)]
    assert [rows(part) for part in got[1]] == [b_times_a, b_times_a]   # (b, b) * a
    # operands are not modified
    assert rows(a) == pa and rows(b) == pb


def test_tensor_dot_product_against_python_integers():
    """sum_t (x0 w0, x0 w1 + x1 w0, x1 w1) over many terms (more than one accumulator chunk of slots)."""
    basis = basis_of(2048, (30, 50, 60))
    rng = np.random.default_rng(8)
    xs = np.stack([np.stack([random_rows(basis, rng, edge=True) for _ in range(2)]) for _ in range(5)])
    ws = np.stack([np.stack([random_rows(basis, rng, edge=True) for _ in range(2)]) for _ in range(4)])
    terms = [[(0, 0), (1, 1), (2, 2), (3, 3), (4, 0)], [(4, 3), (4, 2)]]
    got = dot_kernels.dot_tensor_shoup(xs, ws, terms, basis)
    for r, row in enumerate(terms):
        for i, q in enumerate(basis.moduli):
            for k in (0, 1, 1023, 1024, 2047):
                pairs = [([int(v) for v in xs[t, :, i, k]], [int(v) for v in ws[u, :, i, k]]) for t, u in row]
                want = [sum(x[0] * w[0] for x, w in pairs) % q,
                        sum(x[0] * w[1] + x[1] * w[0] for x, w in pairs) % q,
                        sum(x[1] * w[1] for x, w in pairs) % q]
                assert [int(got[r, c, i, k]) for c in range(3)] == want


def test_dot_kernels_add_each_outputs_bias_against_python_integers():
    """With a bias per output (row -1: none; fewer components than the sums: the rest get 0), each sum is
    (bias + sum of products) mod q, edge residues q - 1 included."""
    basis = basis_of(2048, (30, 50, 60))
    rng = np.random.default_rng(9)
    xs = np.stack([np.stack([random_rows(basis, rng, edge=True) for _ in range(2)]) for _ in range(3)])
    ws = np.stack([np.stack([random_rows(basis, rng, edge=True) for _ in range(2)]) for _ in range(3)])
    plain_ws = ws[:, 0].copy()
    bias = np.stack([np.stack([random_rows(basis, rng, edge=True) for _ in range(2)]) for _ in range(2)])
    terms = [[(0, 0), (1, 1)], [(2, 2)], [(1, 0), (2, 1)]]
    index = [1, -1, 0]
    tensor = dot_kernels.dot_tensor_shoup(xs, ws, terms, basis, bias, index)
    plain = dot_kernels.dot_plain_shoup(xs, plain_ws, rns.shoup_companions(plain_ws, basis), terms, basis,
                                        np.ascontiguousarray(bias[:, :1]), index)
    for r, row in enumerate(terms):
        for i, q in enumerate(basis.moduli):
            for k in (0, 1023, 1024, 2047):
                b = [int(v) for v in bias[index[r], :, i, k]] if index[r] >= 0 else [0, 0]
                pairs = [([int(v) for v in xs[t, :, i, k]], [int(v) for v in ws[u, :, i, k]]) for t, u in row]
                want = [(b[0] + sum(x[0] * w[0] for x, w in pairs)) % q,
                        (b[1] + sum(x[0] * w[1] + x[1] * w[0] for x, w in pairs)) % q,
                        sum(x[1] * w[1] for x, w in pairs) % q]
                assert [int(tensor[r, c, i, k]) for c in range(3)] == want
                want_plain = [(b[0] + sum(x[0] * w[0] for x, w in pairs)) % q,
                              sum(x[1] * w[0] for x, w in pairs) % q]
                assert [int(plain[r, c, i, k]) for c in range(2)] == want_plain


def test_dot_kernels_refuse_a_bias_they_would_misread():
    """The kernels do no bounds checks: a bias of another shape, an index past its rows, or one of bias and
    bias_index alone is refused by name, never read out of bounds or ignored."""
    basis = basis_of(16, (30, 60))
    rng = np.random.default_rng(10)
    xs = np.stack([np.stack([random_rows(basis, rng) for _ in range(2)]) for _ in range(2)])
    bias = np.stack([np.stack([random_rows(basis, rng) for _ in range(2)])])
    terms = [[(0, 0)], [(1, 1)]]
    cases = [
        (bias, None, "together"),
        (None, [0, 0], "together"),
        (bias, [0, 1], r"one row in \[-1, 1\)"),
        (bias, [0], "one row"),
        (bias[:, :, :1].copy(), [0, 0], "C-contiguous uint64 array"),
        (bias[:, :, :, ::2], [0, 0], "C-contiguous uint64 array"),
        (bias.astype(np.int64), [0, 0], "C-contiguous uint64 array"),
        (np.concatenate([bias, bias[:, :1]], axis=1), [0, 0], r"\(B, 1..2,"),
    ]
    for b, index, message in cases:
        with pytest.raises(ValueError, match=message):
            dot_kernels.dot_plain_shoup(xs, xs[:, 0].copy(), rns.shoup_companions(xs[:, 0].copy(), basis),
                                        terms, basis, b, index)


def test_shoup_companions_of_stacked_operands():
    """A (components, L, N) stack (a key, a ciphertext) gets its companions limb by limb."""
    basis = basis_of(16, (30, 60))
    rng = np.random.default_rng(4)
    stack = np.stack([random_rows(basis, rng, edge=True) for _ in range(3)]).reshape(3, 1, 2, 16)
    out = rns.shoup_companions(stack, basis)
    assert out.shape == stack.shape
    for idx in np.ndindex(3, 1):
        assert rows(out[idx]) == [
            [(int(y) << 64) // q for y in r] for r, q in zip(stack[idx], basis.moduli, strict=True)
        ]


def test_operations_on_leading_rows_of_a_larger_basis():
    """A level-l polynomial uses the first l + 1 primes of the basis."""
    basis = basis_of(16, (40, 50, 60))
    rng = np.random.default_rng(1)
    a, b = random_rows(basis, rng)[:2], random_rows(basis, rng)[:2]
    qs = basis.moduli[:2]
    assert rows(rns.add(a, b, basis)) == [
        [(int(x) + int(y)) % q for x, y in zip(r, s, strict=True)] for r, s, q in zip(a, b, qs, strict=True)
    ]
    assert rows(rns.mul(a, b, basis)) == [
        [int(x) * int(y) % q for x, y in zip(r, s, strict=True)] for r, s, q in zip(a, b, qs, strict=True)
    ]
    res = rns.scalar_residues(-5, basis, rows=2)
    assert len(res) == 2
    assert rows(rns.mul_scalar(a, res, basis)) == [
        [int(x) * -5 % q for x in r] for r, q in zip(a, qs, strict=True)
    ]


@pytest.mark.parametrize("n,bits", [(16, (61, 61, 61)), (64, (40, 50)), (128, (30,))])
def test_rns_ring_product_equals_schoolbook_over_big_q(n, bits, ref):
    """to_ntt -> mul -> from_ntt = the schoolbook product of the centered big-integer polynomials mod Q."""
    basis = basis_of(n, bits)
    q_all = basis.product
    rnd = random.Random(n)
    a = [rnd.randrange(-(q_all // 2), q_all // 2 + 1) for _ in range(n)]
    b = [rnd.randrange(-(q_all // 2), q_all // 2 + 1) for _ in range(n)]
    a[0], b[-1] = q_all // 2, -(q_all // 2)
    prod = rns.from_ntt(
        rns.mul(
            rns.to_ntt(ref.residues(a, basis.moduli), basis),
            rns.to_ntt(ref.residues(b, basis.moduli), basis),
            basis,
        ),
        basis,
    )
    expected = [ref.center(v, q_all) for v in ref.negacyclic_mul(a, b)]
    assert ref.crt(prod, basis.moduli) == expected


def test_add_scalar_in_ntt_form_adds_a_constant_polynomial(ref):
    basis = basis_of(32, (40, 60))
    rng = np.random.default_rng(5)
    a = random_rows(basis, rng)
    out = rns.from_ntt(
        rns.add_scalar(rns.to_ntt(a, basis), rns.scalar_residues(-123456789, basis), basis), basis
    )
    expected = rows(a)
    for i, q in enumerate(basis.moduli):
        expected[i][0] = (expected[i][0] - 123456789) % q
    assert rows(out) == expected


def test_mul_scalar_commutes_with_ntt():
    """An integer constant multiplies coefficients and NTT values alike (used for scalars without an NTT)."""
    basis = basis_of(64, (50, 61))
    rng = np.random.default_rng(6)
    a = random_rows(basis, rng)
    res = rns.scalar_residues(-(2**70) + 3, basis)
    np.testing.assert_array_equal(
        rns.to_ntt(rns.mul_scalar(a, res, basis), basis), rns.mul_scalar(rns.to_ntt(a, basis), res, basis)
    )


def test_to_ntt_from_ntt_accept_non_contiguous_input():
    basis = basis_of(32, (40, 50))
    rng = np.random.default_rng(9)
    a = random_rows(basis, rng)
    fortran = np.asfortranarray(a)
    np.testing.assert_array_equal(rns.to_ntt(fortran, basis), rns.to_ntt(a, basis))
    np.testing.assert_array_equal(rns.from_ntt(fortran, basis), rns.from_ntt(a, basis))


def test_mul_scalar_add_into_adds_a_multiple_on_the_leading_rows():
    """acc[c, i] + a[c, i] * value mod q_i with Python ints on the rows of a; acc's extra rows untouched."""
    basis = basis_of(32, (40, 50, 61))
    rng = np.random.default_rng(11)
    a = np.stack([random_rows(basis, rng)[:2] for _ in range(2)])  # two components over the first two primes
    acc = np.stack([random_rows(basis, rng) for _ in range(2)])
    before = acc.copy()
    value = 2**100 + 12345
    rns.mul_scalar_add_into(acc, a, rns.scalar_residues(value, basis), basis)
    for c in range(2):
        for i, q in enumerate(basis.moduli[:2]):
            assert [int(v) for v in acc[c, i]] == [(int(x) + int(y) * value) % q
                                                   for x, y in zip(before[c, i], a[c, i], strict=True)]
    np.testing.assert_array_equal(acc[:, 2], before[:, 2])
    with pytest.raises(ValueError, match="C-contiguous accumulator"):
        rns.mul_scalar_add_into(acc[:, :1], a, rns.scalar_residues(value, basis), basis)


def test_stack_and_copy_into_copy_every_row_exactly():
    rng = np.random.default_rng(5)
    arrays = [rng.integers(0, 2**64 - 1, size=(2, 3, 64), dtype=np.uint64, endpoint=True) for _ in range(4)]
    assert np.array_equal(rns.stack(arrays), np.stack(arrays))
    strided = rng.integers(0, 2**63, size=(3, 128), dtype=np.uint64)[:, ::2]  # a non-contiguous source
    out = np.empty((3, 64), dtype=np.uint64)
    rns.copy_into(out, strided)
    assert np.array_equal(out, strided)


def test_copy_into_refuses_a_destination_it_could_not_write_into():
    a = np.ones((3, 64), dtype=np.uint64)
    with pytest.raises(ValueError, match="C-contiguous destination of shape"):
        rns.copy_into(np.empty((64, 3), dtype=np.uint64).T, a)
    with pytest.raises(ValueError, match="C-contiguous destination of shape"):
        rns.copy_into(np.empty((3, 32), dtype=np.uint64), a)
    with pytest.raises(ValueError, match="stack: no array to stack"):
        rns.stack([])
    with pytest.raises(ValueError, match="copies uint64 residues, got float64 into uint64"):
        rns.copy_into(np.empty((3, 64), dtype=np.uint64), np.ones((3, 64)))


def test_mul_into_out_and_in_place():
    basis = basis_of(32, (40, 50))
    rng = np.random.default_rng(6)
    a, b = random_rows(basis, rng, edge=True), random_rows(basis, rng)
    expected = [[x * y % q for x, y in zip(ra, rb, strict=True)]
                for ra, rb, q in zip(rows(a), rows(b), basis.moduli, strict=True)]
    out = np.empty_like(a)
    assert rns.mul(a, b, basis, out=out) is out and rows(out) == expected
    rns.mul(a, b, basis, out=a)  # the result may overwrite an operand (entry by entry)
    assert rows(a) == expected


@pytest.mark.parametrize("bits", [(40, 50, 61), (30,)])
def test_square_is_the_three_products_against_python_integers(bits):
    """square((a0, a1)) = (a0^2, 2 a0 a1, a1^2) mod q_i entry by entry, with Python integers (edges too)."""
    basis = basis_of(32, bits)
    rng = np.random.default_rng(len(bits))
    a = np.stack([np.stack([rng.integers(0, q, 32, dtype=np.uint64) for q in basis.moduli])
                  for _ in range(2)])
    a[:, :, 0], a[0, :, 1] = 0, [q - 1 for q in basis.moduli]
    got = rns.square(a, basis)
    for i, q in enumerate(basis.moduli):
        x, y = [int(v) for v in a[0, i]], [int(v) for v in a[1, i]]
        assert [int(v) for v in got[0, i]] == [u * u % q for u in x]
        assert [int(v) for v in got[1, i]] == [2 * u * v % q for u, v in zip(x, y, strict=True)]
        assert [int(v) for v in got[2, i]] == [v * v % q for v in y]
    with pytest.raises(ValueError, match=r"square: expected uint64 components \(2, L, N\)"):
        rns.square(a[:1], basis)


@pytest.mark.parametrize("n", [5000, 12288])
def test_dot_kernels_cover_every_block_of_slots_at_one_and_two_threads(n):
    """The dot kernels' jobs are blocks of 4096 slots of a limb (``dot_kernels._JOB_SLOTS``): with a last
    block of 904 slots (n = 5000, not a multiple of the 1024-slot chunk) and with three whole blocks, every
    slot is summed once, against Python integers at the blocks' edges, and the same at 1 and 2 threads."""
    import ckks

    basis = basis_of(16384, (30, 50, 60))
    rng = np.random.default_rng(n)
    q = basis.q[:, None]
    xs = rng.integers(0, 1 << 62, (3, 2, 3, n), dtype=np.uint64) % q
    ws = rng.integers(0, 1 << 62, (3, 2, 3, n), dtype=np.uint64) % q
    plain_ws = rng.integers(0, 1 << 62, (3, 3, n), dtype=np.uint64) % q
    terms = [[(0, 0), (1, 1), (2, 2)], [(2, 0)]]
    before = ckks.get_threads()
    results = {}
    try:
        for threads in sorted({1, min(2, ckks.available_threads())}):
            ckks.set_threads(threads)
            plain_shoup = rns.shoup_companions(plain_ws, basis)
            results[threads] = (dot_kernels.dot_tensor_shoup(xs, ws, terms, basis),
                                dot_kernels.dot_plain_shoup(xs, plain_ws, plain_shoup, terms, basis))
    finally:
        ckks.set_threads(before)
    tensor, plain = results[1]
    for other in results.values():
        assert np.array_equal(other[0], tensor) and np.array_equal(other[1], plain)
    for r, row in enumerate(terms):
        for i, qi in enumerate(basis.moduli):
            for k in (0, 1023, 1024, 4095, 4096, 4097, 8191, 8192, n - 1):
                if k >= n:
                    continue
                pairs = [([int(v) for v in xs[t, :, i, k]], [int(v) for v in ws[u, :, i, k]]) for t, u in row]
                assert [int(tensor[r, c, i, k]) for c in range(3)] == [
                    sum(x[0] * w[0] for x, w in pairs) % qi,
                    sum(x[0] * w[1] + x[1] * w[0] for x, w in pairs) % qi,
                    sum(x[1] * w[1] for x, w in pairs) % qi]
                weights = [int(plain_ws[u, i, k]) for _, u in row]
                assert [int(plain[r, c, i, k]) for c in range(2)] == [
                    sum(int(xs[t, c, i, k]) * w for (t, _), w in zip(row, weights, strict=True)) % qi
                    for c in range(2)]
