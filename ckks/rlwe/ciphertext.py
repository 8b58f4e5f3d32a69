"""Plaintexts and ciphertexts: RNS polynomials in NTT form that carry their level and exact scale.

A plaintext at level l is m(X) over Q_l = q_0 ... q_l, encoding values z as m ~ Delta * sigma^-1(z).
A ciphertext (c_0, ..., c_{k-1}) at level l decrypts to sum_i c_i * s^i = m + e (mod Q_l); a fresh or
relinearized one has two components, a product before relinearization three (CKKS 2017, section 3).
The scale is a float tracked exactly through every operation (Kim-Papadimitriou-Polyakov, CT-RSA 2022).

The N/2 slots are complex numbers. ``complex_slots`` says whether they carry complex values (the plaintext was
encoded from a complex array, or an operand of the operation was) or real ones (imaginary parts 0 up to the
noise); decoding returns complex or real numbers accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _slots_text(complex_slots: bool) -> str:
    return "complex" if complex_slots else "real"


@dataclass
class Plaintext:
    """An encoded message: ``data`` (level + 1, N) uint64 in NTT form, at ``level`` with ``scale``."""

    data: np.ndarray
    level: int
    scale: float
    fingerprint: str
    complex_slots: bool = False

    def __repr__(self) -> str:
        return (f"Plaintext(level={self.level}, scale=2^{np.log2(self.scale):.4f}, N={self.data.shape[-1]}, "
                f"slots={_slots_text(self.complex_slots)})")


@dataclass
class Ciphertext:
    """An encryption: ``data`` (size, level + 1, N) uint64 in NTT form, at ``level`` with ``scale``."""

    data: np.ndarray
    level: int
    scale: float
    fingerprint: str
    complex_slots: bool = False

    @property
    def size(self) -> int:
        """Number of polynomial components (2 after relinearization, 3 right after a product)."""
        return self.data.shape[0]

    def copy(self) -> Ciphertext:
        """A deep copy (the evaluator never mutates its inputs, but callers may)."""
        return Ciphertext(self.data.copy(), self.level, self.scale, self.fingerprint, self.complex_slots)

    def __repr__(self) -> str:
        return (f"Ciphertext(size={self.size}, level={self.level}, scale=2^{np.log2(self.scale):.4f}, "
                f"N={self.data.shape[-1]}, slots={_slots_text(self.complex_slots)})")
