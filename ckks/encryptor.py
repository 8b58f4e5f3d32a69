"""Encryption with the public or the secret key, and decryption (CKKS 2017, section 3.4).

Public key (b, a):  ct = (u*b + e_0, u*a + e_1) / P + (m, 0) with u ternary, e_0, e_1 Gaussian, the
                    product taken over Q*P and divided by P (as SEAL does) to shrink the noise.
Secret key s:       ct = (-a*s + e + m, a) with a uniform.
Decryption:         m' = c_0 + c_1 s (+ c_2 s^2) mod Q_l = m + noise.
"""

from __future__ import annotations

import numpy as np

from . import rns
from .basis_conversion import mod_down
from .ciphertext import Ciphertext, Plaintext
from .errors import ParameterError
from .keys import PublicKey, SecretKey
from .params import Parameters
from .sampling import RandomSource, gaussian, ternary, uniform_mod


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
        """A fresh encryption of ``pt`` at the plaintext's level and scale.

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
        return Ciphertext(np.stack([c0, c1]), pt.level, pt.scale, self.params.fingerprint)


class Decryptor:
    """Decrypts with the secret key: m' = sum_i c_i s^i mod Q_l."""

    def __init__(self, params: Parameters, secret_key: SecretKey) -> None:
        if not isinstance(secret_key, SecretKey):
            raise ParameterError(f"Decryptor needs the SecretKey, got {type(secret_key).__name__}")
        _check_fingerprint(secret_key.fingerprint, params, "the secret key")
        self.params, self.secret_key = params, secret_key

    def decrypt(self, ct: Ciphertext) -> Plaintext:
        """The plaintext m + e of ``ct`` (any size), at the ciphertext's level and scale.

        Raises:
            ParameterError: if the ciphertext belongs to other parameters.
        """
        if not isinstance(ct, Ciphertext):
            raise ParameterError(f"decrypt expects a Ciphertext, got {type(ct).__name__}")
        _check_fingerprint(ct.fingerprint, self.params, "the ciphertext")
        rows = ct.level + 1
        basis = rns.rns_basis(self.params.moduli[:rows], self.params.ring_degree)
        s = self.secret_key.ntt[:rows]
        acc = ct.data[ct.size - 1].copy()
        for i in range(ct.size - 2, -1, -1):  # Horner: ((c_k s + c_{k-1}) s + ...) + c_0
            acc = rns.add(rns.mul(acc, s, basis), ct.data[i], basis)
        return Plaintext(acc, ct.level, ct.scale, self.params.fingerprint)
