"""Encoder against the direct O(N^2) canonical embedding at zeta^(5^j), zeta = exp(i pi / N).

encode: the plaintext's integer coefficients (Python-int CRT of its limbs) are the nearest integers to
        scale * sigma^-1(z), with sigma^-1 computed by the direct orthogonality formula;
decode: of a plaintext built from known integers, = the direct evaluation sum_k m_k zeta^(5^j k) / scale;
round trip (hypothesis): error <= N / (2 scale) per slot (each coefficient rounds by at most 1/2);
complex slots: a complex input decodes to complex128 (issue 14: the imaginary parts were dropped), a real one
to float64, whatever the values (the dtype decides).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ckks
from ckks.ring import rns


def params_for(n: int, **kw) -> ckks.Parameters:
    args = dict(moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40, security=None)
    args.update(kw)
    return ckks.Parameters(ring_degree=n, **args)


def random_slots(
    rng: np.random.Generator, count: int, bound: float = 1.0, complex_values: bool = True
) -> np.ndarray:
    z = rng.uniform(-bound, bound, count)
    if complex_values:
        z = z + 1j * rng.uniform(-bound, bound, count)
    return z


@pytest.mark.parametrize("n", [16, 64, 256, 1024])
def test_encode_rounds_the_direct_inverse_embedding(n, ref):
    p = params_for(n)
    rng = np.random.default_rng(n)
    z = random_slots(rng, n // 2, 3.0)
    pt = ckks.Encoder(p).encode(z)
    assert pt.level == p.max_level and pt.scale == p.scale and pt.data.shape == (3, n)
    coeffs = np.array(ref.plaintext_coefficients(pt, p), dtype=np.float64)
    exact = p.scale * ref.embedding_inverse(z, n)
    # the nearest integer (float noise of the FFT ~ 1e-16 * scale * |z| * log N is far below 1e-3)
    assert np.max(np.abs(coeffs - exact)) <= 0.5 + 1e-3
    np.testing.assert_allclose(ref.embedding(coeffs) / p.scale, z, atol=n / p.scale)


@pytest.mark.parametrize("n", [16, 128, 1024])
def test_decode_is_the_direct_embedding(n, ref):
    """A plaintext built from known integer coefficients decodes to sum_k m_k zeta^(5^j k) / scale."""
    p = params_for(n)
    rng = np.random.default_rng(n + 1)
    m = [int(v) for v in rng.integers(-(2**45), 2**45, size=n)]
    basis = rns.rns_basis(p.moduli, n)
    pt = ckks.Plaintext(rns.to_ntt(ref.residues(m, p.moduli), basis), p.max_level, 2.0**37, p.fingerprint)
    expected = ref.embedding(m) / 2.0**37
    got = ckks.Encoder(p).decode(pt, complex_values=True)
    assert got.shape == (n // 2,) and got.dtype == np.complex128
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    real = ckks.Encoder(p).decode(pt)
    assert real.dtype == np.float64
    np.testing.assert_array_equal(real, got.real)


def test_decode_uses_the_centered_lift(ref):
    """Coefficients within a few units of -Q/2 and Q/2 (big, multi-limb) decode with their sign."""
    p = params_for(16)
    q_all = rns.rns_basis(p.moduli, 16).product
    m = [q_all // 2 - 12345, -(q_all // 2) + 999, q_all // 2, -(q_all // 2)] + [0] * 12
    basis = rns.rns_basis(p.moduli, 16)
    pt = ckks.Plaintext(rns.to_ntt(ref.residues(m, p.moduli), basis), p.max_level, 2.0**40, p.fingerprint)
    got = ckks.Encoder(p).decode(pt, complex_values=True)
    expected = ref.embedding(m) / 2.0**40
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_encode_at_every_level_and_custom_scale(level, ref):
    p = params_for(64)
    z = random_slots(np.random.default_rng(level), 32)
    enc = ckks.Encoder(p)
    pt = enc.encode(z, level=level, scale=2.0**33.5)
    assert pt.level == level and pt.data.shape == (level + 1, 64) and pt.scale == 2.0**33.5
    np.testing.assert_allclose(enc.decode(pt, complex_values=True), z, atol=64 / 2.0**33.5)
    coeffs = np.array(ref.plaintext_coefficients(pt, p), dtype=np.float64)
    assert np.max(np.abs(coeffs - 2.0**33.5 * ref.embedding_inverse(z, 64))) <= 0.5 + 1e-4


def test_fewer_values_pad_with_zero_slots():
    p = params_for(64)
    enc = ckks.Encoder(p)
    out = enc.decode(enc.encode([1.5, -2.25, 0.125]))
    assert out.shape == (32,)
    np.testing.assert_allclose(out[:3], [1.5, -2.25, 0.125], atol=1e-9)
    np.testing.assert_allclose(out[3:], 0, atol=1e-9)
    scalar = enc.decode(enc.encode(0.75))
    np.testing.assert_allclose(scalar[0], 0.75, atol=1e-9)
    np.testing.assert_allclose(enc.decode(enc.encode([True, False]))[:2], [1.0, 0.0], atol=1e-9)


def test_real_values_make_the_constant_polynomial(ref):
    """The all-equal real vector c encodes to the constant polynomial round(c * scale)."""
    p = params_for(32)
    pt = ckks.Encoder(p).encode(np.full(16, 0.3))
    coeffs = ref.plaintext_coefficients(pt, p)
    assert coeffs[0] == round(0.3 * p.scale) and all(c == 0 for c in coeffs[1:])


def test_large_scale_beyond_int64_coefficients(ref):
    """Scale 2^60 and values ~ 2^4 give coefficients past 2^63: converted exactly, decoded to ~2^-50."""
    p = params_for(64, moduli_bits=(61, 61, 61), special_moduli_bits=(61,), scale_bits=60)
    rng = np.random.default_rng(3)
    z = random_slots(rng, 32, 200.0)
    enc = ckks.Encoder(p)
    pt = enc.encode(z)
    coeffs = np.array([float(c) for c in ref.plaintext_coefficients(pt, p)])
    assert np.max(np.abs(coeffs)) > 2.0**63
    exact = p.scale * ref.embedding_inverse(z, 64)
    # float64 coefficients carry 53 bits: compare relative to their size
    assert np.max(np.abs(coeffs - exact)) <= 2.0**-50 * np.max(np.abs(exact)) * 8
    np.testing.assert_allclose(enc.decode(pt, complex_values=True), z, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    log_n=st.integers(4, 10),
    log_scale=st.integers(20, 45),
    bound=st.sampled_from([1e-3, 1.0, 100.0]),
    complex_values=st.booleans(),
    seed=st.integers(0, 2**32),
    count_frac=st.floats(0.0, 1.0),
)
def test_encode_decode_round_trip(log_n, log_scale, bound, complex_values, seed, count_frac):
    """|decode(encode(z)) - z| <= N / (2 scale): each of the N coefficients is rounded by at most 1/2 and
    |zeta^k| = 1 (plus float64 noise ~ 2^-45 |z|)."""
    n = 1 << log_n
    p = params_for(n, moduli_bits=(60, 50, 50), special_moduli_bits=(60,), scale_bits=45)
    count = max(1, int(count_frac * n / 2))
    z = random_slots(np.random.default_rng(seed), count, bound, complex_values)
    enc = ckks.Encoder(p)
    scale = 2.0**log_scale
    out = enc.decode(enc.encode(z, scale=scale))  # complex slots decode to complex without asking
    assert out.dtype == (np.complex128 if complex_values else np.float64)
    padded = np.zeros(n // 2, dtype=np.complex128)
    padded[:count] = z
    err = np.abs(out - padded).max()
    assert err <= n / (2 * scale) + 2.0**-40 * bound


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, 32, elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)))
def test_round_trip_arbitrary_reals(values):
    p = params_for(64)
    enc = ckks.Encoder(p)
    out = enc.decode(enc.encode(values))
    assert np.abs(out - values).max() <= 64 / (2 * p.scale) + 2.0**-40 * max(1.0, np.abs(values).max())


def test_encoding_is_linear_up_to_rounding(ref):
    """encode(a) + encode(b) and encode(a + b) differ by at most 1 per coefficient."""
    p = params_for(128)
    rng = np.random.default_rng(8)
    a, b = random_slots(rng, 64), random_slots(rng, 64)
    enc = ckks.Encoder(p)
    ca, cb, cab = (ref.plaintext_coefficients(enc.encode(v), p) for v in (a, b, a + b))
    assert max(abs(x + y - z) for x, y, z in zip(ca, cb, cab, strict=True)) <= 1


def test_the_issue_example_keeps_its_imaginary_parts():
    """Issue 14, on the public API: [1 + 2j] * 32 decoded to [1. 1. 1. ...], float64."""
    p = ckks.Parameters(ring_degree=64, moduli_bits=(40, 30, 30), special_moduli_bits=(40,), scale_bits=30,
                        security=None)
    e = ckks.Encoder(p)
    out = e.decode(e.encode(np.array([1 + 2j] * 32)))
    assert out.dtype == np.complex128
    assert np.abs(out - (1 + 2j)).max() <= 64 / (2 * p.scale)


@pytest.mark.parametrize("values,is_complex", [
    (np.linspace(-1, 1, 8), False),
    ([1, 2, 3], False),
    ([True, False], False),
    (np.float32(0.5), False),
    ([1.5 + 0j, 2.0], True),  # a complex dtype with zero imaginary parts is still complex: the dtype decides
    (0.5j, True),
    ([1, 2j], True),
    (np.array([1 - 1j], dtype=np.complex64), True),
])
def test_the_dtype_decides_real_or_complex(values, is_complex, ref):
    p = params_for(64)
    enc = ckks.Encoder(p)
    pt = enc.encode(values)
    assert pt.complex_slots == is_complex
    out = enc.decode(pt)
    assert out.dtype == (np.complex128 if is_complex else np.float64)
    direct = ref.embedding(ref.plaintext_coefficients(pt, p)) / pt.scale  # the independent O(N^2) sum
    np.testing.assert_allclose(out, direct if is_complex else direct.real, rtol=0, atol=1e-9)
    forced = enc.decode(pt, complex_values=True)
    assert forced.dtype == np.complex128
    np.testing.assert_array_equal(forced.real, out.real)


@pytest.mark.parametrize("n", [16, 64, 256])
def test_the_fft_references_are_the_direct_sums(n, ref):
    """ref.embedding_fft / embedding_inverse_fft (used where N^2 is too many) agree with the O(N^2) sums."""
    rng = np.random.default_rng(n + 7)
    m = [int(v) for v in rng.integers(-(2**40), 2**40, size=n)]
    direct = ref.embedding(m)
    assert np.abs(ref.embedding_fft(m) - direct).max() <= 2.0**-40 * np.abs(direct).max()
    z = random_slots(rng, n // 2)
    np.testing.assert_allclose(ref.embedding_inverse_fft(z, n), ref.embedding_inverse(z, n), rtol=0,
                               atol=1e-12)
