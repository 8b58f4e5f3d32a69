"""Encoding real or complex vectors into plaintexts and back (CKKS 2017, section 3.3).

encode: z (up to N/2 values, zero-padded to N/2 slots) -> m = round(Delta * sigma^-1(z)), reduced into the RNS
        primes of the chosen level and put in NTT form.
decode: m -> sigma(m) / Delta, with m reconstructed exactly from its residues (centered CRT).

The N/2 slots are complex. A complex input array tags the plaintext ``complex_slots`` and decodes to
complex128; a real one decodes to float64, the real parts (its imaginary parts are only noise around 0).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..errors import LevelMismatchError, ParameterError, ValueRangeError
from ..params import Parameters
from ..ring import rns
from ..ring.basis_conversion import crt_to_float
from ..rlwe.ciphertext import Plaintext
from .embedding import embed, embed_inverse

# Coefficients below this bound are converted through int64; larger ones (large scales) mantissa by mantissa.
_INT64_SAFE = 2.0**62


class Encoder:
    """Encodes vectors of up to N/2 real or complex numbers into plaintexts at any level and scale."""

    def __init__(self, params: Parameters) -> None:
        self.params = params

    def encode(self, values: npt.ArrayLike, level: int | None = None, scale: float | None = None) -> Plaintext:
        """m = round(scale * sigma^-1(z)) mod Q_level, in NTT form; slots past len(values) hold 0.

        ``values`` real or complex. The dtype decides how the plaintext decodes: a complex dtype (a numpy
        complex array, or Python complex numbers) tags it ``complex_slots`` and ``decode`` returns complex128,
        even when every imaginary part is 0 (``[1 + 0j]`` is complex); any real dtype decodes to float64.

        Raises:
            ValueRangeError: values not finite, more than N/2 of them, or too large for scale and Q_level.
            LevelMismatchError: level outside [0, max_level].
            ParameterError: scale not a positive finite number.
        """
        p = self.params
        level = p.max_level if level is None else level
        scale = p.scale if scale is None else float(scale)
        if not isinstance(level, (int, np.integer)) or not 0 <= level <= p.max_level:
            raise LevelMismatchError(f"encode: level {level!r} is outside [0, {p.max_level}]")
        if not math.isfinite(scale) or scale <= 0:
            raise ParameterError(f"encode: scale must be a positive finite number, got {scale!r}")
        z = np.asarray(values)
        if z.dtype == object or not (np.issubdtype(z.dtype, np.number) or z.dtype == bool):
            raise ValueRangeError(f"encode: values must be numbers, got dtype {z.dtype}")
        complex_slots = bool(np.iscomplexobj(z))
        z = np.atleast_1d(z).astype(np.complex128).ravel()
        if z.size > p.slots:
            raise ValueRangeError(f"encode: {z.size} values do not fit in {p.slots} slots (N/2)")
        if not np.all(np.isfinite(z)):
            raise ValueRangeError("encode: values contain NaN or infinity")
        padded = np.zeros(p.slots, dtype=np.complex128)
        padded[: z.size] = z
        with np.errstate(over="ignore"):  # an overflow to inf is caught just below as out of range
            coeffs = embed_inverse(padded, ring_degree=p.ring_degree) * scale
        basis = rns.rns_basis(p.moduli[: level + 1], p.ring_degree)
        biggest = float(np.max(np.abs(coeffs), initial=0.0))
        limit = basis.product / 2
        if not biggest < limit / 2:  # (inf or NaN too) keep a factor 2 of headroom for the noise and additions
            raise ValueRangeError(
                f"encode: values up to {np.max(np.abs(z)):.4g} at scale 2^{math.log2(scale):.1f} need "
                f"coefficients of 2^{math.log2(biggest):.1f}, but level {level} holds only "
                f"2^{math.log2(limit) - 1:.1f}: lower the scale, encode at a higher level, or scale the inputs down")
        rounded = np.rint(coeffs)
        residues = (rns.from_signed(rounded.astype(np.int64), basis) if biggest < _INT64_SAFE
                    else rns.from_float_integers(rounded, basis))
        return Plaintext(rns.to_ntt(residues, basis), int(level), scale, p.fingerprint, complex_slots)

    def decode(self, pt: Plaintext, complex_values: bool = False) -> np.ndarray:
        """z = sigma(m) / scale for all N/2 slots: complex128 if ``pt.complex_slots`` or ``complex_values``,
        else float64 Re(z).

        A plaintext of real slots (encoded from real values, and every operand since real) holds Re(z) = the
        values and Im(z) = noise around 0, so its real parts are returned; ``complex_values=True`` returns z
        anyway (to look at that noise). A complex plaintext always decodes to z: nothing is dropped.

        Raises:
            ParameterError: if ``pt`` is not a Plaintext of these parameters.
        """
        if not isinstance(pt, Plaintext):
            raise ParameterError(f"decode expects a Plaintext (decrypt the ciphertext first), got {type(pt).__name__}")
        if pt.fingerprint != self.params.fingerprint:
            raise ParameterError("decode: the plaintext was made with other parameters")
        moduli = self.params.moduli[: pt.level + 1]
        coeffs = rns.from_ntt(pt.data, rns.rns_basis(moduli, self.params.ring_degree))
        slots = embed(crt_to_float(coeffs, moduli) / pt.scale)
        return slots if complex_values or pt.complex_slots else slots.real.copy()
