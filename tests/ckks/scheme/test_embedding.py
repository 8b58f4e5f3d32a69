"""The canonical embedding against a direct O(N^2) evaluation of the polynomial at the roots of unity.

Every reference here is computed independently of ``ckks.scheme.embedding``: the slot exponents 5^j mod 2N with
Python's ``pow``, the powers of the roots by reducing the integer exponent (5^j * k) mod 2N exactly before
taking exp, and the automorphisms X -> X^5, X -> X^-1 by permuting coefficients mod X^N + 1 in the test.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ckks.errors import ParameterError, ValueRangeError
from ckks.scheme.embedding import embed, embed_inverse, slot_roots


def reference_exponents(ring_degree: int) -> np.ndarray:
    """5^j mod 2N for j < N/2, one Python pow per slot."""
    return np.array([pow(5, j, 2 * ring_degree) for j in range(ring_degree // 2)], dtype=np.int64)


def vandermonde(exponents: np.ndarray, ring_degree: int) -> np.ndarray:
    """V[j, k] = zeta^(e_j * k), zeta = exp(i pi / N), with the exponent reduced mod 2N in integers."""
    powers = np.outer(exponents, np.arange(ring_degree, dtype=np.int64)) % (2 * ring_degree)
    return np.exp(1j * np.pi * powers / ring_degree)


def direct_embedding(coeffs: np.ndarray) -> np.ndarray:
    """m(zeta^(5^j)) for j < N/2 by the O(N^2) sum."""
    ring_degree = coeffs.size
    return vandermonde(reference_exponents(ring_degree), ring_degree) @ coeffs


def direct_conjugate_embedding(coeffs: np.ndarray) -> np.ndarray:
    """m(zeta^(-5^j)) for j < N/2: the other half of the roots of X^N + 1."""
    ring_degree = coeffs.size
    return vandermonde(2 * ring_degree - reference_exponents(ring_degree), ring_degree) @ coeffs


def apply_automorphism(coeffs: np.ndarray, power: int) -> np.ndarray:
    """m(X^power) mod X^N + 1 (power odd): X^k -> X^(power*k mod 2N), and X^(N + r) = -X^r."""
    ring_degree = coeffs.size
    out = np.zeros_like(coeffs)
    for k, c in enumerate(coeffs):
        target = (power * k) % (2 * ring_degree)
        if target < ring_degree:
            out[target] += c
        else:
            out[target - ring_degree] -= c
    return out


def random_slots(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.standard_normal(count) + 1j * rng.standard_normal(count)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


RING_DEGREES = [8, 16, 64, 1024]


# --- slot roots ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ring_degree", [4, *RING_DEGREES])
def test_slot_roots_are_zeta_to_powers_of_five(ring_degree: int) -> None:
    exponents = reference_exponents(ring_degree)
    want = np.exp(1j * np.pi * exponents / ring_degree)
    got = slot_roots(ring_degree)
    assert got.dtype == np.complex128 and got.shape == (ring_degree // 2,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    # Together with their conjugates they are all N roots of X^N + 1 (the odd exponents mod 2N).
    odd = np.concatenate([exponents, 2 * ring_degree - exponents])
    assert sorted(odd.tolist()) == list(range(1, 2 * ring_degree, 2))
    np.testing.assert_allclose(got**ring_degree, -1.0, atol=1e-11)


def test_slot_roots_are_cached_and_read_only() -> None:
    roots = slot_roots(64)
    assert slot_roots(64) is roots
    with pytest.raises(ValueError):
        roots[0] = 0


# --- embed (decode direction) ----------------------------------------------------------------------------


@pytest.mark.parametrize("ring_degree", RING_DEGREES)
def test_embed_matches_direct_evaluation(ring_degree: int) -> None:
    rng = np.random.default_rng(ring_degree)
    for scale in (1.0, 2.0**40):
        coeffs = scale * rng.standard_normal(ring_degree)
        got = embed(coeffs)
        assert got.dtype == np.complex128 and got.shape == (ring_degree // 2,)
        assert relative_error(got, direct_embedding(coeffs)) < 1e-12 * ring_degree


def test_embed_of_monomials() -> None:
    ring_degree = 16
    exponents = reference_exponents(ring_degree)
    for k in range(ring_degree):
        coeffs = np.zeros(ring_degree)
        coeffs[k] = 1.0
        want = np.exp(1j * np.pi * ((exponents * k) % (2 * ring_degree)) / ring_degree)
        np.testing.assert_allclose(embed(coeffs), want, rtol=0, atol=1e-14)


def test_embed_accepts_lists_ints_and_real_complex() -> None:
    coeffs = [1, -2, 3, 0, 5, 0, 0, 7]
    want = direct_embedding(np.array(coeffs, dtype=np.float64))
    np.testing.assert_allclose(embed(coeffs), want, atol=1e-12)
    np.testing.assert_allclose(embed(np.array(coeffs, dtype=np.complex128)), want, atol=1e-12)


def test_embed_does_not_modify_its_input() -> None:
    coeffs = np.random.default_rng(0).standard_normal(64)
    before = coeffs.copy()
    embed(coeffs)
    np.testing.assert_array_equal(coeffs, before)


# --- embed_inverse (encode direction) --------------------------------------------------------------------


@pytest.mark.parametrize("ring_degree", [4, *RING_DEGREES])
def test_embed_inverse_is_a_real_polynomial_taking_the_slot_values(ring_degree: int) -> None:
    z = random_slots(np.random.default_rng(ring_degree + 1), ring_degree // 2)
    m = embed_inverse(z, ring_degree=ring_degree)
    assert m.dtype == np.float64 and m.shape == (ring_degree,)
    tolerance = 1e-12 * ring_degree * np.max(np.abs(z))
    np.testing.assert_allclose(direct_embedding(m), z, rtol=0, atol=tolerance)
    # The other half of the roots carries the conjugates (the full vector is (z, conj z)).
    np.testing.assert_allclose(direct_conjugate_embedding(m), np.conj(z), rtol=0, atol=tolerance)


def test_embed_inverse_of_real_constant_is_a_constant_polynomial() -> None:
    m = embed_inverse(np.full(32, 3.5), ring_degree=64)
    want = np.zeros(64)
    want[0] = 3.5
    np.testing.assert_allclose(m, want, atol=1e-14)


def test_embed_inverse_does_not_modify_its_input() -> None:
    z = random_slots(np.random.default_rng(5), 32)
    before = z.copy()
    embed_inverse(z, ring_degree=64)
    np.testing.assert_array_equal(z, before)


@pytest.mark.parametrize("ring_degree", [8, 64, 1024])
def test_sparse_packing_replicates_the_values(ring_degree: int) -> None:
    rng = np.random.default_rng(7)
    n = 1
    while n < ring_degree // 2:
        z = random_slots(rng, n)
        m = embed_inverse(z, ring_degree=ring_degree)
        gap = ring_degree // (2 * n)
        assert m.dtype == np.float64 and m.shape == (ring_degree,)
        assert np.all(m[np.arange(ring_degree) % gap != 0] == 0)  # a polynomial in X^gap
        full = direct_embedding(m)
        tolerance = 1e-12 * ring_degree * np.max(np.abs(z))
        np.testing.assert_allclose(full, np.tile(z, gap), rtol=0, atol=tolerance)
        np.testing.assert_allclose(embed(m)[:n], z, rtol=0, atol=tolerance)
        np.testing.assert_allclose(embed(m, slots=n), z, rtol=0, atol=tolerance)
        n *= 2


@pytest.mark.parametrize("ring_degree", [8, 64, 1024])
def test_sparse_embed_averages_the_replicas_of_any_polynomial(ring_degree: int) -> None:
    coeffs = np.random.default_rng(11).standard_normal(ring_degree)
    full = direct_embedding(coeffs)
    for n in (1, 2, 4, ring_degree // 2):
        want = full.reshape(-1, n).mean(axis=0)
        np.testing.assert_allclose(embed(coeffs, slots=n), want, rtol=0, atol=1e-12 * ring_degree)


# --- round trips (hypothesis) ----------------------------------------------------------------------------

finite_complex = st.complex_numbers(max_magnitude=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def ring_and_slots(draw: st.DrawFn) -> tuple[int, np.ndarray]:
    log_ring = draw(st.integers(min_value=2, max_value=10))
    ring_degree = 1 << log_ring
    log_slots = draw(st.integers(min_value=0, max_value=log_ring - 1))
    z = draw(hnp.arrays(np.complex128, 1 << log_slots, elements=finite_complex))
    return ring_degree, z


@settings(max_examples=150, deadline=None)
@given(ring_and_slots())
def test_round_trip_slots_to_polynomial_to_slots(case: tuple[int, np.ndarray]) -> None:
    ring_degree, z = case
    m = embed_inverse(z, ring_degree=ring_degree)
    tolerance = 1e-13 * ring_degree * float(np.max(np.abs(z))) + 1e-300
    np.testing.assert_allclose(embed(m, slots=z.size), z, rtol=0, atol=tolerance)
    np.testing.assert_allclose(embed(m)[: z.size], z, rtol=0, atol=tolerance)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=2, max_value=10).flatmap(
        lambda log_ring: hnp.arrays(
            np.float64, 1 << log_ring, elements=st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
        )
    )
)
def test_round_trip_polynomial_to_slots_to_polynomial(coeffs: np.ndarray) -> None:
    back = embed_inverse(embed(coeffs), ring_degree=coeffs.size)
    tolerance = 1e-13 * coeffs.size * float(np.max(np.abs(coeffs))) + 1e-300
    np.testing.assert_allclose(back, coeffs, rtol=0, atol=tolerance)


# --- Galois automorphisms act on the slots ---------------------------------------------------------------


@pytest.mark.parametrize("ring_degree", [4, *RING_DEGREES])
def test_x_to_the_5_rotates_slots_left_by_one(ring_degree: int) -> None:
    coeffs = np.random.default_rng(3).standard_normal(ring_degree)
    slots = embed(coeffs)
    rotated = apply_automorphism(coeffs, 5)
    tolerance = 1e-12 * ring_degree * np.max(np.abs(slots))
    np.testing.assert_allclose(embed(rotated), np.roll(slots, -1), rtol=0, atol=tolerance)
    # 5^k rotates by k
    power = pow(5, 3, 2 * ring_degree)
    np.testing.assert_allclose(
        embed(apply_automorphism(coeffs, power)), np.roll(slots, -3), rtol=0, atol=tolerance
    )


@pytest.mark.parametrize("ring_degree", [4, *RING_DEGREES])
def test_x_to_the_minus_one_conjugates_slots(ring_degree: int) -> None:
    coeffs = np.random.default_rng(4).standard_normal(ring_degree)
    slots = embed(coeffs)
    conjugated = apply_automorphism(coeffs, 2 * ring_degree - 1)
    tolerance = 1e-12 * ring_degree * np.max(np.abs(slots))
    np.testing.assert_allclose(embed(conjugated), np.conj(slots), rtol=0, atol=tolerance)


def test_rotation_of_a_sparse_encoding_rotates_the_packed_values() -> None:
    ring_degree, n = 64, 8
    z = random_slots(np.random.default_rng(9), n)
    m = embed_inverse(z, ring_degree=ring_degree)
    np.testing.assert_allclose(embed(apply_automorphism(m, 5), slots=n), np.roll(z, -1), atol=1e-12)


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ring_degree", [0, 1, 2, 3, 12, 1 << 18, -8, True, 8.0, "8", None])
def test_bad_ring_degree_is_a_parameter_error(ring_degree: object) -> None:
    with pytest.raises(ParameterError):
        slot_roots(ring_degree)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        embed_inverse(np.ones(2), ring_degree=ring_degree)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 2, 3, 12, 1 << 18])
def test_embed_of_bad_length_is_a_parameter_error(length: int) -> None:
    with pytest.raises(ParameterError):
        embed(np.zeros(length))


@pytest.mark.parametrize("count", [0, 3, 6, 64])
def test_bad_slot_count_is_a_parameter_error(count: int) -> None:
    with pytest.raises(ParameterError):
        embed_inverse(np.ones(count), ring_degree=64)
    with pytest.raises(ParameterError):
        embed(np.ones(64), slots=count)


def test_wrong_shape_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError):
        embed(np.zeros((2, 8)))
    with pytest.raises(ParameterError):
        embed_inverse(np.zeros((2, 4)), ring_degree=16)
    with pytest.raises(ParameterError):
        embed_inverse(1.0, ring_degree=16)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_a_value_range_error(bad: float) -> None:
    coeffs = np.ones(16)
    coeffs[5] = bad
    with pytest.raises(ValueRangeError, match="entry 5"):
        embed(coeffs)
    z = np.ones(8, dtype=np.complex128)
    z[3] = complex(0.0, bad)
    with pytest.raises(ValueRangeError, match="entry 3"):
        embed_inverse(z, ring_degree=16)


def test_complex_coefficients_are_a_value_range_error() -> None:
    coeffs = np.zeros(8, dtype=np.complex128)
    coeffs[1] = 1j
    with pytest.raises(ValueRangeError):
        embed(coeffs)
    with pytest.raises(ValueRangeError):
        embed(np.array(["a"] * 8))


def test_errors_are_value_errors() -> None:
    assert issubclass(ParameterError, ValueError) and issubclass(ValueRangeError, ValueError)


# --- speed (printed, not asserted) -----------------------------------------------------------------------


@pytest.mark.parametrize("log_ring", [14, 16])
def test_speed_is_printed(log_ring: int, capsys: pytest.CaptureFixture[str]) -> None:
    ring_degree = 1 << log_ring
    rng = np.random.default_rng(0)
    coeffs = rng.standard_normal(ring_degree)
    z = random_slots(rng, ring_degree // 2)
    embed(coeffs), embed_inverse(z, ring_degree=ring_degree)  # build the cached tables

    def best_ms(run) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(5):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return 1e3 * min(times)

    forward = best_ms(lambda: embed(coeffs))
    inverse = best_ms(lambda: embed_inverse(z, ring_degree=ring_degree))
    with capsys.disabled():
        print(f"\nN = 2^{log_ring}: embed {forward:.2f} ms, embed_inverse {inverse:.2f} ms (best of 5)")
    # a sanity check of the output at this size, on a few slots against the direct sum
    m = embed_inverse(z, ring_degree=ring_degree)
    picks = np.array([0, 1, ring_degree // 4, ring_degree // 2 - 1])
    exponents = np.array([pow(5, int(j), 2 * ring_degree) for j in picks], dtype=np.int64)
    direct = vandermonde(exponents, ring_degree) @ m
    np.testing.assert_allclose(direct, z[picks], rtol=0, atol=1e-9)
