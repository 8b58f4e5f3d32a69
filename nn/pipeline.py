"""The whole ckkslab flow on one or more batches, client and server sharing only bytes (like the paper's).

client: plan -> keys -> (encrypt model) -> encrypt batch -> [bytes] -> server: load bundle, model, data ->
predict -> [bytes] -> client: decrypt. Used by ``ckkslab compare`` and the inference benchmark; the CLI's
keygen / encrypt / predict / decrypt commands run the same steps through files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ckks
from ckks.progress import Progress

from . import artifacts
from . import encrypted as enc
from .errors import refuse_complex
from .model import PlainNetwork
from .plan import InferencePlan, plan_inference

STAGES = ("keygen", "encrypt_model", "encrypt_data", "predict", "decrypt")


@dataclass
class CkksResult:
    """Decrypted predictions of the ckkslab flow and what each stage cost (wall seconds, summed over batches).

    ``extra["server_load_s"]``: the server's one-time loading of bundle and model and preparation of the weights
    (not part of ``predict``, as HElayers' model loading is not part of its predict).
    """

    predictions: np.ndarray
    timings_s: dict[str, float]
    stage_seconds: dict[str, float]
    sizes_bytes: dict[str, int]
    params: dict[str, Any]
    plan_text: str
    extra: dict[str, Any] = field(default_factory=dict)


def plan_summary(plan: InferencePlan, network: PlainNetwork, encrypt_weights: bool) -> dict[str, Any]:
    """The plan as plain JSON-able values (for reports)."""
    p = plan.params
    return {
        "backend": "ckkslab",
        "ring_degree": p.ring_degree,
        "slots": p.slots,
        "moduli_bits": list(p.moduli_bits),
        "special_moduli_bits": list(p.special_moduli_bits),
        "scale_bits": p.scale_bits,
        "log_qp": round(p.log_qp, 2),
        "security": p.security,
        "key_switch_digits": p.digits,
        "packing": plan.packing,
        "block": plan.block,
        "features_per_ciphertext": plan.features_per_ciphertext,
        "rotation_steps": list(plan.rotation_steps),
        "int_bits": plan.int_bits,
        "frac_bits": plan.frac_bits,
        "encrypt_weights": encrypt_weights,
        "batch_size": plan.batch_size,
        "threads": 1,
        "depth": plan.depth,
        "input_dim": network.input_dim,
        "output_dim": network.output_dim,
    }


def run_ckkslab(
    network: PlainNetwork,
    x: np.ndarray,
    batch_size: int = 4096,
    encrypt_weights: bool = True,
    frac_bits: int = 30,
    calibration_x: np.ndarray | None = None,
    quiet: bool = False,
) -> CkksResult:
    """Plan, key, encrypt, predict and decrypt ``x`` (n, d) in batches of ``batch_size`` records.

    ``calibration_x`` (default: x itself) fixes the planned value range. Single thread (Numba kernels are
    not parallel).

    Raises:
        ValueError (PlanError, ckks.ValueRangeError): bad shapes, no secure parameters, complex values, values
            out of range.
    """
    x = np.asarray(refuse_complex(x, "run_ckkslab: the records", ckks.ValueRangeError), dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != network.input_dim:
        raise ValueError(f"expected records of shape (n, {network.input_dim}), got {x.shape}")
    if x.shape[0] == 0 or x.shape[0] % batch_size:
        raise ValueError(f"{x.shape[0]} records are not a positive multiple of the batch size {batch_size}")
    times = dict.fromkeys(STAGES, 0.0)
    sizes = {"context": 0, "model": 0, "data": 0, "predictions": 0}
    show = False if quiet else None

    def clock(stage: str, start: float) -> None:
        times[stage] += time.perf_counter() - start

    start = time.perf_counter()
    plan = plan_inference(
        network, x if calibration_x is None else calibration_x, batch_size=batch_size, frac_bits=frac_bits
    )
    keygen = ckks.KeyGenerator(plan.params)
    public_key = keygen.public_key()
    bundle = ckks.ServerBundle(
        plan.params, public_key, keygen.relin_key(), keygen.galois_keys(plan.rotation_steps)
    )
    bundle_bytes = ckks.to_bytes(bundle)
    clock("keygen", start)
    sizes["context"] = len(bundle_bytes)

    start = time.perf_counter()
    encoder = ckks.Encoder(plan.params)
    # The client owns the secret key: secret-key encryption (smaller noise, no division by P), as `ckkslab encrypt`.
    encryptor = ckks.Encryptor(plan.params, keygen.secret_key)
    model = enc.compile_model(network, plan, encoder, encryptor if encrypt_weights else None)
    model_bytes = artifacts.model_to_bytes(model)
    clock("encrypt_model", start)
    sizes["model"] = len(model_bytes)

    # The server: loads the bundle (no secret key in it) and the model, and prepares the weights, once.
    start = time.perf_counter()
    server_bundle = ckks.from_bytes(bundle_bytes)
    server_model = artifacts.model_from_bytes(model_bytes, server_bundle.params)
    evaluator = ckks.Evaluator(
        server_bundle.params, relin_key=server_bundle.relin_key, galois_keys=server_bundle.galois_keys
    )
    prepared = enc.prepare_weights(server_model, evaluator)
    server_load = time.perf_counter() - start
    decryptor = ckks.Decryptor(plan.params, keygen.secret_key)
    timer = enc.StageTimer()
    outputs = []
    with Progress("ckkslab batches", x.shape[0] // batch_size, enabled=show) as bar:
        for first in range(0, x.shape[0], batch_size):
            batch = x[first : first + batch_size]
            start = time.perf_counter()
            data_bytes = artifacts.ciphertexts_to_bytes(enc.encrypt_batch(batch, plan, encoder, encryptor))
            clock("encrypt_data", start)
            sizes["data"] += len(data_bytes)

            start = time.perf_counter()
            inputs = artifacts.ciphertexts_from_bytes(data_bytes, server_bundle.params)
            prediction_bytes = artifacts.ciphertexts_to_bytes(
                enc.predict(server_model, inputs, evaluator, prepared, timer)
            )
            clock("predict", start)
            sizes["predictions"] += len(prediction_bytes)

            start = time.perf_counter()
            result = artifacts.ciphertexts_from_bytes(prediction_bytes, plan.params)
            outputs.append(
                enc.decrypt_batch(result, batch.shape[0], plan, network.output_dim, encoder, decryptor)
            )
            clock("decrypt", start)
            bar.advance()
    return CkksResult(
        np.concatenate(outputs),
        times,
        dict(timer.seconds),
        sizes,
        plan_summary(plan, network, encrypt_weights),
        plan.describe(network),
        {"server_load_s": server_load},
    )
