"""Thread count of the parallel kernels: validated by name, and bit-identical results at every count.

The NTT, base conversion, key switching and the automorphism split their RNS limbs over Numba threads; each
limb runs the same code on any thread, so a key switch at T threads must equal the one at 1 thread exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import ckks


@pytest.fixture
def restore_threads():
    before = ckks.get_threads()
    yield
    ckks.set_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.0, True, "2", 10**6])
def test_bad_thread_counts_are_refused_by_name(bad, restore_threads):
    with pytest.raises(ckks.ParameterError, match=r"threads must be an integer in \[1, "):
        ckks.set_threads(bad)


def test_default_is_every_thread_of_the_pool(restore_threads):
    assert ckks.set_threads(None) == ckks.available_threads() == ckks.get_threads()
    assert ckks.set_threads(1) == 1 == ckks.get_threads()
    assert ckks.set_threads(np.int64(1)) == 1   # numpy integers are integers (as in ckks.Parameters)


def test_results_are_bit_identical_across_thread_counts(restore_threads):
    if ckks.available_threads() < 2:
        pytest.skip("this machine has one core: no second thread count to compare with")
    params = ckks.Parameters(ring_degree=4096, moduli_bits=(50, 40, 40, 40), special_moduli_bits=(50, 50),
                             scale_bits=40, security=None)
    keygen = ckks.KeyGenerator(params, seed=11)
    encoder, encryptor = ckks.Encoder(params), ckks.Encryptor(params, keygen.public_key(), seed=12)
    evaluator = ckks.Evaluator(params, relin_key=keygen.relin_key(), galois_keys=keygen.galois_keys(steps=[3]))
    values = np.random.default_rng(13).uniform(-1, 1, params.slots)
    ct = encryptor.encrypt(encoder.encode(values))

    def pipeline() -> list[ckks.Ciphertext]:
        squared = evaluator.rescale(evaluator.relinearize(evaluator.multiply(ct, ct)))
        return [squared, evaluator.rotate(squared, 3)]

    outputs = {}
    for count in (1, ckks.available_threads()):
        ckks.set_threads(count)
        outputs[count] = pipeline()
    first, *others = outputs.values()
    for other in others:
        assert all(np.array_equal(a.data, b.data) for a, b in zip(first, other, strict=True))
    rotated = encoder.decode(ckks.Decryptor(params, keygen.secret_key).decrypt(first[1]))
    assert np.max(np.abs(rotated - np.roll(values**2, -3))) < 2**-20   # and the identical result is right
