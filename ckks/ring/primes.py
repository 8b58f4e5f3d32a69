"""NTT-friendly primes: q = 1 (mod 2N), so that Z_q holds a primitive 2N-th root of unity.

Cheon-Han-Kim-Kim-Song (SAC 2018), section 3: RNS primes are chosen close to the scale 2^k so that
dividing by one of them (rescaling) keeps the scale near 2^k.
"""

from __future__ import annotations

from functools import cache

from ..errors import ParameterError

# Deterministic Miller-Rabin witnesses: correct for every n < 3.3e24 (covers all 64-bit integers).
_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)


def is_prime(n: int) -> bool:
    """Miller-Rabin primality test, deterministic for n < 3.3 * 10^24."""
    if n < 2:
        return False
    for p in _WITNESSES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in _WITNESSES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def ntt_primes(bits: int, ring_degree: int, count: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """The ``count`` largest primes q < 2^bits with q = 1 (mod 2N), skipping those in ``exclude``.

    Taking them just below 2^bits keeps each prime within 2N * (a few hundred) of 2^bits, so a rescale by a
    prime of ``scale_bits`` bits keeps the scale close to 2^scale_bits (CHKKS 2018, section 3.2), and
    every prime has exactly ``bits`` bits, which is what the security table counts.

    Raises:
        ParameterError: if ``bits`` is outside [20, 61] or not enough such primes exist.
    """
    if not 20 <= bits <= 61:
        raise ParameterError(f"prime bit size {bits} is outside [20, 61] (64-bit limbs with lazy reduction)")
    step = 2 * ring_degree
    candidate = ((1 << bits) - 1) // step * step + 1
    found: list[int] = []
    while len(found) < count:
        if candidate < (1 << (bits - 1)):
            raise ParameterError(f"not enough {bits}-bit primes = 1 mod {step} for N = {ring_degree}")
        if candidate not in exclude and is_prime(candidate):
            found.append(candidate)
        candidate -= step
    return found


def primitive_root_of_unity(order: int, q: int) -> int:
    """The smallest x in Z_q whose multiplicative order is exactly ``order`` (a power of two dividing q - 1).

    x = g^((q-1)/order) for a generator candidate g; its order is ``order`` iff x^(order/2) = -1.

    Raises:
        ParameterError: if ``order`` does not divide q - 1.
    """
    if (q - 1) % order:
        raise ParameterError(f"{order} does not divide q - 1 for q = {q}")
    for g in range(2, q):
        x = pow(g, (q - 1) // order, q)
        if pow(x, order // 2, q) == q - 1:
            return x
    raise ParameterError(f"no primitive {order}-th root of unity modulo {q}")


@cache
def minimal_primitive_root(order: int, q: int) -> int:
    """The smallest primitive ``order``-th root of unity mod q (canonical, so every run builds the same NTT)."""
    root = primitive_root_of_unity(order, q)
    best, x, square = root, root, root * root % q
    for _ in range(order // 2):  # the primitive roots are root^odd
        x = x * square % q
        best = min(best, x)
    return best
