"""The whole ckkslab flow on one or more batches, client and server sharing only bytes (like the paper's).

client: plan -> keys -> (encrypt model) -> encrypt batch -> [bytes] -> server: load bundle, model, data ->
predict -> [bytes] -> client: decrypt. Used by ``ckkslab compare`` and the inference benchmark; the CLI's
keygen / encrypt / predict / decrypt commands run the same steps through files.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import ckks

from . import artifacts
from . import encrypted as enc
from .distributed import Batch, SchedulerOptions, open_scheduler
from .errors import refuse_complex
from .model import PlainNetwork
from .plan import InferencePlan, plan_inference
from .server import keys_id
from .streaming import RecordProgress, check_each_once

STAGES = ("keygen", "encrypt_model", "encrypt_data", "predict", "decrypt")


@dataclass
class CkksResult:
    """Decrypted predictions of the ckkslab flow and what each stage cost (wall seconds, summed over batches).

    ``extra["server_load_s"]``: the server's one-time loading of bundle and model and preparation of the
    weights (not part of ``predict``, as HElayers' model loading is not part of its predict; with Dask, the
    cluster's start and the first worker's load); ``extra["scheduler"]``: where the batches ran.
    ``record_ids``: the id (row in ``x``) of each prediction, read back from the predictions' headers.
    """

    predictions: np.ndarray
    timings_s: dict[str, float]
    stage_seconds: dict[str, float]
    sizes_bytes: dict[str, int]
    params: dict[str, Any]
    plan_text: str
    extra: dict[str, Any] = field(default_factory=dict)
    record_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


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
    scheduler: SchedulerOptions | None = None,
) -> CkksResult:
    """Plan, key, encrypt, predict and decrypt ``x`` (n, d) in batches of ``batch_size`` records.

    ``calibration_x`` (default: x itself) fixes the planned value range. ``scheduler`` (default: local, in
    this process, on ``ckks.get_threads()`` threads) runs the server's side: each batch is encrypted when
    the scheduler asks for it and decrypted when its predictions come back, so that only the batches in
    flight are held.
    ``timings_s["predict"]`` is the wall time of the batch loop not spent encrypting or decrypting (the time
    the client waits for the server, whatever runs it).

    Raises:
        ValueError (PlanError, ckks.ValueRangeError): bad shapes, no secure parameters, complex values, values
            out of range.
        SchedulerError: see ``nn.distributed.open_scheduler``; a batch's error stops the run.
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
    keys = keys_id(bundle_bytes)  # the tag the server checks on the data and an encrypted model
    clock("keygen", start)
    sizes["context"] = len(bundle_bytes)

    start = time.perf_counter()
    encoder = ckks.Encoder(plan.params)
    # The client owns the secret key: secret-key encryption (smaller noise, no division by P), as `ckkslab encrypt`.
    encryptor = ckks.Encryptor(plan.params, keygen.secret_key)
    model = enc.compile_model(network, plan, encoder, encryptor if encrypt_weights else None)
    model_bytes = artifacts.model_to_bytes(replace(model, keys=keys) if encrypt_weights else model)
    clock("encrypt_model", start)
    sizes["model"] = len(model_bytes)

    decryptor = ckks.Decryptor(plan.params, keygen.secret_key)
    timer = enc.StageTimer()
    batches = x.shape[0] // batch_size

    def encrypted_batches() -> Iterator[Batch]:
        for index in range(batches):
            first = index * batch_size
            start = time.perf_counter()
            info = {"records": batch_size, "keys": keys, "batch": index, "first_record": first}
            data = artifacts.ciphertexts_to_bytes(
                enc.encrypt_batch(x[first : first + batch_size], plan, encoder, encryptor), info)
            clock("encrypt_data", start)
            sizes["data"] += len(data)
            yield Batch(index, data, f"batch {index}")

    outputs, ids = {}, {}
    start = time.perf_counter()
    # The server: loads the bundle (no secret key in it) and the model, and prepares the weights, once.
    with open_scheduler(scheduler or SchedulerOptions(), bundle_bytes, model_bytes, timer=timer) as running:
        server_load = time.perf_counter() - start
        loop_start = time.perf_counter()
        with RecordProgress("ckkslab batches", batches, x.shape[0], enabled=show) as bar:
            for outcome in running.run(encrypted_batches()):
                if outcome.error is not None:
                    raise outcome.error
                start = time.perf_counter()
                result, info = artifacts.ciphertexts_with_info(outcome.predictions, plan.params)
                sizes["predictions"] += len(outcome.predictions)
                outputs[outcome.index] = enc.decrypt_batch(result, info["records"], plan, network.output_dim,
                                                           encoder, decryptor)
                ids[outcome.index] = info["first_record"] + np.arange(info["records"])
                clock("decrypt", start)
                bar.advance(info["records"])
        times["predict"] = time.perf_counter() - loop_start - times["encrypt_data"] - times["decrypt"]
    record_ids = np.concatenate([ids[i] for i in range(batches)])
    check_each_once(record_ids, "the merged predictions")
    return CkksResult(
        np.concatenate([outputs[i] for i in range(batches)]),
        times,
        dict(timer.seconds),
        sizes,
        plan_summary(plan, network, encrypt_weights),
        plan.describe(network),
        {"server_load_s": server_load, "scheduler": running.description},
        record_ids,
    )
