"""Primes: primality against trial division and an independent randomised Miller-Rabin, NTT-friendly prime
search against a brute-force scan, primitive roots against their definition with Python ``pow``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckks.errors import ParameterError
from ckks.ring.primes import is_prime, minimal_primitive_root, ntt_primes, primitive_root_of_unity


def trial_division(n: int) -> bool:
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def reference_probable_prime(n: int, rounds: int = 24) -> bool:
    """An independent Miller-Rabin with random bases (error < 4^-24) for large n."""
    if n < 1000:
        return trial_division(n)
    if n % 2 == 0:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    rng = random.Random(n)
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def test_is_prime_matches_trial_division_below_5000():
    assert [n for n in range(5000) if is_prime(n)] == [n for n in range(5000) if trial_division(n)]


@pytest.mark.parametrize(
    "n",
    [
        2**31 - 1,
        2**61 - 1,
        2**64 - 59,  # Mersenne primes and the largest 64-bit prime
        2**64 - 2**32 + 1,  # the "Goldilocks" NTT prime
    ],
)
def test_is_prime_accepts_large_primes(n):
    assert is_prime(n)


@pytest.mark.parametrize(
    "n",
    [
        561,
        1105,
        1729,
        41041,
        825265,  # Carmichael numbers
        3215031751,  # strong pseudoprime to bases 2, 3, 5, 7
        3825123056546413051,  # strong pseudoprime to every prime base up to 31
        318665857834031151167461,  # spsp to all prime bases <= 37: only witness 41 exposes it
        (2**31 - 1) * (2**61 - 1),
        2**64,
        2**61 + 1,
        (2**32 - 5) ** 2,
    ],
)
def test_is_prime_rejects_composites_and_pseudoprimes(n):
    assert not is_prime(n)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2**40, max_value=2**63))
def test_is_prime_agrees_with_independent_miller_rabin(n):
    assert is_prime(n) == reference_probable_prime(n)


@pytest.mark.parametrize(
    "bits,n,count", [(20, 16, 4), (30, 1024, 3), (40, 64, 5), (55, 8192, 3), (60, 4096, 4), (61, 1024, 3)]
)
def test_ntt_primes_are_the_largest_primes_1_mod_2n_below_2_to_bits(bits, n, count):
    found = ntt_primes(bits, n, count)
    assert len(found) == count == len(set(found))
    assert found == sorted(found, reverse=True)
    for q in found:
        assert q % (2 * n) == 1
        assert q.bit_length() == bits
        assert reference_probable_prime(q)
    # Every candidate 1 mod 2N between the smallest one found and 2^bits that is prime was found.
    step = 2 * n
    candidate = ((1 << bits) - 1) // step * step + 1
    scanned = []
    while candidate >= found[-1]:
        if reference_probable_prime(candidate):
            scanned.append(candidate)
        candidate -= step
    assert scanned == found


def test_ntt_primes_skip_excluded_and_are_deterministic():
    first = ntt_primes(40, 256, 3)
    again = ntt_primes(40, 256, 3)
    assert first == again
    more = ntt_primes(40, 256, 2, exclude=frozenset(first[:2]))
    assert more[0] == first[2] and more[1] not in first


@pytest.mark.parametrize("bits", [19, 62, 0])
def test_ntt_primes_rejects_bit_sizes_outside_20_61(bits):
    with pytest.raises(ParameterError, match="outside"):
        ntt_primes(bits, 16, 1)


def test_ntt_primes_reports_when_not_enough_exist():
    # 20-bit candidates = 1 mod 2^17: only 8 numbers in [2^19, 2^20), far fewer than 10 primes.
    with pytest.raises(ParameterError, match="not enough"):
        ntt_primes(20, 1 << 16, 10)


@pytest.mark.parametrize("q,order", [(97, 32), (97, 16), (7681, 512), (12289, 2048)])
def test_minimal_primitive_root_small_primes_brute_force(q, order):
    """Against the definition: the smallest x with x^order = 1 and x^(order/2) != 1 (order a power of 2)."""
    expected = next(x for x in range(2, q) if pow(x, order, q) == 1 and pow(x, order // 2, q) != 1)
    assert minimal_primitive_root(order, q) == expected
    assert pow(primitive_root_of_unity(order, q), order // 2, q) == q - 1


@pytest.mark.parametrize("bits,n", [(40, 1024), (60, 8192), (61, 64)])
def test_minimal_primitive_root_large_primes(bits, n):
    q = ntt_primes(bits, n, 1)[0]
    order = 2 * n
    psi = minimal_primitive_root(order, q)
    assert pow(psi, order, q) == 1 and pow(psi, order // 2, q) == q - 1
    # All primitive roots are r^odd for any one primitive root r: psi must be the least of them.
    g = next(g for g in range(2, 1000) if pow(pow(g, (q - 1) // order, q), order // 2, q) == q - 1)
    r = pow(g, (q - 1) // order, q)
    assert psi == min(pow(r, k, q) for k in range(1, order, 2))


def test_primitive_root_rejects_order_not_dividing_q_minus_1():
    with pytest.raises(ParameterError, match="does not divide"):
        primitive_root_of_unity(64, 97)  # 96 = 2^5 * 3
