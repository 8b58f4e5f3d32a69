"""CKKS parameters: a literal the user writes, validated once into an immutable object.

The chain Q = q_0 * ... * q_L holds the message: each rescale divides away the last prime, and the primes left at
the bottom keep the integer part. P = p_0 * ... * p_{K-1} are the special primes of hybrid key switching
(Han-Ki, CT-RSA 2020). Security: log2(Q*P) must not exceed the Homomorphic Encryption Standard's bound for a
uniform ternary secret (Albrecht et al., 2018, Table 1).
"""

from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass
from functools import cached_property

from .errors import ParameterError
from .ring.primes import ntt_primes

# Max log2(Q*P) per ring degree for a uniform ternary secret, classical attacks (HE Standard, Table 1).
HE_STANDARD_MAX_LOG_QP: dict[int, dict[int, int]] = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}
MIN_RING_DEGREE, MAX_RING_DEGREE = 16, 1 << 16


def _is_integer(value: object) -> bool:
    """An integer (Python or numpy), not a bool, a float or a string that would convert to one."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _bit_sizes(name: str, sizes: object) -> tuple[int, ...]:
    """``sizes`` as a tuple of ints, or ParameterError: a truncating int() would hide 40.5 or '40'."""
    if isinstance(sizes, str | bytes) or not isinstance(sizes, tuple | list):
        raise ParameterError(f"{name} must be a list of prime bit sizes, got {sizes!r}")
    bad = [b for b in sizes if not _is_integer(b)]
    if bad:
        raise ParameterError(f"{name}: every prime bit size must be an integer, got {bad[0]!r}")
    return tuple(int(b) for b in sizes)


@dataclass(frozen=True)
class Parameters:
    """Validated, immutable CKKS parameters.

    Args:
        ring_degree: N, a power of two in [16, 65536]; the ring is Z[X]/(X^N + 1), with N/2 complex slots.
        moduli_bits: bit sizes of q_0..q_L (L + 1 primes; fresh ciphertexts are at level L).
        special_moduli_bits: bit sizes of the special primes P used only inside key switching.
        scale_bits: log2 of the default scale Delta.
        security: 128, 192 or 256 (checked against the HE Standard), or None for insecure toy parameters
            (teaching only: nothing is checked).
        key_switch_digits: dnum, the number of digits the modulus is split into for key switching
            (default: ceil((L + 1) / K) so that each digit is at most as large as P).

    Raises:
        ParameterError: malformed sizes, or log2(QP) above the security bound.
    """

    ring_degree: int
    moduli_bits: tuple[int, ...]
    special_moduli_bits: tuple[int, ...] = (60,)
    scale_bits: int = 40
    security: int | None = 128
    key_switch_digits: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "moduli_bits", _bit_sizes("moduli_bits", self.moduli_bits))
        object.__setattr__(self, "special_moduli_bits", _bit_sizes("special_moduli_bits", self.special_moduli_bits))
        for name in ("scale_bits", "security", "key_switch_digits"):
            value = getattr(self, name)
            if not (_is_integer(value) or (value is None and name != "scale_bits")):
                raise ParameterError(f"{name} must be an integer, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, int(value))
        n = self.ring_degree
        if not _is_integer(n) or n < MIN_RING_DEGREE or n > MAX_RING_DEGREE or n & (n - 1):
            raise ParameterError(f"ring_degree must be a power of two in [{MIN_RING_DEGREE}, {MAX_RING_DEGREE}],"
                                 f" got {n!r}")
        object.__setattr__(self, "ring_degree", int(n))
        if not self.moduli_bits:
            raise ParameterError("moduli_bits is empty: at least one prime (q_0) is needed")
        if not self.special_moduli_bits:
            raise ParameterError("special_moduli_bits is empty: key switching needs at least one special prime")
        for b in self.moduli_bits + self.special_moduli_bits:
            if not 20 <= b <= 61:
                raise ParameterError(f"prime bit size {b} is outside [20, 61]")
        if not 10 <= self.scale_bits <= 60:
            raise ParameterError(f"scale_bits {self.scale_bits} is outside [10, 60]")
        if max(self.moduli_bits[1:], default=self.moduli_bits[0]) < self.scale_bits - 1 and len(self.moduli_bits) > 1:
            raise ParameterError(f"scale 2^{self.scale_bits} is larger than the rescaling primes "
                                 f"{self.moduli_bits[1:]}: each rescale would shrink the scale")
        if sum(self.moduli_bits) <= self.scale_bits:
            raise ParameterError(f"the chain {self.moduli_bits} has no more bits than the scale 2^{self.scale_bits}:"
                                 " a fresh ciphertext could not hold even the value 1; add primes or lower the scale")
        digits = self.digits
        if not 1 <= digits <= len(self.moduli_bits):
            raise ParameterError(f"key_switch_digits must be in [1, {len(self.moduli_bits)}], got {digits}")
        self._primes  # generate the primes now: a chain that cannot exist is refused at construction
        self._check_security()

    def _check_security(self) -> None:
        if self.security is None:
            return
        table = HE_STANDARD_MAX_LOG_QP.get(self.security)
        if table is None:
            raise ParameterError(f"security must be 128, 192, 256 or None (insecure toy), got {self.security!r}")
        bound = table.get(self.ring_degree)
        if bound is None:
            raise ParameterError(f"the HE Standard has no {self.security}-bit bound for N = {self.ring_degree} "
                                 f"(it covers N = 1024..32768); use one of those, or security=None for a toy")
        if self.log_qp > bound:
            raise ParameterError(
                f"log2(QP) = {self.log_qp:.1f} exceeds the HE Standard's {bound} bits for {self.security}-bit "
                f"security at N = {self.ring_degree}: use fewer/smaller primes or a larger ring_degree "
                f"(or security=None for insecure toy parameters)")

    @cached_property
    def _primes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        taken: set[int] = set()
        by_bits: dict[int, list[int]] = {}
        counts: dict[int, int] = {}
        for b in self.moduli_bits + self.special_moduli_bits:
            counts[b] = counts.get(b, 0) + 1
        for b, c in counts.items():
            by_bits[b] = ntt_primes(b, self.ring_degree, c, frozenset(taken))
            taken.update(by_bits[b])
        take = {b: iter(v) for b, v in by_bits.items()}
        moduli = tuple(next(take[b]) for b in self.moduli_bits)
        special = tuple(next(take[b]) for b in self.special_moduli_bits)
        return moduli, special

    @property
    def moduli(self) -> tuple[int, ...]:
        """The primes q_0..q_L of the ciphertext modulus chain."""
        return self._primes[0]

    @property
    def special_moduli(self) -> tuple[int, ...]:
        """The special primes p_0..p_{K-1} (key switching only)."""
        return self._primes[1]

    @property
    def max_level(self) -> int:
        """L: the level of a fresh ciphertext (the number of rescales it can take)."""
        return len(self.moduli_bits) - 1

    @property
    def slots(self) -> int:
        """N/2: the number of complex values one ciphertext holds."""
        return self.ring_degree // 2

    @property
    def scale(self) -> float:
        """The default scale Delta = 2^scale_bits."""
        return float(2**self.scale_bits)

    @property
    def log_qp(self) -> float:
        """log2(Q * P) of the actual primes: the figure the security table bounds."""
        return sum(math.log2(q) for q in self.moduli + self.special_moduli)

    @property
    def digits(self) -> int:
        """dnum: how many digits the key-switching gadget splits Q into."""
        if self.key_switch_digits is not None:
            return int(self.key_switch_digits)
        return math.ceil(len(self.moduli_bits) / len(self.special_moduli_bits))

    @property
    def digit_size(self) -> int:
        """alpha: primes per digit (the last digit may be shorter)."""
        return math.ceil(len(self.moduli_bits) / self.digits)

    @cached_property
    def fingerprint(self) -> str:
        """A short hash identifying these parameters (serialized objects carry it; every operation checks
        it, so it is computed once)."""
        text = f"{self.ring_degree}|{self.moduli}|{self.special_moduli}|{self.scale_bits}|{self.digits}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """A one-paragraph human summary: N, slots, chain, log QP against the security bound."""
        sec = "insecure toy (security=None)" if self.security is None else (
            f"{self.security}-bit (bound {HE_STANDARD_MAX_LOG_QP[self.security][self.ring_degree]})")
        return (f"N = {self.ring_degree} ({self.slots} slots), chain {list(self.moduli_bits)} bits + special "
                f"{list(self.special_moduli_bits)}, scale 2^{self.scale_bits}, log2(QP) = {self.log_qp:.1f}, "
                f"{sec}, key switching with {self.digits} digit(s)")
