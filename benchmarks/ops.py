"""CKKS primitive timings, ckkslab (on ``threads``) against Microsoft SEAL (through pyhelayers, one thread).

Run as ``ckkslab bench ops --ring-degree 16384 [--repeats R] [--json FILE]`` or
``python benchmarks/ops.py --ring-degree 16384``. Both engines get the same ring degree and the same chain
bit sizes: SEAL's context is built first (``reference.seal_ops``) and ckkslab's ``Parameters`` copy the bit
sizes of the primes it reports (one special prime of the first prime's size, scale 2^fractional bits).
Every operation is timed on fresh operands made outside the timed region, after a warm-up call (Numba
compiles on first use, Galois keys are prepared once); the figure is the minimum wall time over the
repeats, the least-disturbed run. The NTT is ckkslab's only (pyhelayers does not expose SEAL's): the time
of one forward or inverse transform of all limbs divided by the number of limbs, printed beside SEAL's
figure from issue 3 as "reported, not measured here".

Before any timing, ckkslab's kernels are compiled or loaded from the cache (``ckks.compile_kernels``,
reported on a line of its own), so the key generation time does not include them either. The first-call
(compile) cost is measured apart, in fresh subprocesses: one with ``NUMBA_CACHE_DIR`` at an empty
directory (everything compiles), one reusing that directory (the cache is warm).

Module level imports are the standard library only: ``ckkslab --help`` registers this module's options.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.first_call import measure_first_call, probe_first_call
from benchmarks.machine import machine_load, one_blas_thread, single_thread_environment

# SEAL's forward NTT at N=16384, as measured for issue 3 (not measurable through pyhelayers).
SEAL_NTT_REPORTED_US = 219.0
SEAL_NTT_REPORTED_RING_DEGREE = 16384

# Chains of reference.seal_ops.DEFAULT_REQUIREMENTS, for when SEAL cannot be asked:
# ring degree -> (moduli bits, special moduli bits, scale bits).
SEAL_CHAINS = {
    8192: ((47, 40, 40, 40), (47,), 40),
    16384: ((60, 53, 53, 53, 53, 53, 53), (60,), 53),
    32768: ((60,) + (53,) * 14, (60,), 53),
}
# Any other ring degree: an insecure toy chain (teaching and smoke tests; SEAL is not measured).
TOY_CHAIN = ((40, 30, 30), (40,), 30)


@dataclass(frozen=True)
class Row:
    """One line of the table: our op key, its label, SEAL's op key (None: ckkslab only), target ratio."""

    key: str
    label: str
    seal_key: str | None
    target: float | None = None


ROWS = (
    Row("encode", "encode", "encode"),
    Row("encrypt", "encrypt", "encrypt"),
    Row("decrypt_decode", "decrypt+decode", "decrypt_decode"),
    Row("add", "add", "add"),
    Row("multiply_plain", "multiply-plain", "multiply_plain"),
    Row("multiply", "multiply", "multiply_raw"),
    Row("relinearize", "relinearize", "relinearize", 0.8),
    Row("multiply_relinearize", "multiply+relinearize", "multiply_relinearize", 0.8),
    Row("rescale", "rescale", "rescale_raw", 1.0),
    Row("rotate", "rotate", "rotate", 0.8),
    Row("ntt_forward_limb", "NTT forward / limb", None, 0.5),
    Row("ntt_inverse_limb", "NTT inverse / limb", None),
)


Chain = tuple[tuple[int, ...], tuple[int, ...], int, int | None]


def chain_for(ring_degree: int, seal_params: dict[str, Any] | None = None) -> Chain:
    """(moduli bits, special bits, scale bits, security level) for ckkslab at ``ring_degree``.

    From SEAL's context when given (bits of each prime rounded, one special prime of the first prime's size,
    as ``reference.seal_ops`` infers, SEAL's security level), else SEAL's default chain for that N at 128
    bits, else a toy chain (security None: insecure, for teaching and smoke tests).
    """
    if seal_params is not None:
        bits = tuple(round(b) for b in seal_params["moduli_bits"])
        return bits, (bits[0],), round(seal_params["scale_bits"]), seal_params.get("security_level")
    if ring_degree in SEAL_CHAINS:
        return (*SEAL_CHAINS[ring_degree], 128)
    return (*TOY_CHAIN, None)


def build_params(ring_degree: int, seal_params: dict[str, Any] | None = None) -> Any:
    """ckkslab ``Parameters`` with the same N, chain bit sizes and security level as SEAL's."""
    import ckks

    moduli, special, scale, security = chain_for(ring_degree, seal_params)
    return ckks.Parameters(ring_degree=ring_degree, moduli_bits=moduli, special_moduli_bits=special,
                           scale_bits=scale, security=security)


def _min_time(op: Callable[[Any], object], make_input: Callable[[], Any], repeats: int) -> float:
    """Minimum wall seconds of ``op(x)`` over ``repeats`` runs, each on ``x = make_input()`` made untimed."""
    best = math.inf
    for _ in range(repeats):
        operand = make_input()
        start = time.perf_counter()
        op(operand)
        best = min(best, time.perf_counter() - start)
    return best


def _bits(error: float) -> float:
    return math.inf if error == 0 else -math.log2(error)


def time_ckkslab_ops(params: Any, repeats: int = 10, seed: int = 0) -> dict[str, Any]:
    """Minimum wall seconds of ckkslab's primitives at the top of ``params``' chain (on ckks.get_threads()).

    The same operations and operands as ``reference.seal_ops.time_seal_ops``: values uniform in [-1, 1]
    (``seed`` fixes the values only; keys and masks come from the CSPRNG), encode of a full vector,
    public-key encrypt, decrypt then decode, add, multiply-plain (no rescale), multiply (to 3 polynomials),
    relinearize, both, rescale of a relinearized product, rotate by 1, and the NTT of all limbs divided by
    the number of limbs. Also ``"precision_bits"``: -log2 max abs error of the timed results (a check that
    what was timed computes the right thing) and ``"keygen_s"`` (secret, public, relin, step-1 Galois key).

    Raises:
        ValueError: ``repeats`` is not a positive integer.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    import numpy as np

    import ckks
    from ckks.ring.ntt import ntt_forward, ntt_inverse
    from ckks.ring.rns import rns_basis

    start = time.perf_counter()
    keygen = ckks.KeyGenerator(params)
    public_key = keygen.public_key()
    evaluator = ckks.Evaluator(params, relin_key=keygen.relin_key(),
                               galois_keys=keygen.galois_keys(steps=[1]))
    keygen_s = time.perf_counter() - start
    encoder = ckks.Encoder(params)
    encryptor = ckks.Encryptor(params, public_key)
    decryptor = ckks.Decryptor(params, keygen.secret_key)

    rng = np.random.default_rng(seed)
    values = rng.uniform(-1.0, 1.0, params.slots)
    other = rng.uniform(-1.0, 1.0, params.slots)
    plain = encoder.encode(values)
    c1, c2 = encryptor.encrypt(plain), encryptor.encrypt(encoder.encode(other))
    product = evaluator.multiply(c1, c2)
    relinearized = evaluator.relinearize(product)
    basis = rns_basis(params.moduli, params.ring_degree)
    limbs = len(basis.moduli)
    residues = np.stack([rng.integers(0, q, params.ring_degree, dtype=np.uint64) for q in basis.moduli])

    def fresh(obj: Any) -> Callable[[], Any]:
        return obj.copy

    def none() -> None:
        return None

    ops: dict[str, tuple[Callable[[Any], object], Callable[[], Any]]] = {
        "encode": (lambda _: encoder.encode(values), none),
        "encrypt": (lambda _: encryptor.encrypt(plain), none),
        "decrypt_decode": (lambda c: encoder.decode(decryptor.decrypt(c)), fresh(c1)),
        "add": (lambda c: evaluator.add(c, c2), fresh(c1)),
        "multiply_plain": (lambda c: evaluator.multiply_plain(c, plain), fresh(c1)),
        "multiply": (lambda c: evaluator.multiply(c, c2), fresh(c1)),
        "relinearize": (evaluator.relinearize, fresh(product)),
        "multiply_relinearize": (lambda c: evaluator.relinearize(evaluator.multiply(c, c2)), fresh(c1)),
        "rescale": (evaluator.rescale, fresh(relinearized)),
        "rotate": (lambda c: evaluator.rotate(c, 1), fresh(c1)),
        "ntt_forward_limb": (lambda a: ntt_forward(a, basis.tables), fresh(residues)),
        "ntt_inverse_limb": (lambda a: ntt_inverse(a, basis.tables), fresh(residues)),
    }
    for op, make_input in ops.values():  # warm-up: Numba compilation, table caches, Galois key preparation
        op(make_input())
    timings = {name: _min_time(op, make_input, repeats) for name, (op, make_input) in ops.items()}
    timings["ntt_forward_limb"] /= limbs
    timings["ntt_inverse_limb"] /= limbs

    def decoded(ct: Any) -> Any:
        return encoder.decode(decryptor.decrypt(ct))

    precision = {
        "encrypt_decrypt": _bits(float(np.abs(decoded(c1) - values).max())),
        "multiply_relinearize_rescale": _bits(float(np.abs(decoded(evaluator.rescale(relinearized))
                                                           - values * other).max())),
        "rotate": _bits(float(np.abs(decoded(evaluator.rotate(c1, 1)) - np.roll(values, -1)).max())),
    }
    return {**timings, "keygen_s": keygen_s, "limbs": limbs, "precision_bits": precision}


def describe_params(params: Any) -> dict[str, Any]:
    """ckkslab's parameters as JSON-able facts: N, primes and their bits, special primes, scale, security."""
    return {
        "library": "ckkslab",
        "ring_degree": params.ring_degree,
        "slots": params.slots,
        "moduli": list(params.moduli),
        "moduli_bits": [round(math.log2(q), 3) for q in params.moduli],
        "special_moduli": list(params.special_moduli),
        "special_moduli_bits": [round(math.log2(p), 3) for p in params.special_moduli],
        "scale_bits": round(math.log2(params.scale), 6),
        "log_qp": round(params.log_qp, 3),
        "key_switch_digits": params.digits,
        "security_level": params.security,
    }


# ----- the benchmark ----------------------------------------------------------------------------------------
def _seal_timer(ring_degree: int, repeats: int) -> dict[str, Any]:
    from reference.seal_ops import time_seal_ops

    return time_seal_ops(ring_degree, repeats=repeats, threads=1)


def run(ring_degree: int = 16384, repeats: int = 10, rounds: int = 1, first_call: bool = True,
        seal_timer: Callable[[int, int], dict[str, Any]] | None = None,
        progress: Callable[[str], None] | None = None, threads: int = 1) -> dict[str, Any]:
    """Time both engines ``rounds`` times (alternating SEAL, ckkslab) and keep each op's minimum.

    ckkslab's parallel kernels run on ``threads`` threads; SEAL's ops are single-threaded.

    ``seal_timer(ring_degree, repeats)`` defaults to ``reference.seal_ops.time_seal_ops`` with one thread;
    when it raises (pyhelayers missing, no SEAL chain at this N), the result holds ckkslab's column and the
    reason in ``"seal_unavailable"``. Returns a JSON-able dictionary (see ``ROWS`` for the op keys).

    Raises:
        ValueError: ``repeats`` or ``rounds`` not a positive integer.
    """
    for name, value in (("repeats", repeats), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    import ckks
    from reference.errors import HelayersInputError, HelayersUnavailable

    single_thread_environment()
    ckks.set_threads(threads)
    ckks.keep_freed_memory()
    say = progress or (lambda _msg: None)
    timer = seal_timer or _seal_timer
    kernels = ckks.compile_kernels(quiet=progress is None)
    load_before = machine_load()
    seal: dict[str, Any] | None = None
    seal_unavailable: str | None = None
    ours: dict[str, Any] | None = None
    params = None
    for round_no in range(rounds):
        if seal_unavailable is None:
            say(f"round {round_no + 1}/{rounds}: SEAL at N={ring_degree}, {repeats} repeats")
            try:
                result = timer(ring_degree, repeats)
            except (HelayersUnavailable, HelayersInputError) as exc:  # report it, measure ours alone
                seal_unavailable = f"{type(exc).__name__}: {exc}"
            else:
                seal = result if seal is None else _merge_min(seal, result)
        if params is None:
            params = build_params(ring_degree, None if seal is None else seal["params"])
        say(f"round {round_no + 1}/{rounds}: ckkslab at N={ring_degree}, {repeats} repeats")
        with one_blas_thread():
            result = time_ckkslab_ops(params, repeats)
        ours = result if ours is None else _merge_min(ours, result)
    load_after = machine_load()
    first = None
    if first_call:
        say("first-call cost: two fresh processes (empty, then warm Numba cache)")
        first = measure_first_call(ring_degree)
    result = assemble(ring_degree, repeats, rounds, params, ours, seal, seal_unavailable, first,
                      (load_before, load_after), threads)
    result["compile_kernels"] = kernels.as_json()
    return result


def _merge_min(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per-op minimum of two timing dictionaries (non-float entries are kept from ``a``)."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, float) and isinstance(a.get(key), float) and key != "keygen_s":
            out[key] = min(a[key], value)
    return out


def assemble(ring_degree: int, repeats: int, rounds: int, params: Any, ours: dict[str, Any],
             seal: dict[str, Any] | None, seal_unavailable: str | None, first_call: dict[str, Any] | None,
             loads: tuple[float | None, float | None], threads: int = 1) -> dict[str, Any]:
    """The JSON-able result: one entry per row with both times (seconds), ratio ours/SEAL and target."""
    import numba
    import numpy as np

    rows = []
    for row in ROWS:
        ckkslab_s = ours[row.key]
        seal_s = None if seal is None or row.seal_key is None else seal[row.seal_key]
        entry: dict[str, Any] = {"op": row.label, "key": row.key, "seal_op": row.seal_key,
                                 "ckkslab_s": ckkslab_s, "seal_s": seal_s,
                                 "ratio": None if seal_s is None else ckkslab_s / seal_s,
                                 "target_ratio": row.target, "met": None}
        if row.key == "ntt_forward_limb":
            reported = ring_degree == SEAL_NTT_REPORTED_RING_DEGREE
            entry["seal_reported_s"] = SEAL_NTT_REPORTED_US * 1e-6 if reported else None
            entry["note"] = (f"SEAL {SEAL_NTT_REPORTED_US:g} us/limb at N={SEAL_NTT_REPORTED_RING_DEGREE} is "
                             "reported (issue 3), not measured here: pyhelayers does not expose SEAL's NTT")
            if reported:
                entry["ratio_to_reported"] = ckkslab_s / entry["seal_reported_s"]
                entry["met"] = entry["ratio_to_reported"] <= row.target
        elif row.target is not None and entry["ratio"] is not None:
            entry["met"] = entry["ratio"] <= row.target
        rows.append(entry)
    return {
        "benchmark": "ops",
        "ring_degree": ring_degree,
        "repeats": repeats,
        "rounds": rounds,
        "statistic": "min wall seconds over repeats (and rounds), fresh operands made outside the timing",
        "threads": {"ckkslab": threads, "seal": None if seal is None else seal["params"].get("threads"),
                    "numba_num_threads": numba.config.NUMBA_NUM_THREADS},
        "machine": {"load_1min_before": loads[0], "load_1min_after": loads[1], "cpu_count": os.cpu_count(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "numba": numba.__version__},
        "ckkslab_params": describe_params(params),
        "seal_params": None if seal is None else seal["params"],
        "seal_available": seal is not None,
        "seal_unavailable": seal_unavailable,
        "ops": rows,
        "ckkslab_keygen_s": ours["keygen_s"],
        "ckkslab_precision_bits": ours["precision_bits"],
        "first_call": first_call,
    }


# ----- command line -----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ckkslab bench ops`` and of this script."""
    parser.add_argument("--ring-degree", type=int, default=16384,
                        help="N: 8192, 16384 (default) or 32768 use SEAL's chain; any other power of two "
                        "measures ckkslab alone on an insecure toy chain")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per op, the minimum is kept "
                        "(default 10)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate SEAL and ckkslab this many times, keeping each op's minimum: evens "
                        "out a noisy shared machine (default 1)")
    parser.add_argument("--no-first-call", action="store_true",
                        help="skip the first-call (Numba compile) measurement in fresh processes")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write all results to FILE")


def run_from_args(args: argparse.Namespace, quiet: bool = False) -> dict[str, Any]:
    """Run the benchmark the parsed options describe, print the table, write ``--json``; return the result."""
    from benchmarks.ops_report import format_table

    progress = None if quiet or not sys.stderr.isatty() else (lambda msg: print(msg, file=sys.stderr))
    result = run(args.ring_degree, args.repeats, args.rounds, first_call=not args.no_first_call,
                 progress=progress, threads=getattr(args, "threads", 1) or 1)
    print(format_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    """Script entry point (``python benchmarks/ops.py ...``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--probe-first-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    single_thread_environment()
    if args.probe_first_call:
        print(json.dumps(probe_first_call(args.ring_degree)))
        return 0
    run_from_args(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
