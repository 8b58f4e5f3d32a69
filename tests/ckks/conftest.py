"""Shared fixtures of the ckks tests: toy parameters, cached key sets, and the INDEPENDENT reference math.

The reference functions (exposed through the session fixture ``ref``) never call the code under test: the ring
product is the schoolbook negacyclic product with Python integers, the CRT is Python-int Chinese remaindering,
the canonical embedding is the direct O(N^2) sum at zeta^(5^j), zeta = exp(i pi / N) (or, where N^2 is
too many, numpy's FFT of length 2N), and the automorphism is X^i -> X^(i g mod 2N) with X^N = -1.  Only the
NTT is used to bring a ciphertext's NTT-form limbs back to coefficients (``to_coefficients``); the NTT itself
is checked against direct evaluation in test_ntt.py.

(Helpers are handed out by a fixture, not imported: several conftest.py files exist in tests/ and none of them
is importable by name.)
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import ckks
from ckks.ring import rns

# --------------------------------------------------------------------------------------------------------
# Reference math (Python integers / direct numpy sums; independent of ckks)
# --------------------------------------------------------------------------------------------------------


def negacyclic_mul(a: list[int], b: list[int], q: int | None = None) -> list[int]:
    """Schoolbook a * b mod (X^N + 1) with Python ints (mod q if given): X^(i+j) = -X^(i+j-N) past N."""
    n = len(a)
    out = [0] * n
    for i, ai in enumerate(a):
        if ai == 0:
            continue
        for j, bj in enumerate(b):
            k = i + j
            if k < n:
                out[k] += ai * bj
            else:
                out[k - n] -= ai * bj
    return [v % q for v in out] if q is not None else out


def ternary_mul_mod(c: np.ndarray, s: np.ndarray, q: int) -> np.ndarray:
    """c * s mod (X^N + 1, q) for c uint64 in [0, q) and a ternary s, by shift-and-add (exact in uint64)."""
    n = c.size
    qq = np.uint64(q)
    neg_c = (qq - c) % qq
    acc = np.zeros(n, dtype=np.uint64)
    for i in np.flatnonzero(s):
        # X^i * c: coefficient k moves to k + i; the part past N wraps with a sign flip.
        shifted = np.empty(n, dtype=np.uint64)
        shifted[i:] = c[: n - i]
        shifted[:i] = neg_c[n - i :]
        if s[i] < 0:
            shifted = (qq - shifted) % qq
        acc = (acc + shifted) % qq
    return acc


def crt(
    residues: np.ndarray | list[list[int]], moduli: tuple[int, ...] | list[int], centered: bool = True
) -> list[int]:
    """The integers with these residues (rows: one per modulus) by Python-int CRT, centered in (-Q/2, Q/2]."""
    big_q = math.prod(moduli)
    coeffs = []
    rows = [[int(v) for v in row] for row in residues]
    basis = [(big_q // q) * pow(big_q // q, -1, q) for q in moduli]
    for k in range(len(rows[0])):
        x = sum(rows[i][k] * basis[i] for i in range(len(moduli))) % big_q
        if centered and x > big_q // 2:
            x -= big_q
        coeffs.append(x)
    return coeffs


def residues(values: list[int], moduli: tuple[int, ...]) -> np.ndarray:
    """(L, N) uint64 array of values mod each q (Python ints, any sign or size)."""
    return np.array([[int(v) % q for v in values] for q in moduli], dtype=np.uint64)


def automorphism(coeffs: list[int], g: int) -> list[int]:
    """a(X^g) mod X^N + 1 by the definition: X^i -> X^(i g mod 2N), and X^(N + r) = -X^r."""
    n = len(coeffs)
    out = [0] * n
    for i, c in enumerate(coeffs):
        e = (i * g) % (2 * n)
        if e < n:
            out[e] += c
        else:
            out[e - n] -= c
    return out


def slot_exponents(n: int) -> np.ndarray:
    """5^j mod 2N for the N/2 slots, by Python pow."""
    return np.array([pow(5, j, 2 * n) for j in range(n // 2)], dtype=np.int64)


def embedding(coeffs) -> np.ndarray:
    """The canonical embedding m(zeta^(5^j)), j < N/2, zeta = exp(i pi / N): the direct O(N^2) sum."""
    m = np.asarray([float(c) for c in coeffs], dtype=np.float64)
    n = m.size
    powers = np.outer(slot_exponents(n), np.arange(n, dtype=np.int64)) % (2 * n)
    return np.exp(1j * np.pi * powers / n) @ m


def embedding_inverse(z: np.ndarray, n: int) -> np.ndarray:
    """The real m of degree < N with m(zeta^(5^j)) = z_j (and the conjugates at the other roots).

    Orthogonality of the N odd powers w of zeta (sum_w w^(k - l) = N [k = l]) gives
    m_k = (1/N) sum_w m(w) w^-k = (2/N) Re sum_j z_j zeta^(-5^j k).
    """
    z = np.zeros(n // 2, dtype=np.complex128) + np.asarray(z, dtype=np.complex128)
    powers = np.outer(np.arange(n, dtype=np.int64), slot_exponents(n)) % (2 * n)
    return (2.0 / n) * (np.exp(-1j * np.pi * powers / n) @ z).real


def embedding_fft(coeffs) -> np.ndarray:
    """The canonical embedding m(zeta^(5^j)), j < N/2, by numpy's FFT: zeta = exp(2 pi i / 2N), so
    m(zeta^t) = sum_k m_k exp(2 pi i k t / 2N) = 2N * ifft(m zero-padded to 2N)[t], read at t = 5^j mod 2N."""
    m = np.asarray([float(c) for c in coeffs], dtype=np.float64)
    n = m.size
    return (2 * n) * np.fft.ifft(m, 2 * n)[slot_exponents(n)]


def embedding_inverse_fft(z: np.ndarray, n: int) -> np.ndarray:
    """``embedding_inverse`` by numpy's FFT: with w_t = z_j at t = 5^j mod 2N (0 elsewhere),
    m_k = (2/N) Re sum_j z_j zeta^(-5^j k) = (2/N) Re fft(w)[k], k < N."""
    w = np.zeros(2 * n, dtype=np.complex128)
    w[slot_exponents(n)] = np.zeros(n // 2, dtype=np.complex128) + np.asarray(z, dtype=np.complex128)
    return (2.0 / n) * np.fft.fft(w)[:n].real


def to_coefficients(data: np.ndarray, moduli: tuple[int, ...], n: int) -> np.ndarray:
    """NTT-form limbs (L, N) -> coefficient-form limbs (the NTT is checked against direct evaluation)."""
    return rns.from_ntt(data, rns.rns_basis(tuple(moduli), n))


def decrypt_exact(ct: ckks.Ciphertext, secret: np.ndarray, params: ckks.Parameters) -> list[int]:
    """sum_i c_i s^i mod Q_l as centered Python integers, with the ring products by shift-and-add.

    Independent of ``Decryptor``: each component goes to coefficients, c_i s^i is built by repeated
    multiplication by the ternary s (``ternary_mul_mod``), then Python-int CRT.
    """
    moduli = params.moduli[: ct.level + 1]
    n = params.ring_degree
    s = np.asarray(secret, dtype=np.int64)
    rows = []
    comps = [to_coefficients(c, moduli, n) for c in ct.data]
    for i, q in enumerate(moduli):
        # Horner: ((c_k s + c_{k-1}) s + ...) + c_0
        acc = comps[-1][i].copy()
        for comp in reversed(comps[:-1]):
            acc = (ternary_mul_mod(acc, s, q) + comp[i]) % np.uint64(q)
        rows.append(acc)
    return crt(np.array(rows), moduli)


def plaintext_coefficients(pt: ckks.Plaintext, params: ckks.Parameters) -> list[int]:
    """The integer polynomial of a plaintext (centered Python ints)."""
    moduli = params.moduli[: pt.level + 1]
    return crt(to_coefficients(pt.data, moduli, params.ring_degree), moduli)


def inf_norm(values: list[int]) -> int:
    return max(abs(int(v)) for v in values)


def center(x: int, q: int) -> int:
    x %= q
    return x - q if x > q // 2 else x


@pytest.fixture(scope="session")
def ref() -> SimpleNamespace:
    """The independent reference functions above, as one namespace."""
    return SimpleNamespace(
        negacyclic_mul=negacyclic_mul,
        ternary_mul_mod=ternary_mul_mod,
        crt=crt,
        residues=residues,
        automorphism=automorphism,
        slot_exponents=slot_exponents,
        embedding=embedding,
        embedding_inverse=embedding_inverse,
        embedding_fft=embedding_fft,
        embedding_inverse_fft=embedding_inverse_fft,
        to_coefficients=to_coefficients,
        decrypt_exact=decrypt_exact,
        plaintext_coefficients=plaintext_coefficients,
        inf_norm=inf_norm,
        center=center,
    )


# --------------------------------------------------------------------------------------------------------
# Parameters and keys
# --------------------------------------------------------------------------------------------------------


def make_toy_params(ring_degree: int = 64, **kw) -> ckks.Parameters:
    """Insecure toy parameters (security=None): q_0 50 bits, two 40-bit rescaling primes, a 60-bit special."""
    args = dict(moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40, security=None)
    args.update(kw)
    return ckks.Parameters(ring_degree=ring_degree, **args)


class KeySet(SimpleNamespace):
    """Parameters, keys and the objects built from them (one per parameter set, cached per session)."""


def make_key_set(params: ckks.Parameters, seed: int, steps=(), conjugate: bool = False) -> KeySet:
    kg = ckks.KeyGenerator(params, seed=seed)
    pk = kg.public_key()
    rlk = kg.relin_key()
    gk = kg.galois_keys(steps=list(steps), conjugate=conjugate)
    return KeySet(
        params=params,
        keygen=kg,
        sk=kg.secret_key,
        pk=pk,
        rlk=rlk,
        gk=gk,
        encoder=ckks.Encoder(params),
        encryptor=ckks.Encryptor(params, pk, seed=seed + 1),
        sk_encryptor=ckks.Encryptor(params, kg.secret_key, seed=seed + 2),
        decryptor=ckks.Decryptor(params, kg.secret_key),
        evaluator=ckks.Evaluator(params, relin_key=rlk, galois_keys=gk),
    )


@pytest.fixture(scope="session")
def toy_params() -> ckks.Parameters:
    """N = 64 (32 slots), chain 50 + 40 + 40 bits, special 60 bits, scale 2^40, insecure (teaching size)."""
    return make_toy_params(64)


@pytest.fixture(scope="session")
def toy(toy_params: ckks.Parameters) -> KeySet:
    """Keys for ``toy_params`` with a Galois key for every rotation step and for conjugation."""
    return make_key_set(toy_params, seed=11, steps=range(1, toy_params.slots), conjugate=True)


@pytest.fixture(scope="session")
def key_set_factory():
    """make_key_set(params, seed, steps, conjugate), cached per argument tuple for the session."""
    cache: dict = {}

    def get(params: ckks.Parameters, seed: int = 5, steps=(), conjugate: bool = False) -> KeySet:
        key = (params, seed, tuple(steps), conjugate)
        if key not in cache:
            cache[key] = make_key_set(params, seed, steps, conjugate)
        return cache[key]

    return get
