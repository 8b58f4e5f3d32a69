"""Encryption with the public or the secret key, and decryption (CKKS 2017, section 3.4).

Public key (b, a):  ct = (u*b + e_0, u*a + e_1) / P + (m, 0) with u ternary, e_0, e_1 Gaussian, the
                    product taken over Q*P and divided by P (as SEAL does) to shrink the noise.
Secret key s:       ct = (-a*s + e + m, a) with a uniform.
Decryption:         m' = c_0 + c_1 s (+ c_2 s^2) mod Q_l = m + noise.
Noise flooding:     m' + f, f a fresh rounded Gaussian of standard deviation 2^flood_bits (optional; against
                    the Li-Micciancio key recovery from shared decryptions, EUROCRYPT 2021, IND-CPA-D).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError, ValueRangeError
from ..params import Parameters
from ..ring import rns
from ..ring.basis_conversion import mod_down
from ..ring.sampling import RandomSource, gaussian, ternary, uniform_mod
from .ciphertext import Ciphertext, Plaintext
from .keys import PublicKey, SecretKey


def _check_fingerprint(obj_fp: str, params: Parameters, what: str) -> None:
    if obj_fp != params.fingerprint:
        raise ParameterError(f"{what} was made with other parameters (fingerprint {obj_fp}, these parameters "
                             f"{params.fingerprint}): use the parameters it came from")


class Encryptor:
    """Encrypts plaintexts under a public key (anyone) or a secret key (the key owner; smaller noise).

    ``seed`` is for TESTS ONLY (reproducible masks and errors, not cryptographically secure).
    """

    def __init__(self, params: Parameters, key: PublicKey | SecretKey, seed: int | None = None) -> None:
        if not isinstance(key, (PublicKey, SecretKey)):
            raise ParameterError(f"Encryptor needs a PublicKey or SecretKey, got {type(key).__name__}")
        _check_fingerprint(key.fingerprint, params, "the key")
        self.params, self.key = params, key
        self._random = RandomSource(seed)

    def _small_ntt(self, values: np.ndarray, basis: rns.RnsBasis) -> np.ndarray:
        return rns.to_ntt(rns.from_signed(values, basis), basis)

    def encrypt(self, pt: Plaintext) -> Ciphertext:
        """A fresh encryption of ``pt`` at the plaintext's level and scale (its slots complex if pt's are).

        Raises:
            ParameterError: if the plaintext belongs to other parameters.
        """
        if not isinstance(pt, Plaintext):
            raise ParameterError(f"encrypt expects a Plaintext (use Encoder.encode first), got {type(pt).__name__}")
        _check_fingerprint(pt.fingerprint, self.params, "the plaintext")
        n, rows = self.params.ring_degree, pt.level + 1
        basis = rns.rns_basis(self.params.moduli[:rows], n)
        if isinstance(self.key, PublicKey):
            # Over Q_l * P, then divided by P: the noise u*e + e_0 shrinks by P to about the rounding error.
            n_all = len(self.params.moduli)
            key_rows = np.r_[0:rows, n_all : n_all + len(self.params.special_moduli)]
            special = rns.rns_basis(self.params.special_moduli, n)
            qp = rns.rns_basis(basis.moduli + special.moduli, n)
            u = self._small_ntt(ternary(self._random, n), qp)
            c0 = rns.add(rns.mul(u, self.key.data[0, key_rows], qp), self._small_ntt(gaussian(self._random, n), qp), qp)
            c1 = rns.add(rns.mul(u, self.key.data[1, key_rows], qp), self._small_ntt(gaussian(self._random, n), qp), qp)
            c0 = rns.add(mod_down(c0, basis, special), pt.data, basis)
            c1 = mod_down(c1, basis, special)
        else:
            e0 = self._small_ntt(gaussian(self._random, n), basis)
            c1 = uniform_mod(self._random, basis.moduli, n)
            c0 = rns.add(rns.sub(e0, rns.mul(c1, self.key.ntt[:rows], basis), basis), pt.data, basis)
        return Ciphertext(np.stack([c0, c1]), pt.level, pt.scale, self.params.fingerprint, pt.complex_slots)


class Decryptor:
    """Decrypts with the secret key: m' = sum_i c_i s^i mod Q_l."""

    def __init__(self, params: Parameters, secret_key: SecretKey) -> None:
        if not isinstance(secret_key, SecretKey):
            raise ParameterError(f"Decryptor needs the SecretKey, got {type(secret_key).__name__}")
        _check_fingerprint(secret_key.fingerprint, params, "the secret key")
        self.params, self.secret_key = params, secret_key

    def decrypt(self, ct: Ciphertext, flood_bits: float | None = None) -> Plaintext:
        """The plaintext m + e of ``ct`` (any size), at its level and scale (slots complex if ct's are).

        ``flood_bits``: noise flooding (Li-Micciancio, EUROCRYPT 2021). The decryption m + e exposes the error
        e, a function of the secret key: whoever sees decrypted values can use them to recover the key.
        With ``flood_bits = b``, a fresh noise f (each coefficient round(2^b * z), z standard normal by
        Box-Muller on 53-bit uniforms from the OS CSPRNG, so |z| < 8.6) is added and m + e + f returned. Each
        decoded slot then carries an extra error of standard deviation about 2^b * sqrt(N/2) / scale. Choose b
        above log2 of the ciphertext's own error (SECURITY.md gives the margin and the measured precision
        cost).

        Raises:
            ParameterError: if the ciphertext belongs to other parameters, or ``flood_bits`` is not a finite
                number >= 0.
            ValueRangeError: if 2^flood_bits is so large that the flooded coefficients could wrap modulo Q_l.
        """
        if not isinstance(ct, Ciphertext):
            raise ParameterError(f"decrypt expects a Ciphertext, got {type(ct).__name__}")
        _check_fingerprint(ct.fingerprint, self.params, "the ciphertext")
        rows = ct.level + 1
        basis = rns.rns_basis(self.params.moduli[:rows], self.params.ring_degree)
        if flood_bits is not None:
            flood = self._flooding_noise(flood_bits, basis, ct.level)
        s = self.secret_key.ntt[:rows]
        acc = ct.data[ct.size - 1].copy()
        for i in range(ct.size - 2, -1, -1):  # Horner: ((c_k s + c_{k-1}) s + ...) + c_0
            acc = rns.add(rns.mul(acc, s, basis), ct.data[i], basis)
        if flood_bits is not None:
            acc = rns.add(acc, flood, basis)
        return Plaintext(acc, ct.level, ct.scale, self.params.fingerprint, ct.complex_slots)

    def _flooding_noise(self, flood_bits: float, basis: rns.RnsBasis, level: int) -> np.ndarray:
        """f = round(2^b * z), z ~ N(0, 1) per coefficient (Box-Muller, OS CSPRNG), NTT form over Q_level."""
        if isinstance(flood_bits, bool) or not isinstance(flood_bits, (int, float, np.integer, np.floating)):
            raise ParameterError(f"decrypt: flood_bits must be a number of bits, got {flood_bits!r}")
        if not math.isfinite(flood_bits) or flood_bits < 0:
            raise ParameterError(f"decrypt: flood_bits must be finite and >= 0, got {flood_bits!r}")
        log_q = math.log2(basis.product)
        if flood_bits + 4 > log_q - 2:  # |f| < 8.6 * 2^b < 2^(b + 4) must stay below Q_l / 4
            raise ValueRangeError(f"decrypt: flooding noise of 2^{flood_bits:g} could wrap modulo Q_{level} "
                                  f"(2^{log_q:.1f}); use flood_bits <= {log_q - 6:.1f}, or decrypt at a "
                                  "higher level")
        random = RandomSource()  # always the OS CSPRNG: a seeded flood would hide nothing
        n = self.params.ring_degree
        u1, u2 = 1.0 - random.unit_floats(n), random.unit_floats(n)  # u1 in (0, 1]: the log is finite
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return rns.to_ntt(rns.from_float_integers(np.rint(z * 2.0**flood_bits), basis), basis)
