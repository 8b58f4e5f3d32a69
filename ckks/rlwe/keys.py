"""Key generation: secret, public, relinearization and Galois keys (hybrid key switching).

Secret s: uniform ternary. Public key (b, a) = (-a*s + e, a) mod Q. A switching key from s' to s is, for each
digit j of the gadget decomposition (Han-Ki, CT-RSA 2020, section 3),
    k_j = (-a_j * s + e_j + P * g_j * s',  a_j)  mod Q*P,
where g_j = 1 modulo the primes of digit j and 0 modulo every other prime. The relinearization key switches
from s' = s^2, the Galois key of g from s' = s(X^g). None of these objects contains s itself, except
``SecretKey``, which the client keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MissingKeyError, ParameterError
from ..params import Parameters
from ..progress import Progress
from ..ring import automorphism, rns
from ..ring.sampling import GAUSSIAN_BOUND, RandomSource, gaussian, ternary, uniform_mod


@dataclass
class SecretKey:
    """s as ternary coefficients (int8, N) and in NTT form over Q*P ((L + 1 + K), N). Client side only."""

    coefficients: np.ndarray
    ntt: np.ndarray
    fingerprint: str

    def __repr__(self) -> str:  # never print the key
        return f"SecretKey(N={self.coefficients.size}, fingerprint={self.fingerprint})"


@dataclass
class PublicKey:
    """(b, a) = (-a*s + e, a) over Q*P, NTT form, shape (2, L + 1 + K, N)."""

    data: np.ndarray
    fingerprint: str


@dataclass
class SwitchingKey:
    """Digits of a key switching from s' to s: shape (digits, 2, L + 1 + K, N), NTT form over Q*P."""

    data: np.ndarray
    fingerprint: str


@dataclass
class RelinKey:
    """The switching key from s^2 to s."""

    key: SwitchingKey


@dataclass
class GaloisKeys:
    """Switching keys from s(X^g) to s, one per Galois element g."""

    keys: dict[int, SwitchingKey] = field(default_factory=dict)
    ring_degree: int = 0

    def key_for(self, galois: int, what: str) -> SwitchingKey:
        """The key of Galois element g.

        Raises:
            MissingKeyError: naming the operation, the rotation steps that do have keys, and the
                ``KeyGenerator.galois_keys`` call that makes the missing one.
        """
        if galois not in self.keys:
            steps = self.steps()
            kind = ("no conjugation key" if galois == automorphism.conjugation_element(self.ring_degree)
                    else "no Galois key")
            raise MissingKeyError(f"{what}: {kind} for element {galois}; keys exist for rotation steps "
                                  f"{steps}{' and conjugation' if self.has_conjugation() else ''}. "
                                  f"Generate it with {generating_call(galois, self.ring_degree, steps)}")
        return self.keys[galois]

    def steps(self) -> list[int]:
        """The rotation steps (in [0, N/2)) that have a key."""
        slots = self.ring_degree // 2
        found = [k for k in range(slots) if automorphism.galois_element(k, self.ring_degree) in self.keys]
        return found

    def has_conjugation(self) -> bool:
        """Whether the conjugation key is present."""
        return automorphism.conjugation_element(self.ring_degree) in self.keys


def generating_call(galois: int, ring_degree: int, steps: list[int] | None = None) -> str:
    """The ``KeyGenerator.galois_keys`` call that makes the key of Galois element g, for an error message:
    ``conjugate=True`` for g = 2N - 1 (keeping the rotation ``steps`` already held), ``steps=[...]`` else."""
    if galois == automorphism.conjugation_element(ring_degree):
        return f"KeyGenerator.galois_keys({f'steps={steps}, ' if steps else ''}conjugate=True)"
    return "KeyGenerator.galois_keys(steps=[...])"


class KeyGenerator:
    """Samples a secret key and derives the public and evaluation keys from it.

    ``seed`` makes every key reproducible and is for TESTS ONLY (numpy PCG64, not a CSPRNG); by default the
    randomness comes from the operating system's CSPRNG.
    """

    def __init__(self, params: Parameters, seed: int | None = None, quiet: bool = True) -> None:
        self.params = params
        self.quiet = quiet
        self._random = RandomSource(seed)
        self._qp = rns.rns_basis(params.moduli + params.special_moduli, params.ring_degree)
        s = ternary(self._random, params.ring_degree)
        s_ntt = rns.to_ntt(rns.from_signed(s, self._qp), self._qp)
        self.secret_key = SecretKey(s.astype(np.int8), s_ntt, params.fingerprint)

    def _error_ntt(self, basis: rns.RnsBasis) -> np.ndarray:
        return rns.to_ntt(rns.from_signed(gaussian(self._random, self.params.ring_degree), basis), basis)

    def public_key(self) -> PublicKey:
        """(b, a) = (-a*s + e, a) mod Q*P (CKKS 2017, KeyGen; over Q*P so encryption can divide its noise by P)."""
        a = uniform_mod(self._random, self._qp.moduli, self.params.ring_degree)
        b = rns.sub(self._error_ntt(self._qp), rns.mul(a, self.secret_key.ntt, self._qp), self._qp)
        return PublicKey(np.stack([b, a]), self.params.fingerprint)

    def switching_key(self, s_from_ntt: np.ndarray) -> SwitchingKey:
        """Digits k_j = (-a_j s + e_j + P g_j s', a_j) over QP for s' given in NTT form over QP."""
        p = self.params
        n_q, digits, alpha = len(p.moduli), p.digits, p.digit_size
        p_prod = 1
        for pk in p.special_moduli:
            p_prod *= pk
        out = np.empty((digits, 2, len(self._qp), p.ring_degree), dtype=np.uint64)
        for j in range(digits):
            a = uniform_mod(self._random, self._qp.moduli, p.ring_degree)
            b = rns.sub(self._error_ntt(self._qp), rns.mul(a, self.secret_key.ntt, self._qp), self._qp)
            for i in range(j * alpha, min((j + 1) * alpha, n_q)):  # P * g_j * s' lives only on digit j's primes
                one = rns.rns_basis((p.moduli[i],), p.ring_degree)
                gadget = rns.mul_scalar(s_from_ntt[i : i + 1], rns.scalar_residues(p_prod, one), one)
                b[i : i + 1] = rns.add(b[i : i + 1], gadget, one)
            out[j, 0], out[j, 1] = b, a
        return SwitchingKey(out, p.fingerprint)

    def relin_key(self) -> RelinKey:
        """The key that turns (c0, c1, c2) under (1, s, s^2) into (c0', c1') under (1, s)."""
        s2 = rns.mul(self.secret_key.ntt, self.secret_key.ntt, self._qp)
        return RelinKey(self.switching_key(s2))

    def galois_keys(self, steps: list[int] | tuple[int, ...] = (), conjugate: bool = False) -> GaloisKeys:
        """Keys for rotations by each of ``steps`` (left; negative = right) and optionally conjugation.

        Raises:
            ParameterError: if a step is not an integer.
        """
        n = self.params.ring_degree
        elements = []
        for step in steps:
            if not isinstance(step, (int, np.integer)):
                raise ParameterError(f"rotation step {step!r} is not an integer")
            if step % (n // 2):
                elements.append(automorphism.galois_element(int(step), n))
        if conjugate:
            elements.append(automorphism.conjugation_element(n))
        keys = GaloisKeys(ring_degree=n)
        with Progress("Galois keys", len(set(elements)), enabled=False if self.quiet else None) as bar:
            for g in sorted(set(elements)):
                s_g = automorphism.apply_ntt(self.secret_key.ntt, g, n)
                keys.keys[g] = self.switching_key(s_g)
                bar.advance()
        return keys


def made_from(secret_key: SecretKey, public_key: PublicKey, relin_key: RelinKey, params: Parameters) -> bool:
    """Whether the public key and the relinearization key were generated from ``secret_key``.

    KeyGen leaves b + a*s = e for the public key and b_0 + a_0*s - P*s^2 = e_0 for digit 0 of the
    relinearization key (its gadget is 1 modulo q_0), with every |e_i| <= 20, the Gaussian's tail cut. Under
    another secret s' both sides gain a*(s' - s), uniform modulo q_0: all N coefficients would have to fall in
    [-20, 20] by chance, probability (41 / q_0)^N. Checked modulo q_0 only: two NTT products.
    """
    q0 = rns.rns_basis(params.moduli[:1], params.ring_degree)
    s = secret_key.ntt[:1]
    p_prod = 1
    for p in params.special_moduli:
        p_prod *= p
    public_error = rns.add(public_key.data[0, :1], rns.mul(public_key.data[1, :1], s, q0), q0)
    digit = relin_key.key.data[0]
    s_squared_times_p = rns.mul_scalar(rns.mul(s, s, q0), rns.scalar_residues(p_prod, q0), q0)
    relin_error = rns.sub(rns.add(digit[0, :1], rns.mul(digit[1, :1], s, q0), q0), s_squared_times_p, q0)
    return _is_small(public_error, q0) and _is_small(relin_error, q0)


def _is_small(poly_ntt: np.ndarray, basis: rns.RnsBasis) -> bool:
    """Whether the polynomial (NTT form, one prime q) has every coefficient in [-bound, bound] modulo q."""
    bound = GAUSSIAN_BOUND
    q = np.uint64(basis.moduli[0])
    coefficients = rns.from_ntt(poly_ntt, basis)[0]
    return bool(np.all((coefficients <= bound) | (coefficients >= q - np.uint64(bound))))
