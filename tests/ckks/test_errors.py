"""Every named error a caller can hit through the public API, with what its message must say.

SerializationError belongs to the serialization tests; every other class of ckks.errors is raised here.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ckks
from ckks import errors

SLOTS = 32


@pytest.fixture(scope="module")
def other(key_set_factory):
    """Keys of different parameters (same N, another chain): their objects must be refused."""
    p = ckks.Parameters(
        ring_degree=64, moduli_bits=(50, 40), special_moduli_bits=(60,), scale_bits=40, security=None
    )
    return key_set_factory(p, seed=3, steps=(1,))


@pytest.fixture(scope="module")
def few_keys(toy, key_set_factory):
    """Galois keys for steps 1 and 3 only, no conjugation."""
    return key_set_factory(toy.params, seed=4, steps=(1, 3))


def fresh(toy, level=None, scale=None, values=None):
    z = np.linspace(-1, 1, SLOTS) if values is None else values
    return toy.encryptor.encrypt(toy.encoder.encode(z, level=level, scale=scale))


def test_error_classes_are_covered_here():
    """A new error class must come with its rejection tests (this list is the checklist)."""
    classes = {
        name for name, obj in inspect.getmembers(errors, inspect.isclass) if issubclass(obj, Exception)
    }
    assert classes == {
        "CkksError",
        "ParameterError",
        "LevelMismatchError",
        "ScaleMismatchError",
        "OutOfLevelsError",
        "MissingKeyError",
        "SerializationError",
        "ValueRangeError",
    }
    for name in classes - {"CkksError"}:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.CkksError) and getattr(ckks, name) is cls


# ------------------------------------------------------------------------------------------------------------
# ParameterError
# ------------------------------------------------------------------------------------------------------------


def test_parameter_error_insecure_and_malformed():
    with pytest.raises(ckks.ParameterError, match=r"log2\(QP\) = .* exceeds .* security=None"):
        ckks.Parameters(
            ring_degree=8192, moduli_bits=(60, 60, 60, 60), special_moduli_bits=(60,), scale_bits=40
        )
    with pytest.raises(ckks.ParameterError, match="power of two"):
        ckks.Parameters(ring_degree=1000, moduli_bits=(60,), special_moduli_bits=(60,), security=None)
    with pytest.raises(ValueError):  # also a ValueError, for callers that catch those
        ckks.Parameters(ring_degree=64, moduli_bits=(), security=None)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_encode_rejects_bad_scale(toy, scale):
    with pytest.raises(ckks.ParameterError, match="scale"):
        toy.encoder.encode([1.0], scale=scale)


def test_objects_of_other_parameters_are_refused(toy, other):
    ct, pt = fresh(toy), toy.encoder.encode([1.0])
    foreign_ct = fresh(other)
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        toy.encoder.decode(other.encoder.encode([1.0]))
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        toy.encryptor.encrypt(other.encoder.encode([1.0]))
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        toy.decryptor.decrypt(foreign_ct)
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        ckks.Encryptor(toy.params, other.pk)
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        ckks.Decryptor(toy.params, other.sk)
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        ckks.Evaluator(toy.params, relin_key=other.rlk)
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        ckks.Evaluator(toy.params, galois_keys=other.gk)
    with pytest.raises(ckks.ParameterError, match="add: .*other parameters"):
        toy.evaluator.add(ct, foreign_ct)
    with pytest.raises(ckks.ParameterError, match="other parameters"):
        toy.evaluator.multiply_plain(foreign_ct, pt)


def test_wrong_object_kinds_are_refused(toy):
    ev, ct, pt = toy.evaluator, fresh(toy), toy.encoder.encode([1.0])
    with pytest.raises(ckks.ParameterError, match="Plaintext"):
        toy.encoder.decode(ct)
    with pytest.raises(ckks.ParameterError, match="Plaintext"):
        toy.encryptor.encrypt(np.ones(4))
    with pytest.raises(ckks.ParameterError, match="Ciphertext"):
        toy.decryptor.decrypt(pt)
    with pytest.raises(ckks.ParameterError, match="PublicKey or SecretKey"):
        ckks.Encryptor(toy.params, toy.rlk)
    with pytest.raises(ckks.ParameterError, match="SecretKey"):
        ckks.Decryptor(toy.params, toy.pk)
    with pytest.raises(ckks.ParameterError, match="multiply: expected a Ciphertext"):
        ev.multiply(ct, pt)
    with pytest.raises(ckks.ParameterError, match="multiply_plain: expected a Plaintext"):
        ev.multiply_plain(ct, ct)
    with pytest.raises(ckks.ParameterError, match="add: expected a Ciphertext"):
        ev.add(pt, ct)
    with pytest.raises(ckks.ParameterError, match="not an integer"):
        ev.multiply_integer(ct, 2.5)
    with pytest.raises(ckks.ParameterError, match="not an integer"):
        ev.rotate(ct, 1.0)
    with pytest.raises(ckks.ParameterError, match="not an integer"):
        toy.keygen.galois_keys(steps=[1.5])


def test_size_three_operands_need_relinearization(toy):
    ev, ct = toy.evaluator, fresh(toy)
    big = ev.multiply(ct, ct)
    for op in (
        lambda: ev.multiply(big, ct),
        lambda: ev.square(big),
        lambda: ev.rotate(big, 1),
        lambda: ev.conjugate(big),
        lambda: ev.dot([big], [ev.prepare(ct)]),
    ):
        with pytest.raises(ckks.ParameterError, match="relinearize"):
            op()


def test_dot_rejects_malformed_lists(toy):
    ev, ct, pt = toy.evaluator, fresh(toy), toy.encoder.encode([1.0])
    with pytest.raises(ckks.ParameterError, match="non-empty"):
        ev.dot([], [])
    with pytest.raises(ckks.ParameterError, match="equal"):
        ev.dot([ct, ct], [ev.prepare(pt)])
    with pytest.raises(ckks.ParameterError, match="prepared"):
        ev.dot([ct], [pt])
    with pytest.raises(ckks.ParameterError, match="one kind"):
        ev.dot([ct, ct], [ev.prepare(pt), ev.prepare(ct)])


# ------------------------------------------------------------------------------------------------------------
# LevelMismatchError
# ------------------------------------------------------------------------------------------------------------


def test_level_mismatch_names_operation_levels_and_remedy(toy):
    ev = toy.evaluator
    hi, lo = fresh(toy), fresh(toy, level=1)
    for name, op in (("add", ev.add), ("sub", ev.sub), ("multiply", ev.multiply)):
        with pytest.raises(ckks.LevelMismatchError) as info:
            op(hi, lo)
        msg = str(info.value)
        assert msg.startswith(f"{name}:") and "levels 2 and 1" in msg and "drop_level" in msg
    with pytest.raises(ckks.LevelMismatchError, match="multiply_plain: operands are at levels 2 and 0"):
        ev.multiply_plain(hi, toy.encoder.encode([1.0], level=0))
    with pytest.raises(ckks.LevelMismatchError, match="add: operands are at levels 1 and 2"):
        ev.add(lo, toy.encoder.encode([1.0]))
    with pytest.raises(ckks.LevelMismatchError, match="dot"):  # a term's weight at another level
        ev.dot([hi], [ev.prepare(toy.encoder.encode([1.0], level=1))])


def test_dot_rejects_terms_at_different_levels(toy):
    ev = toy.evaluator
    hi, lo = fresh(toy), fresh(toy, level=1)
    w_hi, w_lo = ev.prepare(toy.encoder.encode([1.0])), ev.prepare(toy.encoder.encode([1.0], level=1))
    with pytest.raises(ckks.LevelMismatchError, match="dot"):
        ev.dot([hi, lo], [w_hi, w_lo])


@pytest.mark.parametrize("level", [-1, 3, 10, 1.0])
def test_encode_level_out_of_range(toy, level):
    with pytest.raises(ckks.LevelMismatchError, match="level"):
        toy.encoder.encode([1.0], level=level)


@pytest.mark.parametrize("level", [-1, 2])
def test_drop_level_cannot_go_up_or_below_zero(toy, level):
    with pytest.raises(ckks.LevelMismatchError, match="drop_level: cannot go from level 1"):
        toy.evaluator.drop_level(fresh(toy, level=1), level)


# ------------------------------------------------------------------------------------------------------------
# ScaleMismatchError
# ------------------------------------------------------------------------------------------------------------


def test_scale_mismatch_names_both_scales(toy):
    ev = toy.evaluator
    ct = fresh(toy)
    squared = ev.relinearize(ev.multiply(ct, ct))  # level 2, scale 2^80
    with pytest.raises(ckks.ScaleMismatchError) as info:
        ev.add(squared, ct)
    msg = str(info.value)
    assert msg.startswith("add:") and "2^80.000000" in msg and "2^40.000000" in msg and "level 2" in msg
    with pytest.raises(ckks.ScaleMismatchError, match="sub:"):
        ev.sub(ct, toy.encoder.encode([1.0], scale=2.0**39))
    with pytest.raises(ckks.ScaleMismatchError, match="add:"):
        ev.add(ct, toy.encoder.encode([1.0], scale=2.0**40 * (1 + 2.0**-30)))


def test_scales_equal_to_tracking_precision_are_accepted(toy):
    """After a rescale the scale is Delta^2 / q_l exactly; a plaintext encoded at that scale adds fine."""
    ev = toy.evaluator
    ct = fresh(toy)
    r = ev.rescale(ev.relinearize(ev.multiply(ct, ct)))
    out = ev.add(r, toy.encoder.encode(np.ones(SLOTS), level=r.level, scale=r.scale * (1 + 2.0**-45)))
    np.testing.assert_allclose(
        toy.encoder.decode(toy.decryptor.decrypt(out)), np.linspace(-1, 1, SLOTS) ** 2 + 1, atol=2.0**-20
    )


def test_dot_rejects_terms_of_different_product_scales(toy):
    ev, ct = toy.evaluator, fresh(toy)
    w1, w2 = toy.encoder.encode([1.0]), toy.encoder.encode([1.0], scale=2.0**30)
    with pytest.raises(ckks.ScaleMismatchError, match="dot"):
        ev.dot([ct, ct], [ev.prepare(w1), ev.prepare(w2)])


# ------------------------------------------------------------------------------------------------------------
# OutOfLevelsError
# ------------------------------------------------------------------------------------------------------------


def test_rescale_at_level_zero(toy):
    ev = toy.evaluator
    ct = fresh(toy, level=0)
    with pytest.raises(ckks.OutOfLevelsError, match="rescale: the ciphertext is at level 0"):
        ev.rescale(ct)
    chained = ev.rescale(ev.rescale(fresh(toy)))
    assert chained.level == 0
    with pytest.raises(ckks.OutOfLevelsError):
        ev.rescale(chained)


def test_multiply_overflowing_level_zero_is_refused(toy):
    a = fresh(toy, level=0)
    with pytest.raises(ckks.OutOfLevelsError):
        toy.evaluator.multiply(a, a)


# ------------------------------------------------------------------------------------------------------------
# MissingKeyError
# ------------------------------------------------------------------------------------------------------------


def test_relinearize_without_relin_key(toy):
    ev = ckks.Evaluator(toy.params, galois_keys=toy.gk)
    ct = fresh(toy)
    with pytest.raises(ckks.MissingKeyError) as info:
        ev.relinearize(ev.multiply(ct, ct))
    msg = str(info.value)
    assert msg.startswith("relinearize:") and "relin_key" in msg
    assert not msg.startswith("'")  # a KeyError subclass that prints without quotes
    assert isinstance(info.value, KeyError)


def test_rotate_and_conjugate_without_any_galois_keys(toy):
    ev = ckks.Evaluator(toy.params, relin_key=toy.rlk)
    ct = fresh(toy)
    with pytest.raises(ckks.MissingKeyError, match=r"galois_keys=KeyGenerator\.galois_keys\(steps="):
        ev.rotate(ct, 1)
    with pytest.raises(ckks.MissingKeyError, match=r"conjugate: .* galois_keys=KeyGenerator\.galois_keys\("
                                                    r"conjugate=True\) when creating it"):
        ev.conjugate(ct)


def test_rotation_step_without_key_lists_existing_steps(toy, few_keys):
    ev = ckks.Evaluator(toy.params, galois_keys=few_keys.gk)
    ct = few_keys.encryptor.encrypt(few_keys.encoder.encode([1.0]))
    ev.rotate(ct, 1), ev.rotate(ct, 3)  # these exist
    with pytest.raises(ckks.MissingKeyError) as info:
        ev.rotate(ct, 2)
    msg = str(info.value)
    assert "rotate by 2" in msg and "[1, 3]" in msg and "galois_keys(steps=" in msg
    assert "conjugation" not in msg and "conjugate=True" not in msg
    with pytest.raises(ckks.MissingKeyError) as info:
        ev.conjugate(ct)
    msg = str(info.value)
    assert msg.startswith(f"conjugate: no conjugation key for element {2 * toy.params.ring_degree - 1};")
    assert "[1, 3]" in msg and msg.endswith("Generate it with KeyGenerator.galois_keys(steps=[1, 3], "
                                            "conjugate=True)")
    # the call the message names makes keys that conjugate and still rotate
    keys = toy.keygen.galois_keys(steps=[1, 3], conjugate=True)
    out = ckks.Evaluator(toy.params, galois_keys=keys)
    z = np.linspace(-1, 1, SLOTS) * (1 + 2j)
    ct = toy.encryptor.encrypt(toy.encoder.encode(z))
    np.testing.assert_allclose(toy.encoder.decode(toy.decryptor.decrypt(out.conjugate(ct))), np.conj(z),
                               atol=2.0**-20)
    out.rotate(ct, 1), out.rotate(ct, 3)
    # with a conjugation key, the message says so
    keys = toy.keygen.galois_keys(steps=[1, 2, 3], conjugate=True)
    with pytest.raises(ckks.MissingKeyError, match=r"steps \[1, 2, 3\] and conjugation"):
        ckks.Evaluator(toy.params, galois_keys=keys).rotate(fresh(toy), 4)


# ------------------------------------------------------------------------------------------------------------
# ValueRangeError
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        [1.0, float("nan")],
        [float("inf")],
        [-np.inf, 0.0],
        [complex(0, np.nan)],
        np.full(4, np.nan),
    ],
)
def test_encode_rejects_non_finite(toy, values):
    with pytest.raises(ckks.ValueRangeError, match="NaN or infinity"):
        toy.encoder.encode(values)


def test_encode_rejects_too_many_values(toy):
    toy.encoder.encode(np.zeros(SLOTS))  # exactly N/2 is fine
    with pytest.raises(ckks.ValueRangeError, match=f"33 values do not fit in {SLOTS} slots"):
        toy.encoder.encode(np.zeros(SLOTS + 1))
    with pytest.raises(ckks.ValueRangeError, match="do not fit"):
        toy.encoder.encode(np.zeros((8, 8)))  # 64 values, even as a matrix


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("level,value", [(0, 2.0**9), (2, 2.0**88), (0, 1e300)])
def test_encode_rejects_values_too_large_for_the_modulus(toy, level, value):
    """At level 0, Q = q_0 ~ 2^50 and scale 2^40 leave ~2^8 for the values (a factor 2 of headroom)."""
    with pytest.raises(ckks.ValueRangeError, match=f"level {level} holds only"):
        toy.encoder.encode(np.full(SLOTS, value), level=level)


def test_encode_accepts_values_that_fit(toy):
    out = toy.encoder.decode(toy.encoder.encode(np.full(SLOTS, 100.0), level=0))
    np.testing.assert_allclose(out, 100.0, atol=1e-6)


@pytest.mark.parametrize("values", [["a", "b"], np.array([object(), 1.0], dtype=object), [None]])
def test_encode_rejects_non_numbers(toy, values):
    with pytest.raises(ckks.ValueRangeError, match="numbers"):
        toy.encoder.encode(values)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -np.inf])
def test_scalars_must_be_finite(toy, value):
    ev, ct = toy.evaluator, fresh(toy)
    with pytest.raises(ckks.ValueRangeError, match="add_scalar: the constant"):
        ev.add_scalar(ct, value)
    with pytest.raises(ckks.ValueRangeError, match="multiply_scalar: the constant"):
        ev.multiply_scalar(ct, value)


def test_scalars_must_fit_the_modulus(toy):
    ev = toy.evaluator
    ct = fresh(toy, level=0)  # Q = q_0 ~ 2^50
    with pytest.raises(ckks.ValueRangeError, match="does not fit the modulus at level 0"):
        ev.add_scalar(ct, 2.0**20)
    with pytest.raises(ckks.ValueRangeError, match="does not fit"):
        ev.multiply_scalar(ct, 1.0, scale=2.0**60)


@pytest.mark.parametrize("op", ["add_scalar", "multiply_scalar"])
@pytest.mark.parametrize("value", [1 + 2j, 0.5j, np.complex128(1), np.complex64(-3 + 0j)])
def test_complex_scalars_are_refused_by_name(toy, op, value):
    """A complex constant cannot be round(value * scale): refused with the way to do it (a plaintext)."""
    with pytest.raises(ckks.ValueRangeError, match=rf"{op}: the constant .* is complex.*multiply_plain"):
        getattr(toy.evaluator, op)(fresh(toy), value)


@pytest.mark.parametrize("op", ["add_scalar", "multiply_scalar"])
def test_huge_finite_scalars_raise_value_range_error(toy, op):
    with pytest.raises(ckks.ValueRangeError):
        getattr(toy.evaluator, op)(fresh(toy), 1e300)


def test_a_size_3_ciphertext_weight_is_refused_not_half_used(toy):
    """The dot kernels multiply size-2 ciphertexts: a size-3 weight would lose its s^2 part silently."""
    ev = toy.evaluator
    ct = toy.encryptor.encrypt(toy.encoder.encode([0.5]))
    size3 = ev.multiply(ct, ct)
    for call in (lambda: ev.prepare(size3), lambda: ev.prepare_many([size3])):
        with pytest.raises(ckks.ParameterError, match="weight has size 3; relinearize it first"):
            call()


def test_prepare_many_names_mixed_levels(toy):
    with pytest.raises(ckks.LevelMismatchError, match=r"operands at levels \[1, 2\]"):
        toy.evaluator.prepare_many([toy.encoder.encode([1.0]), toy.encoder.encode([1.0], level=1)])


def test_dot_many_refuses_biases_it_cannot_add(toy):
    """Each bias must fit its output: one per output, one kind, the terms' level, the product's scale, size 2;
    and a plaintext weight stacked without companions (as biases are) cannot be multiplied."""
    ev = toy.evaluator
    ct = fresh(toy)
    [weight] = ev.prepare_many([toy.encoder.encode([0.5])])
    terms = [[(0, weight)]]
    scale = ev.dot_many([ct], terms)[0].scale
    bias = toy.encoder.encode([0.25], scale=scale)
    size3 = ev.multiply(fresh(toy), fresh(toy))
    cases = [
        ([bias, None], ckks.ParameterError, "2 biases for 1 outputs"),
        ([toy.encoder.encode([0.25], scale=scale, level=1)], ckks.LevelMismatchError, "levels"),
        ([toy.encoder.encode([0.25])], ckks.ScaleMismatchError, "encode the bias at the product's scale"),
        ([size3], ckks.ParameterError, "bias ciphertext has size 3"),
        (["0.25"], ckks.ParameterError, "all plaintexts or all ciphertexts"),
    ]
    for biases, error, message in cases:
        with pytest.raises(error, match=message):
            ev.dot_many([ct], terms, biases)
    two = [[(0, weight)], [(0, weight)]]
    with pytest.raises(ckks.ParameterError, match="all plaintexts or all ciphertexts"):
        ev.dot_many([ct], two, [bias, toy.encryptor.encrypt(bias)])
    [no_companions] = ev.prepare_many([toy.encoder.encode([0.5])], companions=False)
    with pytest.raises(ckks.ParameterError, match="prepared without its Shoup companions"):
        ev.dot_many([ct], [[(0, no_companions)]])
