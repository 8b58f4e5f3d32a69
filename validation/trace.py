"""A toy-size trace of one encrypted neuron, y = (w . x + b)^2, with every number printed.

N = 16 (8 slots), a chain of three primes (30, 20, 20 bits), one 30-bit special prime, scale 2^20: insecure,
asked for by name (``security=None``), small enough that each number can be checked by hand. The record's 4
features go in slots 0..3. Steps, each with its level, exact scale, measured noise and precision:

  encode x, encrypt (public key),
  multiply by the plaintext weights w (encoded at scale q_2, so the rescale that follows restores the scale),
  rescale, rotate by 2 and add, rotate by 1 and add (slot 0 now holds w . x: a Dense layer's diagonal sum),
  add the bias b (a plaintext with b in slot 0), square (a size-3 ciphertext), relinearize, rescale, decode.

Noise is measured, not estimated from a formula: the ciphertext is decrypted (c_0 + c_1 s + c_2 s^2 mod Q_l,
reconstructed to centered integers with the Chinese remainder theorem in Python integers) and compared with
the exact expected polynomial, which this module tracks alongside with exact rational arithmetic on the
plaintext polynomials (negacyclic products, X -> X^(5^k) automorphisms, division by q_l): the noise printed
is all the noise accumulated up to that step. Precision is
-log2(max |decoded slot - exact real result|) over all 8 slots (CKKS, Cheon-Kim-Kim-Song 2017, section 3).
The slots are complex; the neuron, like the network, puts real values in them and decodes their real parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

TOY_PARAMETERS: dict[str, Any] = {"ring_degree": 16, "moduli_bits": (30, 20, 20),
                                  "special_moduli_bits": (30,), "scale_bits": 20, "security": None}
DEFAULT_RECORD = (0.625, 0.25, 0.5, 0.75)
DEFAULT_WEIGHTS = (0.5, -1.0, 0.25, 0.75)
DEFAULT_BIAS = -0.125
MAX_ABS_INPUT = 4.0
# (w . x + b)^2 at scale 2^40 must stay well inside Q_1 = q_0 q_1 ~ 2^50: |w . x + b| <= 8 leaves 4 bits.
MAX_ABS_PREACTIVATION = 8.0


class TraceError(ValueError):
    """The trace's inputs are not 4 finite, small numbers (record, weights) and one bias."""


@dataclass
class Operand:
    """A plaintext as the engine holds it: its slots, integer coefficients, RNS limbs and NTT form."""

    name: str
    slots: list[float]
    level: int
    scale: float
    coefficients: list[int]
    limbs: list[list[int]]
    ntt: list[list[int]]
    decoded: list[float]  # the engine's decode of the plaintext: the slots up to the encoding's rounding


@dataclass
class Step:
    """One operation on the ciphertext and what it left: ciphertext, decryption, expected value, errors."""

    op: str
    explain: str
    level: int
    scale: float
    size: int
    moduli: list[int]
    ciphertext: list[list[list[int]]]  # size x limbs x N, coefficient form, residues mod q_i
    decrypted: list[int]  # sum_i c_i s^i mod Q_level, centered
    expected_numerators: list[int]  # the exact expected polynomial = numerators / expected_denominator
    expected_denominator: int
    noise: float  # max |decrypted - expected|
    decoded: list[float]  # the engine's decode of the decryption (real parts)
    exact: list[float]  # the exact real result in every slot
    operand: Operand | None = None

    @property
    def noise_bits(self) -> float | None:
        """log2 of the noise (None when it is exactly 0)."""
        return math.log2(self.noise) if self.noise > 0 else None

    @property
    def precision_bits(self) -> float:
        """-log2(max |decoded - exact|) over all slots (inf when exact)."""
        err = max(abs(a - b) for a, b in zip(self.decoded, self.exact, strict=True))
        return math.inf if err == 0 else -math.log2(err)


@dataclass
class Trace:
    """The whole toy run: parameters, inputs, the toy secret key and every step."""

    ring_degree: int
    moduli: list[int]
    special_moduli: list[int]
    scale: float
    seed: int
    record: list[float]
    weights: list[float]
    bias: float
    secret_key: list[int]
    encoded: Operand
    steps: list[Step] = field(default_factory=list)

    @property
    def result(self) -> float:
        """The decoded y in slot 0."""
        return self.steps[-1].decoded[0]

    @property
    def exact_result(self) -> float:
        """(w . x + b)^2 in float64."""
        return float((np.dot(self.weights, self.record) + self.bias) ** 2)


# ----- exact polynomial arithmetic on rationals (the expected polynomials) -------------------------------
def _negacyclic(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
    n = len(a)
    out = [Fraction(0)] * n
    for i, ai in enumerate(a):
        if ai == 0:
            continue
        for j, bj in enumerate(b):
            k = i + j
            if k < n:
                out[k] += ai * bj
            else:
                out[k - n] -= ai * bj
    return out


def _automorphism(a: list[Fraction], galois: int) -> list[Fraction]:
    n = len(a)
    out = [Fraction(0)] * n
    for i, ai in enumerate(a):
        k = i * galois % (2 * n)
        if k < n:
            out[k] += ai
        else:
            out[k - n] -= ai
    return out


def _crt_centered(limbs: list[list[int]], moduli: list[int]) -> list[int]:
    """The centered integers in (-Q/2, Q/2] with these residues (Python integers)."""
    q = math.prod(moduli)
    out = []
    for column in zip(*limbs, strict=True):
        x = 0
        for r, qi in zip(column, moduli, strict=True):
            hat = q // qi
            x += r * hat * pow(hat, -1, qi)
        x %= q
        out.append(x - q if x > q // 2 else x)
    return out


def _check_inputs(record: tuple[float, ...], weights: tuple[float, ...], bias: float) -> None:
    for what, values, count in (("record", record, 4), ("weights", weights, 4), ("bias", (bias,), 1)):
        if len(values) != count:
            raise TraceError(f"the {what} needs {count} value(s), got {len(values)}")
        for v in values:
            if not math.isfinite(v) or abs(v) > MAX_ABS_INPUT:
                raise TraceError(f"the {what} holds {v!r}: values must be finite with |v| <= {MAX_ABS_INPUT}")
    pre = float(np.dot(weights, record) + bias)
    if abs(pre) > MAX_ABS_PREACTIVATION:
        raise TraceError(f"w . x + b = {pre:.4g}: its square would not fit the toy modulus; keep "
                         f"|w . x + b| <= {MAX_ABS_PREACTIVATION}")


def run_trace(record: tuple[float, ...] = DEFAULT_RECORD, weights: tuple[float, ...] = DEFAULT_WEIGHTS,
              bias: float = DEFAULT_BIAS, seed: int = 1) -> Trace:
    """Run the toy neuron through the engine and record every step (seeded: the same output every time).

    Raises:
        TraceError: if the inputs are not 4 + 4 + 1 finite numbers of magnitude at most 4, or if
            |w . x + b| > 8 (its square would overflow the toy modulus).
    """
    import ckks
    from ckks.ring import automorphism, rns

    _check_inputs(tuple(record), tuple(weights), float(bias))
    params = ckks.Parameters(**TOY_PARAMETERS)
    n, slots = params.ring_degree, params.slots
    keygen = ckks.KeyGenerator(params, seed=seed)
    sk = keygen.secret_key
    encoder = ckks.Encoder(params)
    encryptor = ckks.Encryptor(params, keygen.public_key(), seed=seed + 1)
    decryptor = ckks.Decryptor(params, sk)
    ev = ckks.Evaluator(params, relin_key=keygen.relin_key(), galois_keys=keygen.galois_keys([1, 2]))

    def basis(level: int) -> rns.RnsBasis:
        return rns.rns_basis(params.moduli[: level + 1], n)

    def coefficient_limbs(ntt_rows: np.ndarray, level: int) -> list[list[int]]:
        return [[int(v) for v in row] for row in rns.from_ntt(ntt_rows, basis(level))]

    def operand(name: str, values: list[float], pt: ckks.Plaintext) -> Operand:
        limbs = coefficient_limbs(pt.data, pt.level)
        moduli = list(params.moduli[: pt.level + 1])
        return Operand(name, [float(v) for v in values] + [0.0] * (slots - len(values)), pt.level, pt.scale,
                       _crt_centered(limbs, moduli), limbs, [[int(v) for v in row] for row in pt.data],
                       [float(v) for v in encoder.decode(pt)])

    x = np.zeros(slots)
    x[:4] = record
    w = np.zeros(slots)
    w[:4] = weights
    b = np.zeros(slots)
    b[0] = bias
    pt_x = encoder.encode(x[:4])
    encoded = operand("x", list(x[:4]), pt_x)
    trace = Trace(n, list(params.moduli), list(params.special_moduli), params.scale, seed,
                  list(map(float, record)), list(map(float, weights)), float(bias),
                  [int(v) for v in sk.coefficients], encoded)

    def record_step(op: str, explain: str, ct: ckks.Ciphertext, expected: list[Fraction], exact: np.ndarray,
                    used: Operand | None = None) -> None:
        moduli = list(params.moduli[: ct.level + 1])
        decrypted = _crt_centered(coefficient_limbs(decryptor.decrypt(ct).data, ct.level), moduli)
        denominator = math.lcm(*(v.denominator for v in expected))
        noise = max(abs(Fraction(d) - e) for d, e in zip(decrypted, expected, strict=True))
        decoded = encoder.decode(decryptor.decrypt(ct))
        trace.steps.append(Step(op, explain, ct.level, ct.scale, ct.size, moduli,
                                [coefficient_limbs(c, ct.level) for c in ct.data], decrypted,
                                [int(v * denominator) for v in expected], denominator, float(noise),
                                [float(v) for v in decoded], [float(v) for v in exact], used))

    m = [Fraction(c) for c in encoded.coefficients]
    ct = encryptor.encrypt(pt_x)
    record_step("encrypt", "public-key encryption: c0 + c1 s = m + e (mod q_i), e the fresh noise", ct, m, x)

    pt_w = encoder.encode(w[:4], level=ct.level, scale=float(params.moduli[ct.level]))
    op_w = operand("w", list(w[:4]), pt_w)
    ct = ev.multiply_plain(ct, pt_w)
    m = _negacyclic(m, [Fraction(c) for c in op_w.coefficients])
    exact = x * w
    record_step("multiply_plain", "times the weights, encoded at scale q_l: slot-wise x_i w_i, scale "
                "Delta q_l", ct, m, exact, op_w)

    q_last = params.moduli[ct.level]
    ct = ev.rescale(ct)
    m = [v / q_last for v in m]
    record_step("rescale", f"divide by q_{ct.level + 1} = {q_last} and round: one level down, scale back to "
                "Delta (exactly Delta q_l / q_l)", ct, m, exact)

    for step in (2, 1):
        galois = automorphism.galois_element(step, n)
        rotated = ev.rotate(ct, step)
        m_rot = _automorphism(m, galois)
        exact_rot = np.roll(exact, -step)
        record_step(f"rotate {step}", f"X -> X^{galois} (5^{step} mod {2 * n}) then key switching back to s: "
                    f"slot i takes slot i + {step}", rotated, m_rot, exact_rot)
        ct = ev.add(ct, rotated)
        m = [a + c for a, c in zip(m, m_rot, strict=True)]
        exact = exact + exact_rot
        summed = "x_i w_i + x_(i+2) w_(i+2)" if step == 2 else "the 4 products, w . x, in slot 0"
        record_step("add", f"add the rotation: slot i now holds {summed}", ct, m, exact)

    pt_b = encoder.encode(b[:1], level=ct.level, scale=ct.scale)
    op_b = operand("b", [float(bias)], pt_b)
    ct = ev.add(ct, pt_b)
    m = [a + c for a, c in zip(m, op_b.coefficients, strict=True)]
    exact = exact + b
    record_step("add_plain", "add the bias, a plaintext at the ciphertext's exact scale and level", ct, m,
                exact, op_b)

    ct = ev.square(ct)
    m = _negacyclic(m, m)
    exact = exact * exact
    record_step("square", "(c0, c1)^2 = (c0^2, 2 c0 c1, c1^2): decrypts with (1, s, s^2); scale squared",
                ct, m, exact)
    ct = ev.relinearize(ct)
    record_step("relinearize", "key-switch the s^2 part back to s: size 3 -> 2 (adds key-switching noise)",
                ct, m, exact)
    q_last = params.moduli[ct.level]
    ct = ev.rescale(ct)
    m = [v / q_last for v in m]
    record_step("rescale", f"divide by q_{ct.level + 1} = {q_last}: level 0, scale Delta^2 / q_1", ct, m,
                exact)
    return trace


# ----- text ----------------------------------------------------------------------------------------------
INDENT = " " * 8


def _block(values: list[int] | list[str], per_line: int = 8) -> list[str]:
    """Right-aligned columns, ``per_line`` values a line, each line indented."""
    text = [str(v) for v in values]
    width = max(len(t) for t in text)
    return [INDENT + " ".join(f"{t:>{width}}" for t in text[k : k + per_line])
            for k in range(0, len(text), per_line)]


def _floats(values: list[float], digits: int = 6) -> str:
    return "[" + ", ".join(f"{v:.{digits}f}" for v in values) + "]"


def _scale_text(scale: float) -> str:
    return f"2^{math.log2(scale):.6f} = {scale:.6f}"


def format_trace(trace: Trace) -> str:
    """The trace as text: parameters, inputs, then each step's numbers."""
    n = trace.ring_degree
    q = trace.moduli
    chain = ", ".join(f"q_{i} = {v} ({v.bit_length()} bits)" for i, v in enumerate(q))
    lines = [
        "ckkslab trace: one neuron y = (w . x + b)^2 on a 4-feature record",
        "TOY parameters, insecure, asked for by name (security=None): for reading, never for data",
        f"ring Z[X]/(X^{n} + 1): N = {n}, {n // 2} slots; chain {chain}",
        f"the {n // 2} slots are complex numbers; the neuron, like the network, uses their real parts "
        "(imaginary parts 0 up to noise): every slot value below is a real part",
        f"special prime p = {trace.special_moduli[0]}; scale Delta = {_scale_text(trace.scale)}; "
        f"randomness seeded with {trace.seed} (tests only)",
        f"toy secret key s(X), ternary coefficients s_0..s_{n - 1} (printed only because this is a toy):",
        *_block(trace.secret_key, per_line=16),
        f"record x = {trace.record}; weights w = {trace.weights}; bias b = {trace.bias}",
        f"exact y = (w . x + b)^2 = {trace.exact_result:.9f}",
        "",
    ]
    lines += _format_operand(trace.encoded, "[0] encode x", q)
    for index, step in enumerate(trace.steps, start=1):
        lines.append("")
        lines.append(f"[{index}] {step.op}: {step.explain}")
        if step.operand is not None:
            lines += ["    " + t for t in _format_operand(step.operand, f"operand {step.operand.name}", q)]
        lines.append(f"    level {step.level} (primes {step.moduli}), scale {_scale_text(step.scale)}, "
                     f"size {step.size}")
        for c, component in enumerate(step.ciphertext):
            for i, limb in enumerate(component):
                lines.append(f"    c{c} mod q_{i} (coefficients):")
                lines += _block(limb)
        lines.append("    decrypted: sum_i c_i s^i mod Q_l, centered (CRT):")
        lines += _block(step.decrypted)
        expected = [v / step.expected_denominator for v in step.expected_numerators]
        lines.append("    expected: the exact plaintext arithmetic on m (rounded to 0.01 here):")
        lines += _block([f"{v:.2f}" for v in expected])
        if step.noise:
            relative = math.log2(step.noise / step.scale)
            lines.append(f"    noise     max |decrypted - expected| = {step.noise:.4g} = "
                         f"2^{step.noise_bits:.2f}, 2^{relative:.2f} of the scale (accumulated so far)")
        else:
            lines.append("    noise     none: decrypted == expected")
        lines.append(f"    decoded   {_floats(step.decoded)}")
        lines.append(f"    exact     {_floats(step.exact)}")
        lines.append(f"    precision {step.precision_bits:.2f} bits (worst of {n // 2} slots)")
    error = abs(trace.result - trace.exact_result)
    lines += ["", f"result: slot 0 decodes to y = {trace.result:.9f}; exact {trace.exact_result:.9f}; "
              f"error {error:.3g} ({trace.steps[-1].precision_bits:.2f} bits over all slots)"]
    return "\n".join(lines)


def _format_operand(op: Operand, title: str, moduli: list[int]) -> list[str]:
    n = len(op.coefficients)
    lines = [f"{title}: slots z = {_floats(op.slots, 4)}",
             f"    m(X) = round(scale * sigma^-1(z)) at scale {_scale_text(op.scale)}, level {op.level}; "
             f"m_0..m_{n - 1}:", *_block(op.coefficients)]
    for i, limb in enumerate(op.limbs):
        lines.append(f"    RNS limb m mod q_{i} = {moduli[i]}:")
        lines += _block(limb)
    for i, limb in enumerate(op.ntt):
        lines.append(f"    NTT form mod q_{i}: m at the {n} roots of X^{n} + 1 mod q_{i}, bit-reversed order "
                     "(what the engine stores):")
        lines += _block(limb)
    err = max(abs(a - b) for a, b in zip(op.decoded, op.slots, strict=True))
    lines.append(f"    decoded sigma(m) / scale = {_floats(op.decoded)}")
    lines.append(f"    encoding error {err:.3g}" + (f" ({-math.log2(err):.2f} bits)" if err else " (exact)"))
    return lines


def to_json(trace: Trace) -> dict[str, Any]:
    """The trace as JSON-able values (every integer exact)."""

    def operand(op: Operand | None) -> dict[str, Any] | None:
        if op is None:
            return None
        return {"name": op.name, "slots": op.slots, "level": op.level, "scale": op.scale,
                "coefficients": op.coefficients, "limbs": op.limbs, "ntt": op.ntt, "decoded": op.decoded}

    return {
        "ring_degree": trace.ring_degree, "moduli": trace.moduli, "special_moduli": trace.special_moduli,
        "scale": trace.scale, "seed": trace.seed, "record": trace.record, "weights": trace.weights,
        "bias": trace.bias, "secret_key": trace.secret_key, "encoded": operand(trace.encoded),
        "result": trace.result, "exact_result": trace.exact_result,
        "steps": [{"op": s.op, "explain": s.explain, "level": s.level, "scale": s.scale, "size": s.size,
                   "moduli": s.moduli, "ciphertext": s.ciphertext, "decrypted": s.decrypted,
                   "expected_numerators": s.expected_numerators,
                   "expected_denominator": s.expected_denominator,
                   "noise": s.noise, "noise_bits": s.noise_bits, "decoded": s.decoded, "exact": s.exact,
                   "precision_bits": s.precision_bits, "operand": operand(s.operand)} for s in trace.steps],
    }
