"""Low-level Microsoft SEAL timings through pyhelayers' ``SealCkksContext``: the baseline of ``bench ops``.

``SealCkksContext.init(HeConfigRequirement(slots, depth, fractional_bits, integer_bits, security))`` builds
N = 2 x slots with a first prime of fractional + integer bits, ``depth`` primes of fractional bits, one
special prime (not exposed; the 128-bit feasibility boundary shows it has the first prime's size), scale
2^fractional_bits. Settings per ring degree (all 128-bit secure, Homomorphic Encryption Standard table):

    N=8192:  (4096, 3, 40, 7)   chain [47, 40x3]  (+47 special: 214 <= 218 bits)
    N=16384: (8192, 6, 53, 7)   chain [60, 53x6]  (+60 special: 438 <= 438 bits)
    N=32768: (16384, 14, 53, 7) chain [60, 53x14] (+60 special: 862 <= 881 bits)

Each operation runs on a fresh copy ``pyhelayers.CTile(c)`` made outside the timed region; the result is
the minimum wall time over ``repeats`` (the least-disturbed run).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from reference import load_pyhelayers
from reference.errors import HelayersInputError
from reference.runtime import openmp_threads

# ring degree -> (multiplication depth, fractional bits, integer bits)
DEFAULT_REQUIREMENTS = {8192: (3, 40, 7), 16384: (6, 53, 7), 32768: (14, 53, 7)}

OPS = ("encode", "encrypt", "decrypt_decode", "add", "multiply_plain", "multiply_raw", "relinearize",
       "multiply_relinearize", "rescale_raw", "rotate")


def seal_context(ring_degree: int = 16384, multiplication_depth: int | None = None,
                 fractional_bits: int | None = None, integer_bits: int | None = None) -> Any:
    """An initialised ``SealCkksContext`` at ``ring_degree`` with rotation key for step 1 only.

    Missing settings come from ``DEFAULT_REQUIREMENTS``. Only the step-1 rotation key is generated
    (``PublicFunctions.rotate = CUSTOM_ROTATIONS``), which keeps key generation short.

    Raises:
        HelayersUnavailable: pyhelayers is missing.
        HelayersInputError: no default for ``ring_degree``, or SEAL finds the requirement infeasible
            (e.g. the chain does not fit the 128-bit budget of that N).
    """
    h = load_pyhelayers()
    missing = None in (multiplication_depth, fractional_bits, integer_bits)
    if ring_degree not in DEFAULT_REQUIREMENTS and missing:
        raise HelayersInputError(f"no default SEAL chain for ring degree {ring_degree}; choose one of "
                                 f"{sorted(DEFAULT_REQUIREMENTS)} or give depth and bit sizes")
    depth, frac, integer = DEFAULT_REQUIREMENTS.get(ring_degree, (None, None, None))
    depth = depth if multiplication_depth is None else multiplication_depth
    frac = frac if fractional_bits is None else fractional_bits
    integer = integer if integer_bits is None else integer_bits
    requirement = h.HeConfigRequirement(ring_degree // 2, depth, frac, integer, 128)
    functions = requirement.public_functions
    functions.rotate = h.RotationSetType.CUSTOM_ROTATIONS
    functions.set_rotation_steps(np.array([1], dtype=np.int32))
    requirement.public_functions = functions
    context = h.SealCkksContext()
    try:
        context.init(requirement)
    except RuntimeError as exc:
        raise HelayersInputError(f"SEAL cannot build N={ring_degree}, depth {depth}, {frac} fractional + "
                                 f"{integer} integer bits at 128-bit security: {exc}") from exc
    return context


def context_params(context: Any) -> dict[str, Any]:
    """What the context really holds, queried from it: N, chain primes and their bits, scale."""
    chain = [int(q) for q in context.get_modulus_chain()]
    return {
        "library": context.get_library_name(),
        "ring_degree": 2 * int(context.slot_count()),
        "slots": int(context.slot_count()),
        "moduli": chain,
        "moduli_bits": [round(math.log2(q), 3) for q in chain],
        "num_primes": len(chain),
        "special_primes": "not exposed by pyhelayers (one, inferred: same size as the first prime)",
        "scale_bits": round(math.log2(context.get_default_scale()), 6),
        "security_level": int(context.get_security_level()),
    }


def _min_time(op: Callable[[Any], object], make_input: Callable[[], Any], repeats: int) -> float:
    """Minimum wall seconds of ``op(x)`` over ``repeats`` runs, each on ``x = make_input()`` made untimed."""
    best = math.inf
    for _ in range(repeats):
        operand = make_input()
        start = time.perf_counter()
        op(operand)
        best = min(best, time.perf_counter() - start)
    return best


def time_seal_ops(ring_degree: int = 16384, repeats: int = 10, threads: int = 1,
                  multiplication_depth: int | None = None, fractional_bits: int | None = None,
                  integer_bits: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Minimum wall seconds of SEAL's CKKS primitives at ``ring_degree``, plus ``"params"``.

    Operations (all at the top of the chain, values uniform in [-1, 1], ``seed`` fixes the values only):
    encode (full vector), encrypt (``encrypt_tile`` of an encoded plaintext), decrypt_decode
    (``decrypt_decode_double``), add, multiply_plain (``multiply_plain_raw``, no rescale), multiply_raw
    (ct x ct to 3 polynomials), relinearize (of such a product), multiply_relinearize (both),
    rescale_raw (of a relinearized product), rotate (by 1 slot, one key switch).

    Raises:
        HelayersUnavailable: pyhelayers is missing.
        HelayersInputError: ``repeats`` or ``threads`` not a positive integer, or no such SEAL context.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise HelayersInputError(f"repeats must be a positive integer, got {repeats!r}")
    h = load_pyhelayers()
    with openmp_threads(h, threads) as omp_threads:
        context = seal_context(ring_degree, multiplication_depth, fractional_bits, integer_bits)
        encoder = h.Encoder(context)
        rng = np.random.default_rng(seed)
        values = rng.uniform(-1.0, 1.0, context.slot_count())
        other = rng.uniform(-1.0, 1.0, context.slot_count())
        plain = encoder.encode(values)
        c1, c2 = encoder.encrypt_tile(plain), encoder.encode_encrypt(other)
        product = h.CTile(c1)
        product.multiply_raw(c2)
        relinearized = h.CTile(product)
        relinearized.relinearize()

        def fresh(tile: Any) -> Callable[[], Any]:
            return lambda: h.CTile(tile)

        def none() -> None:
            return None

        timings = {
            "encode": _min_time(lambda _: encoder.encode(values), none, repeats),
            "encrypt": _min_time(lambda _: encoder.encrypt_tile(plain), none, repeats),
            "decrypt_decode": _min_time(encoder.decrypt_decode_double, fresh(c1), repeats),
            "add": _min_time(lambda c: c.add(c2), fresh(c1), repeats),
            "multiply_plain": _min_time(lambda c: c.multiply_plain_raw(plain), fresh(c1), repeats),
            "multiply_raw": _min_time(lambda c: c.multiply_raw(c2), fresh(c1), repeats),
            "relinearize": _min_time(lambda c: c.relinearize(), fresh(product), repeats),
            "multiply_relinearize": _min_time(lambda c: (c.multiply_raw(c2), c.relinearize()), fresh(c1),
                                              repeats),
            "rescale_raw": _min_time(lambda c: c.rescale_raw(), fresh(relinearized), repeats),
            "rotate": _min_time(lambda c: c.rotate(1), fresh(c1), repeats),
        }
    params = context_params(context)
    params.update({"threads": omp_threads, "repeats": repeats, "statistic": "min wall seconds",
                   "requirement": context.get_he_config_requirement().to_string().strip().splitlines()[1:]})
    return {**timings, "params": params}
