"""``ckkslab trace`` checked against independent arithmetic.

Nothing here calls the engine: every printed number is re-derived with Python integers (schoolbook negacyclic
products, the CRT, X -> X^g by its definition, roots of X^N + 1 mod q found by brute force) or with a direct
numpy evaluation / solve of the canonical embedding at zeta^(5^j), zeta = exp(i pi / N) (CKKS 2017, sec. 3).
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import numpy as np
import pytest

from validation.cli import main

N = 16
SLOTS = N // 2


# ----- independent reference math ------------------------------------------------------------------------
def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def negacyclic(a: list, b: list) -> list:
    """Schoolbook a * b in Z[X]/(X^N + 1) (ints or Fractions)."""
    out = [0] * N
    for i, ai in enumerate(a):
        for j, bj in enumerate(b):
            if i + j < N:
                out[i + j] += ai * bj
            else:
                out[i + j - N] -= ai * bj
    return out


def automorphism(a: list, g: int) -> list:
    """a(X^g) with X^N = -1, straight from the definition."""
    out = [0] * N
    for i, ai in enumerate(a):
        k = i * g % (2 * N)
        if k < N:
            out[k] += ai
        else:
            out[k - N] -= ai
    return out


def crt_centered(residues: list[int], moduli: list[int]) -> int:
    """The x in (-Q/2, Q/2] with x = r_i mod q_i, by the textbook CRT formula."""
    q = math.prod(moduli)
    x = sum(r * (q // qi) * pow(q // qi, -1, qi) for r, qi in zip(residues, moduli, strict=True)) % q
    return x - q if x > q // 2 else x


def slot_roots() -> np.ndarray:
    """zeta^(5^j mod 2N), j < N/2: the points whose values are the slots."""
    return np.exp(1j * np.pi * np.array([pow(5, j, 2 * N) for j in range(SLOTS)]) / N)


def embed_direct(coeffs: list) -> np.ndarray:
    """sigma(m): m evaluated at the slot roots, by direct summation."""
    powers = slot_roots()[:, None] ** np.arange(N)[None, :]
    return powers @ np.array([float(c) for c in coeffs])


def embed_inverse_direct(z: np.ndarray) -> np.ndarray:
    """The real m of degree < N with m(root_j) = z_j and m(conj root_j) = conj z_j (Vandermonde solve)."""
    roots = np.concatenate([slot_roots(), np.conj(slot_roots())])
    vandermonde = roots[:, None] ** np.arange(N)[None, :]
    m = np.linalg.solve(vandermonde, np.concatenate([z, np.conj(z)]))
    assert np.max(np.abs(m.imag)) < 1e-9
    return m.real


def roots_of_x_n_plus_1(q: int) -> list[int]:
    """All w with w^N = -1 mod q (there are N of them when 2N | q - 1), found by brute force."""
    for a in range(2, 1000):
        psi = pow(a, (q - 1) // (2 * N), q)
        if pow(psi, N, q) == q - 1:
            return [pow(psi, e, q) for e in range(1, 2 * N, 2)]
    raise AssertionError("no primitive 2N-th root found")


# ----- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["trace", "--json", str(path)])
    assert code == 0
    return json.loads(path.read_text()), out.getvalue()


# ----- tests ---------------------------------------------------------------------------------------------
def test_parameters_are_the_named_toy_chain(traced: tuple[dict, str]) -> None:
    data, text = traced
    assert data["ring_degree"] == N
    assert [q.bit_length() for q in data["moduli"]] == [30, 20, 20]
    assert [p.bit_length() for p in data["special_moduli"]] == [30]
    for q in data["moduli"] + data["special_moduli"]:
        assert is_prime(q) and q % (2 * N) == 1
    assert data["scale"] == 2.0**20
    assert "insecure" in text and "security=None" in text
    assert set(data["secret_key"]) <= {-1, 0, 1} and len(data["secret_key"]) == N


def test_the_slots_are_complex_and_the_neuron_uses_their_real_parts(traced: tuple[dict, str]) -> None:
    """The printed claim, re-derived: at every step the N/2 slots of the decryption (direct embedding) have
    imaginary parts of noise size only, and the decoded values are their real parts."""
    data, text = traced
    claim = f"the {SLOTS} slots are complex numbers; the neuron, like the network, uses their real parts "
    assert claim in text
    for step in data["steps"]:
        slots = embed_direct(step["decrypted"]) / step["scale"]
        assert np.max(np.abs(slots.imag)) < 2.0**-12, step["op"]
        np.testing.assert_allclose(step["decoded"], slots.real, rtol=0, atol=1e-9)


def check_operand(op: dict, moduli: list[int]) -> None:
    z = np.zeros(SLOTS, dtype=complex)
    z[: len(op["slots"])] = op["slots"]
    # m = round(scale * sigma^-1(z)), by a direct solve of the canonical embedding.
    assert op["coefficients"] == [int(v) for v in np.rint(op["scale"] * embed_inverse_direct(z))]
    level_moduli = moduli[: op["level"] + 1]
    for limb, q in zip(op["limbs"], level_moduli, strict=True):
        assert limb == [c % q for c in op["coefficients"]]
    # NTT form: m at the N roots of X^N + 1 mod q (compared as multisets: the order is the engine's choice).
    for values, q in zip(op["ntt"], level_moduli, strict=True):
        evaluations = [sum(c * pow(w, k, q) for k, c in enumerate(op["coefficients"])) % q
                       for w in roots_of_x_n_plus_1(q)]
        assert sorted(values) == sorted(evaluations)
    direct = embed_direct(op["coefficients"]).real / op["scale"]
    np.testing.assert_allclose(op["decoded"], direct, atol=1e-12)
    assert np.max(np.abs(direct - z.real)) < N / op["scale"]  # rounding each coefficient by <= 1/2


def test_encodings_match_the_direct_canonical_embedding(traced: tuple[dict, str]) -> None:
    data, _ = traced
    check_operand(data["encoded"], data["moduli"])
    operands = [s["operand"] for s in data["steps"] if s["operand"] is not None]
    assert [op["name"] for op in operands] == ["w", "b"]
    for op in operands:
        check_operand(op, data["moduli"])


def test_every_step_decrypts_to_the_exact_expected_polynomial_plus_noise(traced: tuple[dict, str]) -> None:
    data, _ = traced
    q, s = data["moduli"], data["secret_key"]
    steps = {i: step for i, step in enumerate(data["steps"])}
    ops = [step["op"] for step in data["steps"]]
    assert ops == ["encrypt", "multiply_plain", "rescale", "rotate 2", "add", "rotate 1", "add", "add_plain",
                   "square", "relinearize", "rescale"]

    # The expected polynomials, re-derived here from the printed operands.
    m = [Fraction(c) for c in data["encoded"]["coefficients"]]
    w = steps[1]["operand"]["coefficients"]
    b = steps[7]["operand"]["coefficients"]
    expected = [m]
    m = negacyclic(m, w)
    expected.append(m)
    m = [v / q[2] for v in m]
    expected.append(m)
    for step in (2, 1):
        rotated = automorphism(m, pow(5, step, 2 * N))
        expected.append(rotated)
        m = [a + c for a, c in zip(m, rotated, strict=True)]
        expected.append(m)
    m = [a + c for a, c in zip(m, b, strict=True)]
    expected.append(m)
    m = negacyclic(m, m)
    expected += [m, m]
    expected.append([v / q[1] for v in m])

    levels = [2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    for i, step in enumerate(data["steps"]):
        assert step["level"] == levels[i] and step["moduli"] == q[: levels[i] + 1]
        assert step["size"] == (3 if step["op"] == "square" else 2)
        printed = [Fraction(v, step["expected_denominator"]) for v in step["expected_numerators"]]
        assert printed == expected[i], step["op"]
        # Decrypt with Python integers: sum_j c_j s^j mod q_i, then the CRT.
        rows = []
        for limb_index, qi in enumerate(step["moduli"]):
            acc = [0] * N
            power = [1] + [0] * (N - 1)
            for component in step["ciphertext"]:
                term = negacyclic(component[limb_index], power)
                acc = [(a + t) % qi for a, t in zip(acc, term, strict=True)]
                power = negacyclic(power, s)
            rows.append(acc)
        decrypted = [crt_centered(list(col), step["moduli"]) for col in zip(*rows, strict=True)]
        assert decrypted == step["decrypted"], step["op"]
        noise = max(abs(d - e) for d, e in zip(decrypted, expected[i], strict=True))
        assert float(noise) == pytest.approx(step["noise"], rel=1e-12)
        assert float(noise) / step["scale"] < 2.0**-14, step["op"]  # a few units at scale 2^20
        decoded = embed_direct(decrypted).real / step["scale"]
        np.testing.assert_allclose(step["decoded"], decoded, rtol=0, atol=1e-9)


def test_scales_levels_exact_values_and_precision(traced: tuple[dict, str]) -> None:
    data, _ = traced
    q, delta = data["moduli"], data["scale"]
    scales = [step["scale"] for step in data["steps"]]
    assert scales[0] == delta
    assert scales[1] == pytest.approx(delta * q[2], rel=1e-15)
    assert scales[2] == pytest.approx(delta, rel=1e-15)
    assert all(s == scales[2] for s in scales[3:8])
    assert scales[8] == pytest.approx(scales[7] ** 2, rel=1e-15) and scales[9] == scales[8]
    assert scales[10] == pytest.approx(scales[8] / q[1], rel=1e-15)

    x = np.zeros(SLOTS)
    x[:4] = data["record"]
    w = np.zeros(SLOTS)
    w[:4] = data["weights"]
    v = x * w
    exact = [x, v, v]
    for step in (2, 1):
        rotated = np.roll(v, -step)
        v = v + rotated
        exact += [rotated, v]
    v = v + np.eye(SLOTS)[0] * data["bias"]
    exact += [v, v * v, v * v, v * v]
    for step, want in zip(data["steps"], exact, strict=True):
        np.testing.assert_allclose(step["exact"], want, atol=1e-15)
        err = np.max(np.abs(np.array(step["decoded"]) - want))
        assert step["precision_bits"] == pytest.approx(-math.log2(err), rel=1e-12)
        assert step["precision_bits"] > 12
    y = (np.dot(data["weights"], data["record"]) + data["bias"]) ** 2
    assert data["exact_result"] == pytest.approx(y, abs=1e-15)
    assert abs(data["result"] - y) < 2.0**-12


def test_the_printed_text_holds_the_checked_numbers(traced: tuple[dict, str]) -> None:
    data, text = traced
    blocks = re.split(r"\n\[(\d+)\] ", text)
    assert blocks[1] == "0" and len(blocks) == 2 * (len(data["steps"]) + 1) + 1
    for index, step in enumerate(data["steps"], start=1):
        assert blocks[2 * index + 1] == str(index)
        body = blocks[2 * index + 2]
        assert body.startswith(step["op"] + ":")
        assert f"level {step['level']} " in body and f"size {step['size']}" in body
        for c, component in enumerate(step["ciphertext"]):
            for i, limb in enumerate(component):
                match = re.search(rf"c{c} mod q_{i} \(coefficients\):\n(.*)\n(.*)\n", body)
                assert match is not None
                assert [int(t) for t in (match.group(1) + " " + match.group(2)).split()] == limb
        assert f"precision {step['precision_bits']:.2f} bits" in body
    assert f"y = {data['result']:.9f}" in text


def test_the_trace_is_reproducible_and_rejects_bad_inputs(traced: tuple[dict, str], capsys) -> None:
    _, text = traced
    assert main(["trace"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == text.rstrip("\n")
    assert main(["trace", "--record", "1,2"]) == 2
    assert "needs 4" in capsys.readouterr().err
    assert main(["trace", "--record", "4,4,4,4", "--weights", "4,4,4,4"]) == 2
    assert "would not fit" in capsys.readouterr().err
