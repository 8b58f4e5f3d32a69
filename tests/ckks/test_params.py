"""Parameters: the HE Standard table enforced to the bit, toy sizes allowed only with security=None, derived
values, prime generation, and malformed input refused with ParameterError."""

from __future__ import annotations

import dataclasses
import math

import pytest

import ckks
from ckks.errors import ParameterError
from ckks.params import HE_STANDARD_MAX_LOG_QP

# Homomorphic Encryption Standard (Albrecht et al. 2018), Table 1, uniform ternary secret, classical: typed in
# here again so that a wrong entry in ckks.params is caught.
HE_STANDARD = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}


def test_table_matches_the_standard():
    assert HE_STANDARD_MAX_LOG_QP == HE_STANDARD


def split_bits(total: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A chain (q_0 first) + one special prime whose bit sizes add up to ``total``; pieces in [20, 60]."""
    special = min(60, max(20, total // 2))
    rest = total - special
    pieces = []
    while rest > 60:
        take = 60 if rest - 60 >= 30 else rest - 30
        pieces.append(take)
        rest -= take
    pieces.append(rest)
    return tuple(sorted(pieces, reverse=True)), (special,)


@pytest.mark.parametrize("security", [128, 192, 256])
@pytest.mark.parametrize("n", [2048, 4096, 8192, 16384, 32768])
def test_security_bound_enforced_to_the_bit(security, n):
    """Primes lie just below 2^bits, so bit sizes summing to the bound give log2(QP) just under it (accepted)
    and one bit more gives log2(QP) just over it (refused)."""
    bound = HE_STANDARD[security][n]
    if bound >= 40:  # two primes of at least 20 bits fit
        moduli, special = split_bits(bound)
        ok = ckks.Parameters(
            ring_degree=n, moduli_bits=moduli, special_moduli_bits=special, scale_bits=15, security=security
        )
        assert bound - 0.05 < ok.log_qp <= bound
        assert ok.log_qp == pytest.approx(sum(math.log2(q) for q in ok.moduli + ok.special_moduli))
    moduli, special = split_bits(max(bound + 1, 40))
    with pytest.raises(ParameterError, match=rf"exceeds the HE Standard's {bound} bits"):
        ckks.Parameters(
            ring_degree=n, moduli_bits=moduli, special_moduli_bits=special, scale_bits=15, security=security
        )


@pytest.mark.parametrize("security", [128, 192, 256])
def test_n_1024_cannot_hold_two_primes_securely(security):
    # The smallest legal chain (one 20-bit q_0 + one 20-bit special) is 40 bits > 27 / 19 / 14.
    with pytest.raises(ParameterError, match="exceeds"):
        ckks.Parameters(
            ring_degree=1024, moduli_bits=(20,), special_moduli_bits=(20,), scale_bits=10, security=security
        )


@pytest.mark.parametrize("n", [16, 32, 64, 128, 256, 512])
def test_toy_ring_degrees_need_security_none(n):
    args = dict(ring_degree=n, moduli_bits=(40, 30), special_moduli_bits=(40,), scale_bits=30)
    toy = ckks.Parameters(**args, security=None)
    assert toy.slots == n // 2
    assert "insecure toy" in toy.describe()
    with pytest.raises(ParameterError, match="no 128-bit bound"):
        ckks.Parameters(**args, security=128)


def test_insecure_chain_refused_at_secure_size_but_allowed_as_toy():
    args = dict(ring_degree=4096, moduli_bits=(60, 40, 40), special_moduli_bits=(60,), scale_bits=40)
    with pytest.raises(ParameterError, match="security=None"):
        ckks.Parameters(**args)  # security defaults to 128
    assert ckks.Parameters(**args, security=None).max_level == 2


def test_derived_values_and_primes():
    p = ckks.Parameters(ring_degree=8192, moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40)
    assert p.security == 128 and p.max_level == 2 and p.slots == 4096 and p.scale == 2.0**40
    assert p.digits == 3 and p.digit_size == 1
    primes = p.moduli + p.special_moduli
    assert len(set(primes)) == 4
    for q, bits in zip(primes, (50, 40, 40, 60), strict=True):
        assert q.bit_length() == bits and q % (2 * 8192) == 1
        assert q > 2**bits - 2**bits / 1000  # close to 2^bits: rescaling keeps the scale near 2^40
    assert p.moduli[1] != p.moduli[2]
    assert "N = 8192" in p.describe() and "128-bit" in p.describe()


def test_digits_default_and_explicit():
    base = dict(ring_degree=64, moduli_bits=(50, 40, 40, 40, 40), scale_bits=40, security=None)
    assert ckks.Parameters(**base, special_moduli_bits=(60,)).digits == 5
    two = ckks.Parameters(**base, special_moduli_bits=(60, 60))
    assert two.digits == 3 and two.digit_size == 2
    assert ckks.Parameters(**base, special_moduli_bits=(60,), key_switch_digits=2).digit_size == 3


def test_immutable_hashable_and_fingerprinted():
    a = ckks.Parameters(
        ring_degree=64, moduli_bits=[50, 40], special_moduli_bits=[60], scale_bits=40, security=None
    )
    b = ckks.Parameters(
        ring_degree=64, moduli_bits=(50, 40), special_moduli_bits=(60,), scale_bits=40, security=None
    )
    c = ckks.Parameters(
        ring_degree=64, moduli_bits=(50, 41), special_moduli_bits=(60,), scale_bits=40, security=None
    )
    assert a.moduli_bits == (50, 40)  # lists become tuples
    assert a == b and hash(a) == hash(b) and a.fingerprint == b.fingerprint
    assert c.fingerprint != a.fingerprint
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.ring_degree = 128


TOY = dict(ring_degree=64, moduli_bits=(50, 40), special_moduli_bits=(60,), scale_bits=40, security=None)


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(ring_degree=100), "power of two"),
        (dict(ring_degree=8), "power of two"),
        (dict(ring_degree=1 << 17), "power of two"),
        (dict(ring_degree=64.0), "power of two"),
        (dict(ring_degree="64"), "power of two"),
        (dict(moduli_bits=()), "empty"),
        (dict(special_moduli_bits=()), "empty"),
        (dict(moduli_bits=(50, 19)), "outside"),
        (dict(moduli_bits=(62, 40)), "outside"),
        (dict(special_moduli_bits=(70,)), "outside"),
        (dict(scale_bits=9), "scale_bits"),
        (dict(scale_bits=61, moduli_bits=(61, 61)), "scale_bits"),
        (dict(moduli_bits=(30,)), "no more bits than the scale"),  # Q cannot hold the value 1 at scale 2^40
        (dict(moduli_bits=(50, 30)), "rescaling primes"),  # scale 2^40 larger than the rescaling prime
        (dict(key_switch_digits=0), "key_switch_digits"),
        (dict(key_switch_digits=3), "key_switch_digits"),
        (dict(security=100), "security"),
        (dict(security=128), "no 128-bit bound"),  # N = 64 is not in the table
    ],
)
def test_malformed_parameters_are_refused(change, match):
    with pytest.raises(ParameterError, match=match):
        ckks.Parameters(**{**TOY, **change})


def test_impossible_prime_chain_is_refused_at_construction():
    with pytest.raises(ParameterError, match="not enough"):
        ckks.Parameters(
            ring_degree=1 << 16,
            moduli_bits=(21,) * 8,
            special_moduli_bits=(21,),
            scale_bits=15,
            security=None,
        )
