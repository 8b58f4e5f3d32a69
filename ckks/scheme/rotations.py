"""Automorphisms of ciphertexts: slot rotations and complex conjugation (CKKS 2017, section 4.2).

c(X) -> c(X^g) permutes the slots (g = 5^k mod 2N rotates them by k, g = 2N - 1 conjugates them) and leaves a
ciphertext under the key s(X^g); key switching with the Galois key of g brings it back under s:
(c0(X^g), c1(X^g)) -> (c0(X^g) + u0, u1), (u0, u1) = KeySwitch_{s(X^g) -> s}(c1(X^g)).

``Rotations`` holds these methods of ``Evaluator``, which inherits them (as ``DotProducts``); they use its
checks (``_one_level``), its bases (``_basis``), its prepared Galois keys (``_galois``) and its result
constructor (``_new``).
"""

from __future__ import annotations

import numpy as np

from ..errors import MissingKeyError, ParameterError
from ..ring import automorphism, rns
from ..rlwe.ciphertext import Ciphertext
from ..rlwe.keys import generating_call
from ..rlwe.keyswitch import key_switch, prepare_key


class Rotations:
    """The automorphism methods of ``Evaluator`` (see the module docstring)."""

    def _apply_galois(self, cts: list[Ciphertext], galois: int, op: str) -> list[Ciphertext]:
        """c(X) -> c(X^galois) then KeySwitch back to s, for ciphertexts at one level (key switched together)."""
        level = self._one_level(op, cts)
        if any(a.size != 2 for a in cts):
            raise ParameterError(f"{op}: operand has size {max(a.size for a in cts)}; relinearize first")
        if self.galois_keys is None:
            raise MissingKeyError(f"{op}: this Evaluator has no Galois keys; pass galois_keys="
                                  f"{generating_call(galois, self.params.ring_degree)} when creating it")
        if galois not in self._galois:  # a key added to galois_keys after this Evaluator was made
            self._galois[galois] = prepare_key(self.galois_keys.key_for(galois, op), self.params)
        key = self._galois[galois]
        n = self.params.ring_degree
        basis = self._basis(level)
        c1s = np.empty((len(cts), level + 1, n), dtype=np.uint64)  # one array, which key switching reads
        for a, c1 in zip(cts, c1s, strict=True):
            automorphism.apply_ntt(a.data[1], galois, n, out=c1)
        switched = key_switch(c1s, level, key, self.params)  # (u0, u1) of each: the result is (c0' + u0, u1)
        for a, u in zip(cts, switched, strict=True):
            rns.add(automorphism.apply_ntt(a.data[0], galois, n), u[0], basis, out=u[0])
        return [self._new(u, level, a.scale, a.complex_slots) for a, u in zip(cts, switched, strict=True)]

    def rotate(self, a: Ciphertext, step: int) -> Ciphertext:
        """Rotate the N/2 slots left by ``step`` (right if negative): slot i gets slot (i + step) mod N/2.

        Raises:
            MissingKeyError: if there is no Galois key for this step (the message lists those that exist).
        """
        return self._rotate([a], step, "rotate")[0]

    def rotate_many(self, cts: list[Ciphertext], step: int) -> list[Ciphertext]:
        """``rotate`` of every ciphertext (all at one level) by the same step, their key switches in one
        pass (as in ``relinearize_and_rescale_many``).

        Raises:
            as ``rotate``, and LevelMismatchError for ciphertexts at different levels.
        """
        return self._rotate(cts, step, "rotate_many")

    def _rotate(self, cts: list[Ciphertext], step: int, op: str) -> list[Ciphertext]:
        if not isinstance(step, (int, np.integer)):
            raise ParameterError(f"{op}: step {step!r} is not an integer")
        if step % self.params.slots == 0:
            self._one_level(op, cts)
            return [a.copy() for a in cts]
        return self._apply_galois(cts, automorphism.galois_element(int(step), self.params.ring_degree),
                                  f"{op} by {step}")

    def conjugate(self, a: Ciphertext) -> Ciphertext:
        """Complex-conjugate every slot: c(X) -> c(X^(2N-1)), then key switching from s(X^(2N-1)) back to s.

        X^(2N-1) = X^-1 sends zeta^(5^j) to its conjugate, and m has integer coefficients, so
        m(X^-1) at zeta^(5^j) is conj(m(zeta^(5^j))): slot j becomes conj(z_j) (CKKS 2017, section 4.2).

        Raises:
            MissingKeyError: if the Galois keys lack the conjugation key (make it with
                KeyGenerator.galois_keys(conjugate=True)).
        """
        return self._apply_galois([a], automorphism.conjugation_element(self.params.ring_degree), "conjugate")[0]
