"""Targets of ``ckks.from_bytes``: seeds of every serializable type at toy size (``PARAMS``, N = 64), the
range check of a loaded object, and one loader per type, its mutated buffers resealed (``Loader.reseal``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import ckks

from .oracle import Loader

PARAMS = ckks.Parameters(ring_degree=64, moduli_bits=(40, 30, 30), special_moduli_bits=(40,), scale_bits=30,
                         security=None)


def ckks_objects() -> dict[str, list[Any]]:
    """Seeds of every serializable type, at toy size (N = 64), several shapes each."""
    kg = ckks.KeyGenerator(PARAMS, seed=7)
    sk, pk = kg.secret_key, kg.public_key()
    rlk, gk = kg.relin_key(), kg.galois_keys(steps=[1, -1, 3], conjugate=True)
    encoder = ckks.Encoder(PARAMS)
    x = np.linspace(-1, 1, PARAMS.slots)
    ct = ckks.Encryptor(PARAMS, pk, seed=3).encrypt(encoder.encode(x))
    ev = ckks.Evaluator(PARAMS, relin_key=rlk, galois_keys=gk)
    product = ev.multiply(ct, ct)
    return {
        "parameters": [PARAMS],
        "plaintext": [encoder.encode(x), encoder.encode(x, level=0)],
        "ciphertext": [ct, product, ev.rescale(ev.relinearize(product))],
        "secret_key": [sk],
        "public_key": [pk],
        "relin_key": [rlk],
        "galois_keys": [gk, kg.galois_keys(steps=[2])],
        "server_bundle": [ckks.ServerBundle(PARAMS, pk, rlk, gk), ckks.ServerBundle(PARAMS),
                          ckks.ServerBundle(PARAMS, relin_key=rlk)],
    }


def ckks_problems(obj: Any) -> str:
    """'' if every residue of ``obj`` is below its prime and every field is in range for PARAMS."""
    p = PARAMS
    qp = np.array(p.moduli + p.special_moduli, dtype=np.uint64)

    def below(a: np.ndarray, moduli: np.ndarray) -> bool:
        return bool(np.all(a < moduli.reshape(-1, 1)))

    if isinstance(obj, (ckks.Plaintext, ckks.Ciphertext)):
        if not (0 <= obj.level <= p.max_level and math.isfinite(obj.scale) and obj.scale > 0):
            return f"level {obj.level} / scale {obj.scale}"
        if not below(obj.data, qp[: obj.level + 1]):
            return "a residue is not below its prime"
    elif isinstance(obj, ckks.SecretKey):
        if not np.all(np.abs(obj.coefficients.astype(np.int64)) <= 1):
            return "secret key coefficients outside {-1, 0, 1}"
    elif isinstance(obj, ckks.PublicKey):
        return "" if below(obj.data, qp) else "a public key residue is not below its prime"
    elif isinstance(obj, ckks.RelinKey):
        return "" if below(obj.key.data, qp) else "a relinearization key residue is not below its prime"
    elif isinstance(obj, ckks.GaloisKeys):
        if any(g % 2 == 0 or not 1 < g < 2 * p.ring_degree for g in obj.keys):
            return f"Galois elements {sorted(obj.keys)}"
        if not all(below(k.data, qp) for k in obj.keys.values()):
            return "a Galois key residue is not below its prime"
    elif isinstance(obj, ckks.ServerBundle):
        members = [m for m in (obj.public_key, obj.relin_key, obj.galois_keys) if m is not None]
        return "; ".join(filter(None, (ckks_problems(m) for m in members)))
    return ""


def ckks_loaders() -> list[Loader]:
    loaders = []
    for name, objects in ckks_objects().items():
        seeds = [ckks.to_bytes(o) for o in objects]

        def check(i: int, buf: bytes, obj: Any) -> str:
            problem = ckks_problems(obj)
            if problem:
                return f"invalid object: {problem}"
            again = ckks.to_bytes(obj)
            return "faithful" if again == buf else f"re-serializes to {len(again)} other bytes"

        loaders.append(Loader(f"ckks.{name}", seeds, lambda i, b: ckks.from_bytes(b, params=PARAMS),
                              (ckks.SerializationError,), check, reseal=True))
    return loaders
