"""Evaluator at toy size (N = 64, 32 slots): exact ring identities on decryptions, homomorphism properties on
random vectors (hypothesis), level and scale bookkeeping, and inputs never modified.

Exact identities compare decryptions computed independently (shift-and-add with the ternary secret, Python-int
CRT): add/sub/negate/multiply_plain/multiply_integer/multiply_scalar/add_scalar/drop_level act on the
decryption exactly, and the tensor product decrypts (with s^2) to the schoolbook product of the decryptions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ckks

SLOTS = 32
# Toy noise at N = 64 is ~2^-33 of a unit value; 2^-20 leaves room and still fails any wrong answer.
TOL = 2.0**-20


def vec(seed: int, bound: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return bound * (rng.uniform(-1, 1, SLOTS) + 1j * rng.uniform(-1, 1, SLOTS))


def enc(toy, z, level=None, secret=False) -> ckks.Ciphertext:
    encryptor = toy.sk_encryptor if secret else toy.encryptor
    return encryptor.encrypt(toy.encoder.encode(z, level=level))


def dec(toy, ct) -> np.ndarray:
    """Decrypt and decode: complex128 for a ciphertext of complex slots, float64 for a real one."""
    return toy.encoder.decode(toy.decryptor.decrypt(ct))


def exact(toy, ref, ct) -> list[int]:
    return ref.decrypt_exact(ct, toy.sk.coefficients.astype(np.int64), toy.params)


def q_of(toy, level: int) -> int:
    return math.prod(toy.params.moduli[: level + 1])


def centered(ref, values, q) -> list[int]:
    return [ref.center(v, q) for v in values]


# ------------------------------------------------------------------------------------------------------------
# Exact identities
# ------------------------------------------------------------------------------------------------------------


def test_additive_operations_are_exact_on_decryptions(toy, ref):
    ev = toy.evaluator
    a, b = enc(toy, vec(1)), enc(toy, vec(2))
    q = q_of(toy, a.level)
    da, db = exact(toy, ref, a), exact(toy, ref, b)
    assert exact(toy, ref, ev.add(a, b)) == centered(ref, [x + y for x, y in zip(da, db, strict=True)], q)
    assert exact(toy, ref, ev.sub(a, b)) == centered(ref, [x - y for x, y in zip(da, db, strict=True)], q)
    assert exact(toy, ref, ev.negate(a)) == centered(ref, [-x for x in da], q)
    pt = toy.encoder.encode(vec(3))
    m = ref.plaintext_coefficients(pt, toy.params)
    assert exact(toy, ref, ev.add(a, pt)) == centered(ref, [x + y for x, y in zip(da, m, strict=True)], q)
    assert exact(toy, ref, ev.sub(a, pt)) == centered(ref, [x - y for x, y in zip(da, m, strict=True)], q)
    c = round(0.3 * a.scale)
    assert exact(toy, ref, ev.add_scalar(a, 0.3)) == centered(ref, [da[0] + c] + da[1:], q)


def test_multiplicative_operations_are_exact_on_decryptions(toy, ref):
    ev = toy.evaluator
    a, b = enc(toy, vec(4)), enc(toy, vec(5))
    q = q_of(toy, a.level)
    da, db = exact(toy, ref, a), exact(toy, ref, b)
    prod = ev.multiply(a, b)
    assert prod.size == 3 and prod.scale == a.scale * b.scale and prod.level == a.level
    # decrypt_exact of a size-3 ciphertext includes d_2 s^2
    assert exact(toy, ref, prod) == centered(ref, ref.negacyclic_mul(da, db), q)
    np.testing.assert_array_equal(ev.square(a).data, ev.multiply(a, a).data)
    pt = toy.encoder.encode(vec(6), scale=2.0**20)
    m = ref.plaintext_coefficients(pt, toy.params)
    mp = ev.multiply_plain(a, pt)
    assert mp.scale == a.scale * 2.0**20
    assert exact(toy, ref, mp) == centered(ref, ref.negacyclic_mul(da, m), q)
    mi = ev.multiply_integer(a, -7)
    assert mi.scale == a.scale
    assert exact(toy, ref, mi) == centered(ref, [-7 * x for x in da], q)
    ms = ev.multiply_scalar(a, 0.625, scale=2.0**12)
    assert ms.scale == a.scale * 2.0**12
    assert exact(toy, ref, ms) == centered(ref, [round(0.625 * 2.0**12) * x for x in da], q)


def test_drop_level_keeps_the_decryption(toy, ref):
    a = enc(toy, vec(7))
    da = exact(toy, ref, a)
    for level in (1, 0):
        low = toy.evaluator.drop_level(a, level)
        assert low.level == level and low.scale == a.scale and low.data.shape == (2, level + 1, 64)
        assert exact(toy, ref, low) == centered(ref, da, q_of(toy, level))
    np.testing.assert_allclose(dec(toy, toy.evaluator.drop_level(a, 0)), vec(7), atol=TOL)


def test_dot_equals_sum_of_products_exactly(toy):
    ev = toy.evaluator
    cts = [enc(toy, vec(10 + i)) for i in range(3)]
    pts = [toy.encoder.encode(vec(20 + i)) for i in range(3)]
    plain = ev.dot(cts, [ev.prepare(p) for p in pts])
    expected = ev.add(
        ev.add(ev.multiply_plain(cts[0], pts[0]), ev.multiply_plain(cts[1], pts[1])),
        ev.multiply_plain(cts[2], pts[2]),
    )
    np.testing.assert_array_equal(plain.data, expected.data)
    assert plain.scale == expected.scale and plain.level == expected.level
    others = [enc(toy, vec(30 + i)) for i in range(3)]
    cipher = ev.dot(cts, [ev.prepare(c) for c in others])
    expected3 = ev.add(
        ev.add(ev.multiply(cts[0], others[0]), ev.multiply(cts[1], others[1])), ev.multiply(cts[2], others[2])
    )
    assert cipher.size == 3
    np.testing.assert_array_equal(cipher.data, expected3.data)
    out = dec(toy, ev.rescale(ev.relinearize(cipher)))
    np.testing.assert_allclose(out, sum(vec(10 + i) * vec(30 + i) for i in range(3)), atol=TOL)


def test_dot_many_equals_each_output_summed_term_by_term(toy):
    """Several outputs sharing inputs and grouped weights (prepare_many), and weights prepared one by one."""
    ev = toy.evaluator
    cts = [enc(toy, vec(40 + i)) for i in range(3)]
    for make in (lambda i: toy.encoder.encode(vec(50 + i)), lambda i: enc(toy, vec(50 + i))):
        weights = [make(i) for i in range(4)]
        grouped, alone = ev.prepare_many(weights), [ev.prepare(w) for w in weights]
        terms = [[(0, 0), (2, 3)], [(1, 1)], [(2, 2), (0, 1), (1, 0)]]
        product = ev.multiply_plain if isinstance(weights[0], ckks.Plaintext) else ev.multiply
        for prepared in (grouped, alone, grouped[:2] + alone[2:]):
            outs = ev.dot_many(cts, [[(i, prepared[w]) for i, w in row] for row in terms])
            for out, row in zip(outs, terms, strict=True):
                expected = product(cts[row[0][0]], weights[row[0][1]])
                for i, w in row[1:]:
                    expected = ev.add(expected, product(cts[i], weights[w]))
                np.testing.assert_array_equal(out.data, expected.data)
                assert out.scale == expected.scale and out.level == expected.level


def test_dot_many_with_biases_equals_the_sums_plus_their_biases(toy):
    """A bias starts its output's sums: bit for bit add(dot_many(...), bias), for plaintext and ciphertext
    weights and biases, prepared in one group (read in place) or not, and None (no bias) for an output; the
    decryptions are the products' sums plus the biases (numpy, independent of the kernels)."""
    ev = toy.evaluator
    cts = [enc(toy, vec(60 + i)) for i in range(2)]
    terms = [[(0, 0), (1, 1)], [(1, 0)], [(0, 1)]]
    for encrypted_weights in (False, True):
        weights = [toy.encoder.encode(vec(70 + i)) for i in range(2)]
        weights = ev.prepare_many([toy.encryptor.encrypt(w) for w in weights] if encrypted_weights
                                  else weights)
        unbiased = ev.dot_many(cts, [[(i, weights[w]) for i, w in row] for row in terms])
        for encrypted_biases in (False, True):
            raw = [toy.encoder.encode(vec(80 + r), scale=unbiased[0].scale) for r in range(3)]
            raw = [toy.encryptor.encrypt(b) for b in raw] if encrypted_biases else raw
            for stacked in (raw, ev.prepare_many(raw, companions=False)):
                outs = ev.dot_many(cts, [[(i, weights[w]) for i, w in row] for row in terms],
                                   [stacked[0], None, stacked[2]])
                for r, (out, plain) in enumerate(zip(outs, unbiased, strict=True)):
                    expected = plain if r == 1 else ev.add(plain, raw[r])
                    np.testing.assert_array_equal(out.data, expected.data)
                    assert out.scale == expected.scale and out.level == expected.level
                    values = sum(vec(60 + i) * vec(70 + w) for i, w in terms[r])
                    values = values if r == 1 else values + vec(80 + r)
                    two = ev.relinearize(out) if out.size == 3 else out
                    np.testing.assert_allclose(dec(toy, ev.rescale(two)), values, atol=TOL)
    # Real inputs and weights, a complex bias: the sum holds complex slots, as add(dot, bias) would say.
    real = [toy.encryptor.encrypt(toy.encoder.encode(vec(90).real))]
    [weight] = ev.prepare_many([toy.encoder.encode(vec(91).real)])
    [real_sum] = ev.dot_many(real, [[(0, weight)]])
    complex_bias = toy.encoder.encode(vec(92), scale=real_sum.scale)
    [out] = ev.dot_many(real, [[(0, weight)]], [complex_bias])
    assert not real_sum.complex_slots and out.complex_slots == ev.add(real_sum, complex_bias).complex_slots
    np.testing.assert_allclose(dec(toy, ev.rescale(out)), vec(90).real * vec(91).real + vec(92), atol=TOL)


# ------------------------------------------------------------------------------------------------------------
# Bookkeeping
# ------------------------------------------------------------------------------------------------------------


def test_rescale_tracks_the_exact_scale_and_level(toy):
    ev = toy.evaluator
    p = toy.params
    a = enc(toy, vec(8))
    r = ev.rescale(ev.relinearize(ev.multiply(a, a)))
    assert r.level == p.max_level - 1
    assert r.scale == p.scale * p.scale / p.moduli[p.max_level]  # Delta^2 / q_l, not snapped to 2^40
    assert r.scale != p.scale
    r2 = ev.rescale(ev.relinearize(ev.multiply(r, r)))
    assert r2.level == 0 and r2.scale == r.scale * r.scale / p.moduli[1]
    np.testing.assert_allclose(dec(toy, r2), vec(8) ** 4, atol=TOL)
    ms = ev.rescale(ev.multiply_scalar(a, 1.5))
    assert ms.scale == a.scale  # default scalar scale = q_l


def test_relinearize_and_rescale_is_the_two_steps_within_a_few_units(toy, ref):
    """One division by P * q_l instead of two: same level and scale as rescale(relinearize(.)), and the exact
    decryptions (Python ints) differ by at most the rounding of both, 3 units per component, times 1 + |s|_1."""
    ev = toy.evaluator
    x, y = vec(16), vec(17)
    product = ev.multiply(enc(toy, x), enc(toy, y))
    fused, separate = ev.relinearize_and_rescale(product), ev.rescale(ev.relinearize(product))
    assert (fused.level, fused.scale, fused.size) == (separate.level, separate.scale, 2)
    secret = toy.sk.coefficients.astype(np.int64)
    bound = 3 * (1 + int(np.abs(secret).sum()))
    difference = [a - b for a, b in zip(exact(toy, ref, fused), exact(toy, ref, separate), strict=True)]
    assert max(abs(d) for d in difference) <= bound
    np.testing.assert_allclose(dec(toy, fused), x * y, atol=TOL)
    assert ev.relinearize_and_rescale(ev.square(fused)).level == fused.level - 1


def test_relinearize_and_rescale_refuses_what_it_cannot_divide(toy):
    ev = toy.evaluator
    a = enc(toy, vec(18))
    with pytest.raises(ckks.ParameterError, match="relinearize_and_rescale: the operand has size 2"):
        ev.relinearize_and_rescale(a)
    bottom = toy.encryptor.encrypt(toy.encoder.encode(vec(18), level=0, scale=2.0**10))  # room for a product
    with pytest.raises(ckks.OutOfLevelsError, match="relinearize_and_rescale: the ciphertext is at level 0"):
        ev.relinearize_and_rescale(ev.multiply(bottom, bottom))
    with pytest.raises(ckks.MissingKeyError, match="relin_key"):
        ckks.Evaluator(toy.params).relinearize_and_rescale(ev.multiply(a, a))


def test_many_operations_equal_the_operations_one_by_one(toy):
    """rescale_many, relinearize_many, relinearize_and_rescale_many and rotate_many work on stacked rows of
    every operand: each result is bit for bit what the single operation gives on that operand alone."""
    ev = toy.evaluator
    cts = [enc(toy, vec(30 + i)) for i in range(3)]
    products = [ev.multiply(a, b) for a, b in zip(cts, cts[1:] + cts[:1], strict=True)]
    scaled = [ev.multiply_scalar(a, 0.5 + i) for i, a in enumerate(cts)]
    for many, single in ((ev.rescale_many(scaled), [ev.rescale(a) for a in scaled]),
                         (ev.relinearize_many(products), [ev.relinearize(a) for a in products]),
                         (ev.relinearize_and_rescale_many(products),
                          [ev.relinearize_and_rescale(a) for a in products]),
                         (ev.rotate_many(cts, 3), [ev.rotate(a, 3) for a in cts]),
                         (ev.rotate_many(cts, SLOTS), [ev.rotate(a, SLOTS) for a in cts])):
        assert len(many) == len(single)
        for got, expected in zip(many, single, strict=True):
            np.testing.assert_array_equal(got.data, expected.data)
            assert (got.level, got.scale, got.complex_slots) == (expected.level, expected.scale,
                                                                 expected.complex_slots)
    np.testing.assert_allclose(dec(toy, ev.rotate_many(cts, 3)[1]), np.roll(vec(31), -3), atol=TOL)


def test_many_operations_refuse_mixed_levels_and_empty_lists(toy):
    ev = toy.evaluator
    a = enc(toy, vec(35))
    low = ev.rescale(ev.multiply_scalar(a, 1.0))
    with pytest.raises(ckks.LevelMismatchError, match=r"rescale_many: the ciphertexts are at levels \[1, 2\]"):
        ev.rescale_many([a, low])
    with pytest.raises(ckks.LevelMismatchError, match="rotate_many"):
        ev.rotate_many([a, low], 1)
    with pytest.raises(ckks.ParameterError, match=r"relinearize_many: size 2 ciphertexts are not supported"):
        ev.relinearize_many([ev.multiply(a, a), a])
    for op in (ev.rescale_many, ev.relinearize_many, ev.relinearize_and_rescale_many):
        with pytest.raises(ckks.ParameterError, match="non-empty list of ciphertexts"):
            op([])
        with pytest.raises(ckks.ParameterError, match="non-empty list of ciphertexts"):
            op(a)


def test_operations_never_modify_their_inputs(toy):
    ev = toy.evaluator
    a, b = enc(toy, vec(9)), enc(toy, vec(10))
    pt = toy.encoder.encode(vec(11))
    snapshot = [x.data.copy() for x in (a, b, pt)]
    ev.add(a, b), ev.sub(a, pt), ev.negate(a), ev.add_scalar(a, 1.0), ev.multiply_plain(a, pt)
    ev.multiply_scalar(a, 2.0), ev.multiply_integer(a, 3), ev.rotate(a, 3), ev.conjugate(a), ev.rescale(a)
    ev.relinearize(ev.multiply(a, b)), ev.drop_level(a, 0), ev.dot([a], [ev.prepare(pt)])
    product = ev.multiply(a, b)
    product_before = product.data.copy()
    ev.relinearize_and_rescale(product)
    np.testing.assert_array_equal(product.data, product_before)
    for x, before in zip((a, b, pt), snapshot, strict=True):
        np.testing.assert_array_equal(x.data, before)


def test_trivial_rotations_and_relinearization_return_copies(toy):
    ev = toy.evaluator
    a = enc(toy, vec(12))
    for step in (0, SLOTS, -SLOTS, 2 * SLOTS):
        r = ev.rotate(a, step)
        assert r is not a and not np.shares_memory(r.data, a.data)
        np.testing.assert_array_equal(r.data, a.data)
    r = ev.relinearize(a)
    assert r is not a and not np.shares_memory(r.data, a.data)
    np.testing.assert_array_equal(r.data, a.data)


def test_rotation_semantics_and_composition(toy):
    ev = toy.evaluator
    z = vec(13)
    a = enc(toy, z)
    for step in (1, 5, -1, -7, SLOTS - 1, SLOTS + 3, -SLOTS - 2):
        np.testing.assert_allclose(dec(toy, ev.rotate(a, step)), np.roll(z, -step), atol=TOL)
        # decode(rotate(ct, k))[i] == values[(i + k) % slots]
        out = dec(toy, ev.rotate(a, step))
        assert abs(out[0] - z[step % SLOTS]) < TOL
    np.testing.assert_allclose(dec(toy, ev.rotate(ev.rotate(a, 3), 5)), np.roll(z, -8), atol=TOL)
    np.testing.assert_allclose(dec(toy, ev.conjugate(ev.conjugate(a))), z, atol=TOL)


def test_sum_of_products_relinearized_once(toy):
    ev = toy.evaluator
    xs = [vec(40 + i) for i in range(4)]
    cs = [enc(toy, x) for x in xs]
    acc = ev.add(ev.multiply(cs[0], cs[1]), ev.multiply(cs[2], cs[3]))
    assert acc.size == 3
    mixed = ev.add(acc, ev.relinearize(ev.multiply(cs[0], cs[3])))  # size 3 + size 2
    out = ev.rescale(ev.relinearize(mixed))
    np.testing.assert_allclose(dec(toy, out), xs[0] * xs[1] + xs[2] * xs[3] + xs[0] * xs[3], atol=TOL)


def test_secret_key_ciphertexts_evaluate_alike(toy):
    ev = toy.evaluator
    x, y = vec(14), vec(15)
    a, b = enc(toy, x, secret=True), enc(toy, y)
    np.testing.assert_allclose(dec(toy, ev.rescale(ev.relinearize(ev.multiply(a, b)))), x * y, atol=TOL)
    np.testing.assert_allclose(dec(toy, ev.rotate(a, 2)), np.roll(x, -2), atol=TOL)


def test_complex_slots_follow_the_operands(toy):
    """Every result has complex slots iff an operand has; it then decodes to complex128 with the right
    values, else to float64 (a real vector stays real, as nn needs)."""
    ev = toy.evaluator
    for x_complex in (False, True):
        x = vec(60) if x_complex else vec(61).real
        a = enc(toy, x)
        unary = {
            "negate": (ev.negate(a), -x),
            "add_scalar": (ev.add_scalar(a, 0.5), x + 0.5),
            "multiply_scalar": (ev.rescale(ev.multiply_scalar(a, -0.75)), -0.75 * x),
            "multiply_integer": (ev.multiply_integer(a, 3), 3 * x),
            "square": (ev.rescale(ev.relinearize(ev.square(a))), x * x),
            "relinearize_and_rescale": (ev.relinearize_and_rescale(ev.square(a)), x * x),
            "rotate": (ev.rotate(a, 5), np.roll(x, -5)),
            "conjugate": (ev.conjugate(a), np.conj(x)),
            "drop_level": (ev.drop_level(a, 0), x),
            "relinearize (size 2)": (ev.relinearize(a), x),
        }
        for y_complex in (False, True):
            y = vec(62, 0.5) if y_complex else vec(63, 0.5).real
            b, pt = enc(toy, y), toy.encoder.encode(y)
            binary = {
                "add": (ev.add(a, b), x + y),
                "sub plain": (ev.sub(a, pt), x - y),
                "multiply": (ev.rescale(ev.relinearize(ev.multiply(a, b))), x * y),
                "multiply_plain": (ev.rescale(ev.multiply_plain(a, pt)), x * y),
                "dot (plain weights)": (ev.rescale(ev.dot([a], [ev.prepare(pt)])), x * y),
                "dot (cipher weights)": (ev.rescale(ev.relinearize(ev.dot([a], [ev.prepare(b)]))), x * y),
            }
            for name, (ct, expected) in binary.items():
                assert ct.complex_slots == (x_complex or y_complex), name
                out = dec(toy, ct)
                assert out.dtype == (np.complex128 if x_complex or y_complex else np.float64), name
                np.testing.assert_allclose(out, expected, atol=TOL, err_msg=name)
        for name, (ct, expected) in unary.items():
            assert ct.complex_slots == x_complex, name
            out = dec(toy, ct)
            assert out.dtype == (np.complex128 if x_complex else np.float64), name
            np.testing.assert_allclose(out, expected, atol=TOL, err_msg=name)


# ------------------------------------------------------------------------------------------------------------
# Homomorphism properties (hypothesis)
# ------------------------------------------------------------------------------------------------------------

values = hnp.arrays(np.float64, SLOTS, elements=st.floats(-4, 4, allow_nan=False, allow_infinity=False))


def as_complex(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    return re + 1j * im


@settings(max_examples=20, deadline=None)
@given(values, values, values, values)
def test_add_sub_homomorphism(toy, xr, xi, yr, yi):
    x, y = as_complex(xr, xi), as_complex(yr, yi)
    a, b = enc(toy, x), enc(toy, y)
    np.testing.assert_allclose(dec(toy, toy.evaluator.add(a, b)), x + y, atol=TOL * 8)
    np.testing.assert_allclose(dec(toy, toy.evaluator.sub(a, b)), x - y, atol=TOL * 8)


@settings(max_examples=20, deadline=None)
@given(values, values, values, values, st.sampled_from([2, 1]))
def test_multiply_homomorphism(toy, xr, xi, yr, yi, level):
    x, y = as_complex(xr, xi), as_complex(yr, yi)
    ev = toy.evaluator
    a, b = enc(toy, x, level=level), enc(toy, y, level=level)
    out = ev.rescale(ev.relinearize(ev.multiply(a, b)))
    np.testing.assert_allclose(dec(toy, out), x * y, atol=TOL * 64)


@settings(max_examples=10, deadline=None)
@given(values, values)
def test_multiply_at_level_zero_with_small_scales(toy, xr, yr):
    """Level 0 (q_0 has 50 bits) holds a product of two scale-2^20 operands (scale 2^40) without a rescale."""
    ev = toy.evaluator
    a = toy.encryptor.encrypt(toy.encoder.encode(xr, level=0, scale=2.0**20))
    b = toy.encryptor.encrypt(toy.encoder.encode(yr, level=0, scale=2.0**20))
    out = ev.relinearize(ev.multiply(a, b))
    assert out.level == 0 and out.scale == 2.0**40
    np.testing.assert_allclose(dec(toy, out), xr * yr, atol=2.0**-8)


@settings(max_examples=20, deadline=None)
@given(values, values, st.integers(-100, 100))
def test_rotate_homomorphism(toy, xr, xi, step):
    x = as_complex(xr, xi)
    np.testing.assert_allclose(
        dec(toy, toy.evaluator.rotate(enc(toy, x), step)), np.roll(x, -step), atol=TOL * 8
    )


@settings(max_examples=10, deadline=None)
@given(values, values, values, values, st.integers(-40, 40))
def test_conjugate_homomorphism(toy, xr, xi, yr, yi, step):
    """conj is slot-wise, multiplicative, commutes with rotations, and gives Re / Im: x + conj(x) = 2 Re x,
    x - conj(x) = 2i Im x."""
    x, y = as_complex(xr, xi), as_complex(yr, yi)
    ev = toy.evaluator
    a, b = enc(toy, x), enc(toy, y)
    conj_a = ev.conjugate(a)
    np.testing.assert_allclose(dec(toy, conj_a), np.conj(x), atol=TOL * 8)
    product = ev.rescale(ev.relinearize(ev.multiply(conj_a, ev.conjugate(b))))
    np.testing.assert_allclose(dec(toy, product), np.conj(x * y), atol=TOL * 64)
    np.testing.assert_allclose(dec(toy, ev.conjugate(ev.rotate(a, step))), np.roll(np.conj(x), -step),
                               atol=TOL * 8)
    np.testing.assert_allclose(dec(toy, ev.add(a, conj_a)), 2 * x.real, atol=TOL * 8)
    np.testing.assert_allclose(dec(toy, ev.sub(a, conj_a)), 2j * x.imag, atol=TOL * 8)


@settings(max_examples=15, deadline=None)
@given(values, st.floats(-10, 10, allow_nan=False), st.floats(-10, 10, allow_nan=False))
def test_scalar_homomorphism(toy, xr, c, d):
    ev = toy.evaluator
    a = enc(toy, xr)
    out = dec(toy, ev.add_scalar(ev.rescale(ev.multiply_scalar(a, c)), d))
    # the scalar is rounded to c' = round(c q_l) / q_l: |c - c'| <= 2^-41
    np.testing.assert_allclose(out, c * xr + d, atol=TOL * 16)


def test_a_galois_key_added_after_the_evaluator_was_made_is_prepared_when_first_used(toy):
    """Galois keys are prepared when the Evaluator is made; one added to its GaloisKeys later still rotates
    (prepared on first use), and one never given is a MissingKeyError naming the steps there are."""
    keys = toy.keygen.galois_keys(steps=[1])
    ev = ckks.Evaluator(toy.params, relin_key=toy.keygen.relin_key(), galois_keys=keys)
    ct = enc(toy, vec(40))
    with pytest.raises(ckks.MissingKeyError, match=r"rotate by 2: no Galois key .* rotation steps \[1\]"):
        ev.rotate(ct, 2)
    keys.keys.update(toy.keygen.galois_keys(steps=[2]).keys)
    np.testing.assert_allclose(dec(toy, ev.rotate(ct, 2)), np.roll(vec(40), -2), atol=TOL)
    np.testing.assert_allclose(dec(toy, ev.rotate(ct, 1)), np.roll(vec(40), -1), atol=TOL)  # the key made first
