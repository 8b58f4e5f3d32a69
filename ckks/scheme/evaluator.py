"""Homomorphic operations on ciphertexts (CKKS 2017, section 3.4; CHKKS 2018 for the RNS forms).

Every call checks its operands (same parameters, levels, scales) and raises an error that names the operation,
both levels and scales, and what to do. Inputs are never modified.

  add / sub:           (c + c') at equal level and scale; plaintexts and scalars likewise.
  multiply:            (c0, c1) x (c0', c1') = (c0 c0', c0 c1' + c1 c0', c1 c1'), scale Delta * Delta'.
  relinearize:         (d0, d1, d2) -> (d0, d1) + KeySwitch_{s^2 -> s}(d2).
  rescale:             c -> round(c / q_l) at level l - 1, scale Delta / q_l exactly (never snapped to 2^k).
  relinearize_and_rescale: both, with the two divisions (by P, then by q_l) done as one, by P * q_l.
  rotate(k):           c(X) -> c(X^(5^k)) then KeySwitch_{s(X^g) -> s}: slot i holds old slot i + k.
  ..._many:            relinearize, rescale, relinearize_and_rescale and rotate of a list of ciphertexts at
                       one level, in one pass (their transforms and products go to the threads together).
  dot / dot_many:      sum_t c_t * w_t with fixed (prepared) weights w_t, for one or many outputs at once,
                       dot_many optionally b_r + sum_t ... with a bias b_r per output
                       (``dot_products``, whose methods the Evaluator inherits).
  conjugate:           c(X) -> c(X^(2N-1)) then KeySwitch_{s(X^-1) -> s}: slot i holds conj(old slot i).
                       (rotate, rotate_many and conjugate: ``rotations``, inherited like ``dot_products``.)

Slots are complex: a result has ``complex_slots`` set when any operand has (scalar constants are real).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import (
    LevelMismatchError,
    MissingKeyError,
    OutOfLevelsError,
    ParameterError,
    ScaleMismatchError,
    ValueRangeError,
)
from ..params import Parameters
from ..ring import rns
from ..ring.basis_conversion import divide_by_last_prime, mod_down_and_rescale
from ..rlwe.ciphertext import Ciphertext, Plaintext
from ..rlwe.keys import GaloisKeys, RelinKey
from ..rlwe.keyswitch import PreparedKey, key_switch, key_switch_extended, prepare_key
from .dot_products import SCALE_TOLERANCE, DotProducts
from .rotations import Rotations


class Evaluator(DotProducts, Rotations):
    """Evaluates additions, products, rescales and rotations with the server's public evaluation keys."""

    def __init__(self, params: Parameters, relin_key: RelinKey | None = None,
                 galois_keys: GaloisKeys | None = None) -> None:
        for key, what in ((relin_key, "relin_key"), (galois_keys, "galois_keys")):
            if key is None:
                continue
            fingerprints = ([key.key.fingerprint] if isinstance(key, RelinKey)
                            else [k.fingerprint for k in key.keys.values()])
            if any(fp != params.fingerprint for fp in fingerprints):
                raise ParameterError(f"{what} was made with other parameters than this Evaluator's")
        self.params = params
        self.relin_key = relin_key
        self.galois_keys = galois_keys
        # Derived once: the keys with their Shoup companions (the form key switching multiplies by).
        self._relin = prepare_key(relin_key.key, params) if relin_key is not None else None
        galois = galois_keys.keys if galois_keys is not None else {}
        self._galois: dict[int, PreparedKey] = {g: prepare_key(k, params) for g, k in galois.items()}
        self._special = rns.rns_basis(params.special_moduli, params.ring_degree)  # P, the key switch's primes

    # ----- checks ---------------------------------------------------------------------------------------
    def _basis(self, level: int) -> rns.RnsBasis:
        return rns.rns_basis(self.params.moduli[: level + 1], self.params.ring_degree)

    def _check(self, op: str, *objs: Ciphertext | Plaintext) -> None:
        for o in objs:
            if not isinstance(o, (Ciphertext, Plaintext)):
                raise ParameterError(f"{op}: expected a Ciphertext or Plaintext, got {type(o).__name__}")
            if o.fingerprint != self.params.fingerprint:
                raise ParameterError(f"{op}: an operand was made with other parameters (fingerprint "
                                     f"{o.fingerprint}, evaluator {self.params.fingerprint})")

    def _check_pair(self, op: str, a: Ciphertext | Plaintext, b: Ciphertext | Plaintext, same_scale: bool) -> None:
        self._check(op, a, b)
        if a.level != b.level:
            raise LevelMismatchError(
                f"{op}: operands are at levels {a.level} and {b.level}; bring the higher one down with "
                f"drop_level(x, {min(a.level, b.level)}) (or rescale it) first")
        if same_scale and abs(a.scale - b.scale) > SCALE_TOLERANCE * max(a.scale, b.scale):
            raise ScaleMismatchError(
                f"{op}: operands have scales 2^{math.log2(a.scale):.6f} and 2^{math.log2(b.scale):.6f} at level "
                f"{a.level}; encode the plaintext at the ciphertext's exact scale, or multiply one operand by a "
                "constant to match")

    def _ct(self, op: str, a: object) -> Ciphertext:
        if not isinstance(a, Ciphertext):
            raise ParameterError(f"{op}: expected a Ciphertext, got {type(a).__name__}")
        self._check(op, a)
        return a

    def _scalar_residues(self, op: str, value: float, scale: float, level: int) -> np.ndarray:
        if np.iscomplexobj(value):  # round(value * scale) would fail, or drop the imaginary part
            raise ValueRangeError(f"{op}: the constant {value!r} is complex, and scalar constants must be "
                                  "real; encode it in every slot, Encoder.encode(np.full(N/2, c), level=..., "
                                  "scale=...), and use add or multiply_plain")
        if not math.isfinite(value):
            raise ValueRangeError(f"{op}: the constant {value!r} is not finite")
        product = value * scale
        if not math.isfinite(product) or abs(product) >= self._basis(level).product / 4:
            raise ValueRangeError(f"{op}: the constant {value} at scale 2^{math.log2(scale):.1f} does not fit "
                                  f"the modulus at level {level}")
        return rns.scalar_residues(round(product), self._basis(level))

    def _new(self, data: np.ndarray, level: int, scale: float, complex_slots: bool) -> Ciphertext:
        return Ciphertext(data, level, scale, self.params.fingerprint, complex_slots)

    def _product(self, op: str, data: np.ndarray, level: int, scale: float,
                 complex_slots: bool) -> Ciphertext:
        """A product's result, refused (out of levels) when its scale leaves no room below Q_level / 2."""
        room = math.log2(self._basis(level).product) - 1 - math.log2(scale)
        if room < 1:
            raise OutOfLevelsError(
                f"{op}: the product's scale 2^{math.log2(scale):.1f} does not fit the modulus at level {level} "
                f"(2^{math.log2(self._basis(level).product):.1f}): values would wrap around; rescale the operands "
                "first or multiply at a higher level")
        return self._new(data, level, scale, complex_slots)

    # ----- additive -------------------------------------------------------------------------------------
    def add(self, a: Ciphertext, b: Ciphertext | Plaintext) -> Ciphertext:
        """a + b (ciphertext or plaintext b) at equal level and scale."""
        self._ct("add", a)
        self._check_pair("add", a, b, same_scale=True)
        basis = self._basis(a.level)
        parts = [b.data] if isinstance(b, Plaintext) else list(b.data)
        out = np.empty((max(a.size, len(parts)),) + a.data.shape[1:], dtype=np.uint64)
        for i in range(out.shape[0]):
            if i < a.size and i < len(parts):
                rns.add(a.data[i], parts[i], basis, out=out[i])
            else:  # the longer operand's extra components pass through
                rns.copy_into(out[i], a.data[i] if i < a.size else parts[i])
        return self._new(out, a.level, a.scale, a.complex_slots or b.complex_slots)

    def negate(self, a: Ciphertext) -> Ciphertext:
        """-a."""
        self._ct("negate", a)
        basis = self._basis(a.level)
        return self._new(np.stack([rns.neg(c, basis) for c in a.data]), a.level, a.scale, a.complex_slots)

    def sub(self, a: Ciphertext, b: Ciphertext | Plaintext) -> Ciphertext:
        """a - b at equal level and scale."""
        self._ct("sub", a)
        self._check_pair("sub", a, b, same_scale=True)
        if isinstance(b, Plaintext):
            neg_b = Plaintext(rns.neg(b.data, self._basis(b.level)), b.level, b.scale, b.fingerprint,
                              b.complex_slots)
            return self.add(a, neg_b)
        return self.add(a, self.negate(b))

    def add_scalar(self, a: Ciphertext, value: float) -> Ciphertext:
        """a + value in every slot (adds round(value * scale) to the constant coefficient)."""
        self._ct("add_scalar", a)
        out = a.data.copy()
        out[0] = rns.add_scalar(a.data[0], self._scalar_residues("add_scalar", value, a.scale, a.level),
                                self._basis(a.level))
        return self._new(out, a.level, a.scale, a.complex_slots)

    # ----- multiplicative -------------------------------------------------------------------------------
    def multiply(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """The size-3 tensor product of two size-2 ciphertexts at the same level; scale multiplies.

        Raises:
            ParameterError: if an operand is not of size 2 (relinearize it first).
        """
        self._ct("multiply", a)
        self._ct("multiply", b)
        self._check_pair("multiply", a, b, same_scale=False)
        if a.size != 2 or b.size != 2:
            raise ParameterError(f"multiply: operands have sizes {a.size} and {b.size}; relinearize first")
        basis = self._basis(a.level)
        d = np.empty((3,) + a.data.shape[1:], dtype=np.uint64)
        rns.mul(a.data[0], b.data[0], basis, out=d[0])
        rns.mul(a.data[0], b.data[1], basis, out=d[1])
        rns.mul_add_into(d[1], a.data[1], b.data[0], basis)
        rns.mul(a.data[1], b.data[1], basis, out=d[2])
        return self._product("multiply", d, a.level, a.scale * b.scale, a.complex_slots or b.complex_slots)

    def square(self, a: Ciphertext) -> Ciphertext:
        """a * a as a size-3 ciphertext (one product fewer than multiply(a, a))."""
        self._ct("square", a)
        if a.size != 2:
            raise ParameterError(f"square: operand has size {a.size}; relinearize first")
        d = rns.square(a.data, self._basis(a.level))
        return self._product("square", d, a.level, a.scale * a.scale, a.complex_slots)

    def multiply_plain(self, a: Ciphertext, b: Plaintext) -> Ciphertext:
        """a * b slot-wise for a plaintext b at the same level; scale multiplies."""
        self._ct("multiply_plain", a)
        self._check_pair("multiply_plain", a, b, same_scale=False)
        if not isinstance(b, Plaintext):
            raise ParameterError(f"multiply_plain: expected a Plaintext, got {type(b).__name__}")
        basis = self._basis(a.level)
        return self._product("multiply_plain", np.stack([rns.mul(c, b.data, basis) for c in a.data]), a.level,
                             a.scale * b.scale, a.complex_slots or b.complex_slots)

    def multiply_scalar(self, a: Ciphertext, value: float, scale: float | None = None) -> Ciphertext:
        """a * value in every slot, with value encoded as the integer round(value * scale) (no NTT needed).

        The default scale is the prime q_level that the next rescale divides by, so that multiply_scalar then
        rescale returns exactly to a's scale.
        """
        self._ct("multiply_scalar", a)
        scale = float(self.params.moduli[a.level]) if scale is None else float(scale)
        res = self._scalar_residues("multiply_scalar", value, scale, a.level)
        basis = self._basis(a.level)
        return self._product("multiply_scalar", np.stack([rns.mul_scalar(c, res, basis) for c in a.data]), a.level,
                             a.scale * scale, a.complex_slots)

    def multiply_integer(self, a: Ciphertext, value: int) -> Ciphertext:
        """a * value for an integer value; the scale does not change."""
        self._ct("multiply_integer", a)
        if not isinstance(value, (int, np.integer)):
            raise ParameterError(f"multiply_integer: {value!r} is not an integer (use multiply_scalar)")
        res = rns.scalar_residues(int(value), self._basis(a.level))
        basis = self._basis(a.level)
        return self._new(np.stack([rns.mul_scalar(c, res, basis) for c in a.data]), a.level, a.scale,
                         a.complex_slots)

    def relinearize(self, a: Ciphertext) -> Ciphertext:
        """(d0, d1, d2) -> (d0, d1) + KeySwitch_{s^2 -> s}(d2).

        Raises:
            MissingKeyError: if the evaluator has no relinearization key.
        """
        self._ct("relinearize", a)
        if a.size == 2:
            return a.copy()
        return self._relinearize("relinearize", [a])[0]

    def relinearize_many(self, cts: list[Ciphertext]) -> list[Ciphertext]:
        """``relinearize`` of every size-3 ciphertext (all at one level), their key switches in one pass
        (more rows for the threads, one kernel launch for all), as in ``rotate_many``.

        Raises:
            as ``relinearize``; LevelMismatchError for ciphertexts at different levels; ParameterError for
            an operand of another size than 3.
        """
        return self._relinearize("relinearize_many", cts)

    def _size_three(self, op: str, cts: list[Ciphertext], advice: str) -> int:
        """The common level of ``cts`` (non-empty, size 3 each: what relinearization takes), the evaluator
        having a relinearization key; ``advice`` ends the message for another size."""
        level = self._one_level(op, cts)
        size = next((a.size for a in cts if a.size != 3), None)
        if size is not None:
            raise ParameterError(f"{op}: {advice.format(size=size)}")
        if self.relin_key is None:
            raise MissingKeyError(f"{op}: this Evaluator has no relinearization key; pass "
                                  "relin_key=KeyGenerator.relin_key() when creating it")
        return level

    def _relinearize(self, op: str, cts: list[Ciphertext]) -> list[Ciphertext]:
        level = self._size_three(op, cts, "size {size} ciphertexts are not supported (only 3)")
        basis = self._basis(level)
        switched = key_switch([a.data[2] for a in cts], level, self._relin, self.params)
        for a, u in zip(cts, switched, strict=True):
            rns.add(a.data[0], u[0], basis, out=u[0])
            rns.add(a.data[1], u[1], basis, out=u[1])
        return [self._new(u, level, a.scale, a.complex_slots) for a, u in zip(cts, switched, strict=True)]

    def relinearize_and_rescale(self, a: Ciphertext) -> Ciphertext:
        """rescale(relinearize(a)) with one division instead of two, for a size-3 ``a`` at level l >= 1:

            round((P * (d0, d1) + (v0, v1)) / (P * q_l)),  (v0, v1) = key switching of d2 before ModDown,

        over Q_{l-1}, scale a.scale / q_l exactly. P * (d0, d1) vanishes modulo the special primes, so
        only its rows over Q_l are added. The rounding error is that of ModDown and rescale together, a few
        units; every polynomial saves the l + 1 forward NTTs of the separate ModDown.

        Raises:
            MissingKeyError: if the evaluator has no relinearization key.
            OutOfLevelsError: at level 0.
        """
        return self._relinearize_and_rescale("relinearize_and_rescale", [a])[0]

    def relinearize_and_rescale_many(self, cts: list[Ciphertext]) -> list[Ciphertext]:
        """``relinearize_and_rescale`` of every ciphertext (all at one level), in one pass: the key
        switches and divisions of all of them go to the threads together, as in ``rescale_many``.

        Raises:
            as ``relinearize_and_rescale``, and LevelMismatchError for ciphertexts at different levels.
        """
        return self._relinearize_and_rescale("relinearize_and_rescale_many", cts)

    def _relinearize_and_rescale(self, op: str, cts: list[Ciphertext]) -> list[Ciphertext]:
        level = self._size_three(op, cts, "the operand has size {size}; it takes the size-3 result of a "
                                 "multiplication (rescale a size-2 ciphertext instead)")
        self._check_level_left(op, cts[0])
        basis = self._basis(level)
        extended = key_switch_extended([a.data[2] for a in cts], level, self._relin, self.params)
        p_residues = rns.scalar_residues(self._special.product, basis)
        for a, ext in zip(cts, extended, strict=True):
            rns.mul_scalar_add_into(ext, a.data[:2], p_residues, basis)  # + P (d0, d1) on the rows of Q_l
        data = mod_down_and_rescale(extended, basis, self._special)
        q_l = self.params.moduli[level]
        return [self._new(d, level - 1, a.scale / q_l, a.complex_slots) for d, a in zip(data, cts, strict=True)]

    def _one_level(self, op: str, cts: list[Ciphertext]) -> int:
        """Check every operand (a non-empty list of ciphertexts) and return their common level."""
        if isinstance(cts, Ciphertext) or not cts:
            raise ParameterError(f"{op}: expected a non-empty list of ciphertexts")
        for a in cts:
            self._ct(op, a)
        levels = sorted({a.level for a in cts})
        if len(levels) > 1:
            raise LevelMismatchError(f"{op}: the ciphertexts are at levels {levels}; bring them to one level "
                                     "with drop_level first")
        return levels[0]

    def _check_level_left(self, op: str, a: Ciphertext) -> None:
        """Refuse to divide by q_l at level 0."""
        if a.level == 0:
            raise OutOfLevelsError(f"{op}: the ciphertext is at level 0 (scale 2^{math.log2(a.scale):.2f}); "
                                   "the chain is used up: use parameters with more primes or fewer "
                                   "multiplications")

    def rescale(self, a: Ciphertext) -> Ciphertext:
        """round(a / q_l) at level l - 1 with scale exactly a.scale / q_l.

        Raises:
            OutOfLevelsError: at level 0 (no prime left to divide by).
        """
        return self._rescale("rescale", [a])[0]

    def rescale_many(self, cts: list[Ciphertext]) -> list[Ciphertext]:
        """``rescale`` of every ciphertext (all at one level), their transforms in two calls over all of
        them: more rows than threads, and one kernel launch instead of one per ciphertext.

        Raises:
            as ``rescale``, and LevelMismatchError for ciphertexts at different levels.
        """
        return self._rescale("rescale_many", cts)

    def _rescale(self, op: str, cts: list[Ciphertext]) -> list[Ciphertext]:
        level = self._one_level(op, cts)
        self._check_level_left(op, cts[0])
        data = divide_by_last_prime([a.data for a in cts], self._basis(level))
        q_l = self.params.moduli[level]
        return [self._new(d, level - 1, a.scale / q_l, a.complex_slots) for d, a in zip(data, cts, strict=True)]

    def drop_level(self, a: Ciphertext, level: int) -> Ciphertext:
        """The same message and scale at a lower level (drop the last primes: a modulus switch, no division).

        Raises:
            LevelMismatchError: if ``level`` is above a's level or negative.
        """
        self._ct("drop_level", a)
        if not 0 <= level <= a.level:
            raise LevelMismatchError(f"drop_level: cannot go from level {a.level} to level {level}")
        return self._new(a.data[:, : level + 1].copy(), level, a.scale, a.complex_slots)
