"""Precision statistics over all slots (Lattigo's level 3), at a 128-bit-secure size.

N = 8192 (4096 slots), chain 50 + 40 + 40 bits, one 60-bit special prime (log2 QP ~ 190 <= 218), scale
2^40. Inputs are complex, uniform in the unit disk (|z| <= 1, so products stay in it). For each operation
the error per slot is |decoded - expected| (complex modulus), and the table reports, in bits:
  min = -log2(max error)   (the worst slot)
  mean = -log2(mean error)
  median = -log2(median error)
Floor (issue 3): min bits >= log2(scale) - log2(N) - 2 = 40 - 13 - 2 = 25 bits; one bit less for the extra
depth-2 row ((x y)^2: the first product's error is doubled by the squaring and a second rescale adds its
rounding). Every expected value is computed with numpy from the inputs, never with the code under test.
``pytest -s`` prints the table.

The complex rows (``pytest -s tests/ckks/scheme/test_precision.py -k complex``) decode a second way, without
the engine's encoder: the plaintext's integer coefficients (Python-int CRT of its limbs) go through numpy's
FFT of the canonical embedding (``ref.embedding_fft``), and the engine's own decode, called without
``complex_values=``, must return complex128 (the plaintext remembers that its slots are complex) and agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ckks

N = 8192
PARAMS = ckks.Parameters(
    ring_degree=N, moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40, security=128
)
FLOOR = math.log2(PARAMS.scale) - math.log2(N) - 2
BIG_STEP = 1000


@pytest.fixture(scope="module")
def big():
    kg = ckks.KeyGenerator(PARAMS, seed=2024)
    pk = kg.public_key()
    rlk, gk = kg.relin_key(), kg.galois_keys(steps=[1, -1, BIG_STEP], conjugate=True)
    rng = np.random.default_rng(99)
    x, y = (
        np.sqrt(rng.uniform(0, 1, PARAMS.slots)) * np.exp(2j * np.pi * rng.uniform(0, 1, PARAMS.slots))
        for _ in range(2)
    )
    encoder = ckks.Encoder(PARAMS)
    encryptor = ckks.Encryptor(PARAMS, pk, seed=1)
    return dict(
        encoder=encoder,
        encryptor=encryptor,
        sk_encryptor=ckks.Encryptor(PARAMS, kg.secret_key, seed=2),
        decryptor=ckks.Decryptor(PARAMS, kg.secret_key),
        ev=ckks.Evaluator(PARAMS, relin_key=rlk, galois_keys=gk),
        x=x,
        y=y,
        cx=encryptor.encrypt(encoder.encode(x)),
        cy=encryptor.encrypt(encoder.encode(y)),
    )


def print_table(title: str, rows: dict[str, tuple[float, float, float]]) -> None:
    print(f"\n\n{title}, N = {N}, scale 2^40 (floor {FLOOR:.0f} bits on the worst slot)")
    print(f"  {'operation':<38}{'min':>8}{'mean':>8}{'median':>8}")
    for name, (lo, mean, median) in rows.items():
        print(f"  {name:<38}{lo:>8.2f}{mean:>8.2f}{median:>8.2f}")


@pytest.fixture(scope="module")
def table():
    rows: dict[str, tuple[float, float, float]] = {}
    yield rows
    print_table(f"Precision in bits over {PARAMS.slots} complex slots", rows)


@pytest.fixture(scope="module")
def complex_table():
    rows: dict[str, tuple[float, float, float]] = {}
    yield rows
    print_table(f"Complex slots decoded by numpy's FFT of the canonical embedding: bits over {PARAMS.slots} "
                "slots", rows)


def precision_bits(got: np.ndarray, expected: np.ndarray) -> tuple[float, float, float]:
    err = np.abs(np.asarray(got) - np.asarray(expected))
    err = np.maximum(err, 2.0**-60)  # an exact slot counts as 60 bits
    return -math.log2(err.max()), -math.log2(err.mean()), -math.log2(float(np.median(err)))


def decrypt_decode(big, ct: ckks.Ciphertext) -> np.ndarray:
    """The decoded slots, complex128 or float64 as the ciphertext's slots are (no complex_values=)."""
    return big["encoder"].decode(big["decryptor"].decrypt(ct))


def operations():
    """(name, function of the fixture returning (decoded result, expected values))."""

    def encode(b):
        return b["encoder"].decode(b["encoder"].encode(b["x"])), b["x"]

    def encrypt_pk(b):
        return decrypt_decode(b, b["cx"]), b["x"]

    def encrypt_sk(b):
        return decrypt_decode(b, b["sk_encryptor"].encrypt(b["encoder"].encode(b["x"]))), b["x"]

    def add(b):
        return decrypt_decode(b, b["ev"].add(b["cx"], b["cy"])), b["x"] + b["y"]

    def mul(b):
        ev = b["ev"]
        out = ev.rescale(ev.relinearize(ev.multiply(b["cx"], b["cy"])))
        assert out.level == PARAMS.max_level - 1
        assert out.scale == PARAMS.scale**2 / PARAMS.moduli[-1]  # exact scale tracking
        return decrypt_decode(b, out), b["x"] * b["y"]

    def square(b):
        ev = b["ev"]
        return decrypt_decode(b, ev.rescale(ev.relinearize(ev.square(b["cx"])))), b["x"] ** 2

    def mul_depth2(b):
        ev = b["ev"]
        xy = ev.rescale(ev.relinearize(ev.multiply(b["cx"], b["cy"])))
        out = ev.rescale(ev.relinearize(ev.multiply(xy, xy)))
        assert out.level == 0
        return decrypt_decode(b, out), (b["x"] * b["y"]) ** 2

    def rotate(step):
        def run(b):
            return decrypt_decode(b, b["ev"].rotate(b["cx"], step)), np.roll(b["x"], -step)

        return run

    def conjugate(b):
        return decrypt_decode(b, b["ev"].conjugate(b["cx"])), np.conj(b["x"])

    def mul_scalar(b):
        ev = b["ev"]
        out = ev.rescale(ev.multiply_scalar(b["cx"], -0.7371))
        assert out.scale == b["cx"].scale  # multiplied at scale q_l, rescaled by q_l
        return decrypt_decode(b, out), -0.7371 * b["x"]

    def mul_plain(b):
        ev, enc = b["ev"], b["encoder"]
        out = ev.rescale(ev.multiply_plain(b["cx"], enc.encode(b["y"])))
        return decrypt_decode(b, out), b["x"] * b["y"]

    def add_scalar(b):
        return decrypt_decode(b, b["ev"].add_scalar(b["cx"], 0.25)), b["x"] + 0.25

    return [
        ("encode/decode", encode),
        ("encrypt (public key)/decrypt", encrypt_pk),
        ("encrypt (secret key)/decrypt", encrypt_sk),
        ("add", add),
        ("add_scalar", add_scalar),
        ("multiply+relinearize+rescale", mul),
        ("square+relinearize+rescale", square),
        ("(x*y)^2, depth 2", mul_depth2),
        ("multiply_plain+rescale", mul_plain),
        ("multiply_scalar+rescale", mul_scalar),
        ("rotate +1", rotate(1)),
        ("rotate -1", rotate(-1)),
        (f"rotate +{BIG_STEP}", rotate(BIG_STEP)),
        ("conjugate", conjugate),
    ]


@pytest.mark.parametrize("name,op", operations(), ids=[name for name, _ in operations()])
def test_precision_floor(big, table, name, op):
    got, expected = op(big)
    assert got.dtype == np.complex128  # complex inputs: every operation keeps the slots complex
    lo, mean, median = precision_bits(got, expected)
    table[name] = (lo, mean, median)
    floor = FLOOR - 1 if "depth 2" in name else FLOOR
    assert lo >= floor, f"{name}: worst slot has {lo:.2f} bits < floor {floor:.0f}"
    assert mean >= lo and median >= lo


def test_wrong_answers_fail_the_floor(big):
    """The statistic can fail: a rotation by the wrong step, or a result off by 2^-20, is far below."""
    got = decrypt_decode(big, big["ev"].rotate(big["cx"], 1))
    assert precision_bits(got, np.roll(big["x"], 1))[0] < 2
    assert precision_bits(got + 2.0**-20, np.roll(big["x"], -1))[0] < FLOOR


def complex_operations():
    """(name, function of the fixture returning (plaintext to decode, expected complex values))."""

    def decrypted(b, ct):
        return b["decryptor"].decrypt(ct)

    def mul(b):
        ev = b["ev"]
        return decrypted(b, ev.rescale(ev.relinearize(ev.multiply(b["cx"], b["cy"])))), b["x"] * b["y"]

    def mul_plain(b):
        ev = b["ev"]
        out = ev.rescale(ev.multiply_plain(b["cx"], b["encoder"].encode(b["y"])))
        return decrypted(b, out), b["x"] * b["y"]

    return [
        ("complex encode", lambda b: (b["encoder"].encode(b["x"]), b["x"])),
        ("complex encrypt (public key)", lambda b: (decrypted(b, b["cx"]), b["x"])),
        ("complex multiply+relinearize+rescale", mul),
        ("complex multiply_plain+rescale", mul_plain),
        ("complex rotate +1", lambda b: (decrypted(b, b["ev"].rotate(b["cx"], 1)), np.roll(b["x"], -1))),
        (f"complex rotate +{BIG_STEP}",
         lambda b: (decrypted(b, b["ev"].rotate(b["cx"], BIG_STEP)), np.roll(b["x"], -BIG_STEP))),
        ("complex conjugate", lambda b: (decrypted(b, b["ev"].conjugate(b["cx"])), np.conj(b["x"]))),
    ]


@pytest.mark.parametrize("name,op", complex_operations(), ids=[name for name, _ in complex_operations()])
def test_complex_slots_decoded_by_the_fft_embedding(big, complex_table, ref, name, op):
    pt, expected = op(big)
    assert pt.complex_slots
    independent = ref.embedding_fft(ref.plaintext_coefficients(pt, PARAMS)) / pt.scale
    engine = big["encoder"].decode(pt)  # no complex_values=: the plaintext's tag decides
    assert engine.dtype == np.complex128
    assert np.abs(engine - independent).max() < 2.0**-40  # one embedding, two algorithms: float64 noise apart
    lo, mean, median = precision_bits(independent, expected)
    complex_table[name] = (lo, mean, median)
    assert lo >= FLOOR, f"{name}: worst slot has {lo:.2f} bits < floor {FLOOR:.0f}"
    assert mean >= lo and median >= lo
    assert precision_bits(independent.real, expected)[0] < 2  # dropping the imaginary parts fails the floor


def test_complex_encode_rounds_the_fft_inverse_embedding(big, ref):
    """encode(x) at N = 8192 has the integer coefficients nearest scale * sigma^-1(x), sigma^-1 by numpy's
    FFT (float64 noise of both FFTs at scale 2^40 is ~2^-10, far below the 1/2 of the rounding)."""
    pt = big["encoder"].encode(big["x"])
    coefficients = np.array([float(c) for c in ref.plaintext_coefficients(pt, PARAMS)])
    exact = PARAMS.scale * ref.embedding_inverse_fft(big["x"], N)
    assert np.abs(coefficients - exact).max() <= 0.5 + 2.0**-6


def test_real_values_still_decode_to_float64(big):
    """A real input stays tagged real through multiply, relinearize, rescale and rotate: nn and every existing
    caller get float64 real parts, as before."""
    ev, real = big["ev"], big["x"].real
    ct = big["encryptor"].encrypt(big["encoder"].encode(real))
    out = ev.rotate(ev.rescale(ev.relinearize(ev.multiply(ct, ct))), 1)
    assert not ct.complex_slots and not out.complex_slots
    got = decrypt_decode(big, out)
    assert got.dtype == np.float64
    assert precision_bits(got, np.roll(real**2, -1))[0] >= FLOOR
