"""Galois automorphisms a(X) -> a(X^g) against the definition computed with Python integers, in coefficient
form and through the NTT-domain permutation, and their action on the slots (direct canonical embedding)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckks.errors import ParameterError
from ckks.ring import rns
from ckks.ring.automorphism import (
    apply_coefficients,
    apply_ntt,
    conjugation_element,
    galois_element,
    ntt_permutation,
)
from ckks.ring.primes import ntt_primes


def basis_of(n: int, bits=(40, 61)) -> rns.RnsBasis:
    moduli = [ntt_primes(bits[0], n, 1)[0]] + [
        q for q in ntt_primes(bits[1], n, 2) if q != ntt_primes(bits[0], n, 1)[0]
    ]
    return rns.rns_basis(tuple(moduli[: len(bits)]), n)


@pytest.mark.parametrize("n", [16, 64, 1024])
def test_galois_element(n):
    slots = n // 2
    for step in [0, 1, 2, 3, slots - 1, slots, slots + 1, -1, -2, -slots + 1, 12345]:
        assert galois_element(step, n) == pow(5, step % slots, 2 * n)
    for step in range(1, slots):
        assert galois_element(step, n) * galois_element(-step, n) % (2 * n) == 1  # inverse rotations
    assert len({galois_element(k, n) for k in range(slots)}) == slots  # 5 has order N/2 mod 2N
    assert conjugation_element(n) == 2 * n - 1


def rows(a: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in r] for r in a]


@pytest.mark.parametrize("n", [16, 32])
def test_every_odd_element_matches_definition(n, ref):
    """All N odd g (rotations, conjugation, their products): coefficient and NTT forms = the definition."""
    basis = basis_of(n)
    rng = np.random.default_rng(n)
    coeffs = [int(v) for v in rng.integers(-(2**40), 2**40, size=n)]
    coeffs[-1] = 2**39 + 1  # the top coefficient wraps for most g
    a = ref.residues(coeffs, basis.moduli)
    a_ntt = rns.to_ntt(a, basis)
    for g in range(1, 2 * n, 2):
        expected = ref.residues(ref.automorphism(coeffs, g), basis.moduli)
        assert rows(apply_coefficients(a, g, basis.moduli)) == rows(expected), g
        permuted = apply_ntt(a_ntt, g, n)
        assert rows(rns.from_ntt(permuted, basis)) == rows(expected), g


@settings(max_examples=15, deadline=None)
@given(log_n=st.integers(4, 10), step=st.integers(-600, 600), seed=st.integers(0, 2**32), conj=st.booleans())
def test_rotation_elements_match_definition(log_n, step, seed, conj, ref):
    n = 1 << log_n
    g = conjugation_element(n) if conj else galois_element(step, n)
    basis = basis_of(n)
    rng = np.random.default_rng(seed)
    coeffs = [int(v) for v in rng.integers(-(2**62), 2**62, size=n)]
    a = ref.residues(coeffs, basis.moduli)
    expected = rows(ref.residues(ref.automorphism(coeffs, g), basis.moduli))
    assert rows(apply_coefficients(a, g, basis.moduli)) == expected
    permuted = np.ascontiguousarray(apply_ntt(rns.to_ntt(a, basis), g, n))
    assert rows(rns.from_ntt(permuted, basis)) == expected


def test_from_ntt_accepts_apply_ntt_output_directly():
    n = 32
    basis = basis_of(n)
    a = rns.to_ntt(np.stack([np.arange(n, dtype=np.uint64)] * 2), basis)
    rotated = apply_ntt(a, galois_element(1, n), n)
    back = rns.from_ntt(rotated, basis)
    expected = rns.from_ntt(np.ascontiguousarray(rotated), basis)
    np.testing.assert_array_equal(back, expected)


def test_ntt_permutation_is_a_cached_read_only_permutation():
    p = ntt_permutation(5, 64)
    assert sorted(p.tolist()) == list(range(64))
    assert ntt_permutation(5, 64) is p
    with pytest.raises(ValueError):
        p[0] = 1


@pytest.mark.parametrize("g", [0, 2, 64, 126])
def test_even_element_is_rejected(g):
    with pytest.raises(ParameterError, match="even"):
        ntt_permutation(g, 64)


def test_automorphisms_compose():
    """a(X^(g h)) = (a(X^g))(X^h): rotating by 1 three times equals rotating by 3."""
    n = 64
    basis = basis_of(n)
    a = rns.to_ntt(np.stack([np.arange(n, dtype=np.uint64) + 1] * 2), basis)
    g1, g3 = galois_element(1, n), galois_element(3, n)
    thrice = apply_ntt(apply_ntt(apply_ntt(a, g1, n), g1, n), g1, n)
    np.testing.assert_array_equal(thrice, apply_ntt(a, g3, n))
    c = conjugation_element(n)
    np.testing.assert_array_equal(apply_ntt(apply_ntt(a, c, n), c, n), a)


@pytest.mark.parametrize("n", [16, 64])
def test_action_on_slots_rotates_and_conjugates(n, ref):
    """With slots m(zeta^(5^j)) (direct embedding): g = 5^k moves slot j + k to slot j; g = -1 conjugates."""
    rng = np.random.default_rng(n)
    coeffs = [int(v) for v in rng.integers(-1000, 1000, size=n)]
    slots = ref.embedding(coeffs)
    for k in (1, 2, -1, n // 2 - 1):
        rotated = ref.embedding(ref.automorphism(coeffs, galois_element(k, n)))
        np.testing.assert_allclose(rotated, np.roll(slots, -k), atol=1e-7 * n * 1000)
    conj = ref.embedding(ref.automorphism(coeffs, conjugation_element(n)))
    np.testing.assert_allclose(conj, np.conj(slots), atol=1e-7 * n * 1000)


def test_apply_ntt_into_a_row_of_a_stack_and_refusals(ref):
    """out= receives a(X^g) (the definition, through the coefficients) in place of a new array; an out of
    another shape or dtype, or overlapping a, is refused."""
    n = 32
    basis = basis_of(n)
    coeffs = [int(v) for v in np.random.default_rng(9).integers(-(2**40), 2**40, size=n)]
    a_ntt = rns.to_ntt(ref.residues(coeffs, basis.moduli), basis)
    g = galois_element(3, n)
    stack = np.zeros((2,) + a_ntt.shape, dtype=np.uint64)
    assert np.shares_memory(apply_ntt(a_ntt, g, n, out=stack[1]), stack[1])  # the result is out itself
    expected = ref.residues(ref.automorphism(coeffs, g), basis.moduli)
    assert rows(rns.from_ntt(stack[1], basis)) == rows(expected)
    assert not stack[0].any()
    for out in (np.empty((1, n), dtype=np.uint64), np.empty(a_ntt.shape, dtype=np.int64), a_ntt):
        with pytest.raises(ValueError, match="out must be a separate C-contiguous uint64 array"):
            apply_ntt(a_ntt, g, n, out=out)
