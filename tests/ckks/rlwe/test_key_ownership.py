"""ckks.made_from: public keys are recognised as made from their secret key, and only from it.

Independent check of the premise: b + a*s computed with exact Python integers (schoolbook negacyclic product,
no NTT) is the small KeyGen error for the right secret and a large value for another one.
"""

import pytest

import ckks
from ckks.ring import rns
from ckks.ring.sampling import GAUSSIAN_BOUND


@pytest.fixture(scope="module")
def params():
    return ckks.Parameters(ring_degree=64, moduli_bits=(50, 40, 40), special_moduli_bits=(60, 60), scale_bits=40,
                           security=None)


def keys(params, seed):
    gen = ckks.KeyGenerator(params, seed=seed)
    return gen.secret_key, gen.public_key(), gen.relin_key()


def test_keys_are_recognised_by_their_own_secret(params):
    secret, public, relin = keys(params, 1)
    assert ckks.made_from(secret, public, relin, params)


@pytest.mark.parametrize("swap", ["secret", "public", "relin"])
def test_one_key_of_another_client_is_detected(params, swap):
    mine, other = list(keys(params, 1)), list(keys(params, 2))
    index = ["secret", "public", "relin"].index(swap)
    mine[index] = other[index]
    assert not ckks.made_from(*mine, params)


def test_an_error_beyond_the_gaussian_tail_is_detected(params):
    secret, public, relin = keys(params, 1)
    q0 = rns.rns_basis(params.moduli[:1], params.ring_degree)
    coefficients = rns.from_ntt(public.data[0, :1], q0)
    coefficients[0, 5] = (int(coefficients[0, 5]) + 41) % params.moduli[0]  # e_5 now in [21, 61]
    tampered = public.data.copy()
    tampered[0, :1] = rns.to_ntt(coefficients, q0)
    assert not ckks.made_from(secret, ckks.PublicKey(tampered, public.fingerprint), relin, params)


def test_premise_checked_with_exact_integers(params):
    """b + a*s mod q_0, by a schoolbook product in X^N + 1 over Python ints: within [-20, 20] for the right
    secret, beyond it for another."""
    q, n = params.moduli[0], params.ring_degree
    basis = rns.rns_basis((q,), n)
    secret, public, _ = keys(params, 1)
    other, _, _ = keys(params, 2)
    b = [int(v) for v in rns.from_ntt(public.data[0, :1], basis)[0]]
    a = [int(v) for v in rns.from_ntt(public.data[1, :1], basis)[0]]

    def error(s):
        out = list(b)
        for i in range(n):
            for j in range(n):
                k, sign = (i + j, 1) if i + j < n else (i + j - n, -1)
                out[k] += sign * a[i] * int(s[j])
        centered = [(v % q) - q if v % q > q // 2 else v % q for v in out]
        return max(abs(v) for v in centered)

    assert error(secret.coefficients) <= GAUSSIAN_BOUND
    assert error(other.coefficients) > 2**30
