"""The first-call (Numba compile) cost of ``benchmarks.ops``, measured in fresh processes: one with an
empty Numba cache, one with the cache the first filled. Each runs ``benchmarks/ops.py --probe-first-call``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OPS_SCRIPT = Path(__file__).resolve().with_name("ops.py")


def probe_first_call(ring_degree: int) -> dict[str, float]:
    """In this (fresh) process: seconds to import ckks, to make keys, and two passes over every operation."""
    start = time.perf_counter()
    import numpy as np

    import ckks
    from benchmarks.ops import build_params

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    params = build_params(ring_degree)
    keygen = ckks.KeyGenerator(params)
    evaluator = ckks.Evaluator(params, relin_key=keygen.relin_key(),
                               galois_keys=keygen.galois_keys(steps=[1]))
    encoder = ckks.Encoder(params)
    encryptor = ckks.Encryptor(params, keygen.public_key())
    decryptor = ckks.Decryptor(params, keygen.secret_key)
    setup_s = time.perf_counter() - start
    values = np.linspace(-1.0, 1.0, params.slots)

    def one_pass() -> float:
        begin = time.perf_counter()
        plain = encoder.encode(values)
        ct = encryptor.encrypt(plain)
        encoder.decode(decryptor.decrypt(ct))
        evaluator.add(ct, ct)
        evaluator.multiply_plain(ct, plain)
        evaluator.rescale(evaluator.relinearize(evaluator.multiply(ct, ct)))
        evaluator.rotate(ct, 1)
        return time.perf_counter() - begin

    first_s = one_pass()
    second_s = one_pass()
    return {"import_s": import_s, "keygen_first_s": setup_s, "ops_first_pass_s": first_s,
            "ops_second_pass_s": second_s}


def measure_first_call(ring_degree: int, timeout_s: float = 1800.0) -> dict[str, Any]:
    """First-call cost in two fresh processes sharing a new ``NUMBA_CACHE_DIR``: empty, then warm.

    ``compile_s`` = (import + keys + first pass over the ops) of the cold process minus the same of the
    warm one: what Numba compiles (some kernels compile at import); the warm process only loads the cache.

    Raises:
        RuntimeError: a probe process failed (its stderr is in the message).
    """
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ckkslab-numba-cache-") as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        for name in ("cold_cache", "warm_cache"):
            proc = subprocess.run([sys.executable, str(OPS_SCRIPT), "--probe-first-call",
                                   "--ring-degree", str(ring_degree)], env=env, capture_output=True,
                                  text=True, timeout=timeout_s, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"first-call probe ({name}) failed: {proc.stderr.strip()[-2000:]}")
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    cold, warm = results["cold_cache"], results["warm_cache"]
    stages = ("import_s", "keygen_first_s", "ops_first_pass_s")
    results["compile_s"] = sum(cold[s] for s in stages) - sum(warm[s] for s in stages)
    results["ring_degree"] = ring_degree
    return results
