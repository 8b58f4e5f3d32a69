"""The whole ckkslab flow on one or more batches, client and server sharing only bytes (like the paper's).

client: plan -> keys -> (encrypt model) -> encrypt batch -> [bytes] -> server: load bundle, model, data ->
predict -> [bytes] -> client: decrypt. Used by ``ckkslab compare`` and the inference benchmark; the CLI's
keygen / encrypt / predict / decrypt commands run the same steps through files. A caller that keeps finished
batches (``ckkslab compare`` resuming, ``validation.checkpoint``) names the batches to skip and receives each
batch as soon as it is decrypted, with its share of the stage times and sizes (``nn.streaming.BatchSink``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import ckks

from . import artifacts
from . import encrypted as enc
from .distributed import Batch, SchedulerOptions, ServerCosts, open_scheduler
from .errors import refuse_complex
from .model import PlainNetwork
from .plan import InferencePlan, plan_inference
from .server import keys_id
from .streaming import BatchSink, RecordProgress, add_costs, check_each_once

STAGES = ("keygen", "encrypt_model", "encrypt_data", "predict", "decrypt")


@dataclass
class CkksResult:
    """Decrypted predictions of the ckkslab flow and what each stage cost (wall seconds, summed over batches).

    ``extra["server_load_s"]``: the server's one-time loading of bundle and model and preparation of the
    weights (not part of ``predict``, as HElayers' model loading is not part of its predict; with Dask, the
    cluster's start and the first worker's load); ``extra["scheduler"]``: where the batches ran;
    ``extra["server_s"]``: the servers' compute seconds (wall) and CPU seconds summed over the batches (on
    Dask, the workers'; ``predict`` is the client's wait); ``extra["servers"]``: per server process (this
    one, or a worker's address), its batches, compute and CPU seconds and peak RSS
    (``nn.distributed.ServerCosts``).
    ``record_ids``: the id (row in ``x``) of each prediction, read back from the predictions' headers.
    With batches skipped, ``predictions`` and ``record_ids`` hold the computed batches only, in batch order.
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
    skip: Collection[int] = (),
    on_batch: BatchSink | None = None,
) -> CkksResult:
    """Plan, key, encrypt, predict and decrypt ``x`` (n, d) in batches of ``batch_size`` records.

    ``calibration_x`` (default: x itself) fixes the planned value range. ``scheduler`` (default: local, in
    this process, on ``ckks.get_threads()`` threads) runs the server's side: each batch is encrypted when
    the scheduler asks for it and decrypted when its predictions come back, so that only the batches in
    flight are held.
    ``timings_s["predict"]`` is the wall time of the batch loop not spent encrypting or decrypting (the time
    the client waits for the server, whatever runs it; with Dask, not the workers' compute time).
    ``skip``: indices of batches not to compute (the caller has their outputs): keys and model are made all
    the same, those records are not encrypted, and no server starts when every batch is skipped.
    ``on_batch`` receives each computed batch as it is decrypted, with its share of ``timings_s``
    (encrypt_data, predict, decrypt), ``sizes_bytes`` (data, predictions), ``stage_seconds`` and
    ``server_s`` (see ``BatchShares``).

    Raises:
        ValueError (PlanError, ckks.ValueRangeError): bad shapes, no secure parameters, complex values, values
            out of range.
        WorkflowError: the predictions and the skipped batches do not hold each record once.
        SchedulerError: see ``nn.distributed.open_scheduler``; a batch's error stops the run.
    """
    x = np.asarray(refuse_complex(x, "run_ckkslab: the records", ckks.ValueRangeError), dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != network.input_dim:
        raise ValueError(f"expected records of shape (n, {network.input_dim}), got {x.shape}")
    if x.shape[0] == 0 or x.shape[0] % batch_size:
        raise ValueError(f"{x.shape[0]} records are not a positive multiple of the batch size {batch_size}")
    scheduler = scheduler or SchedulerOptions()
    times = dict.fromkeys(STAGES, 0.0)
    sizes = {"context": 0, "model": 0, "data": 0, "predictions": 0}
    totals: dict[str, dict[str, float]] = {"timings_s": times, "sizes_bytes": sizes, "stage_seconds": {}}
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
    batches = x.shape[0] // batch_size
    skipped = sorted(index for index in set(skip) if 0 <= index < batches)
    todo = [index for index in range(batches) if index not in skipped]
    shares = BatchShares()
    servers: dict[str, dict[str, float]] = {}  # where a server ran -> its batches, compute seconds, peak RSS

    def encrypted_batches() -> Iterator[Batch]:
        for index in todo:
            first = index * batch_size
            start = time.perf_counter()
            info = {"records": batch_size, "keys": keys, "batch": index, "first_record": first}
            data = artifacts.ciphertexts_to_bytes(
                enc.encrypt_batch(x[first : first + batch_size], plan, encoder, encryptor), info)
            shares.encrypted(index, time.perf_counter() - start, len(data))
            yield Batch(index, data, f"batch {index}")

    outputs, ids = {}, {}
    server_load, where = 0.0, "none: every batch was skipped"
    if todo:
        start = time.perf_counter()
        # The server: loads the bundle (no secret key in it) and the model, and prepares the weights, once.
        with (open_scheduler(scheduler, bundle_bytes, model_bytes) as running,
              RecordProgress("ckkslab batches", batches, x.shape[0], enabled=show) as bar):
            server_load, where = time.perf_counter() - start, running.description
            for _ in skipped:
                bar.skip(batch_size)
            shares.start()
            for outcome in running.run(encrypted_batches()):
                if outcome.error is not None:
                    raise outcome.error
                arrived = time.perf_counter()
                result, info = artifacts.ciphertexts_with_info(outcome.predictions, plan.params)
                outputs[outcome.index] = enc.decrypt_batch(result, info["records"], plan, network.output_dim,
                                                           encoder, decryptor)
                ids[outcome.index] = info["first_record"] + np.arange(info["records"])
                costs = shares.done(outcome.index, arrived, len(outcome.predictions), outcome.costs)
                add_costs(totals, costs)
                add_server_costs(servers, outcome.costs)
                if on_batch is not None:
                    on_batch(outcome.index, outputs[outcome.index], ids[outcome.index], costs)
                bar.advance(info["records"])
    record_ids = np.concatenate([ids[i] for i in todo] or [np.zeros(0, dtype=np.int64)])
    check_each_once(np.concatenate([record_ids, *(i * batch_size + np.arange(batch_size) for i in skipped)]),
                    "the merged predictions with the skipped batches")
    return CkksResult(
        np.concatenate([outputs[i] for i in todo] or [np.zeros((0, network.output_dim))]),
        times,
        totals["stage_seconds"],
        sizes,
        {**plan_summary(plan, network, encrypt_weights),
         "threads": ckks.get_threads() if scheduler.kind == "local" else "see the scheduler"},
        plan.describe(network),
        {"server_load_s": server_load, "scheduler": where, "server_s": totals.get("server_s", {}),
         "servers": servers},
        record_ids,
    )


class BatchShares:
    """Each batch's share of the client's batch loop: its stage seconds and bytes (``run_ckkslab``).

    ``encrypt_data`` and ``decrypt`` (reading the predictions included): the client's own work on that batch.
    ``predict``: the wall time from the end of the previous batch (or the loop's start) to this batch's
    predictions arriving, less the encryptions done meanwhile: how long the client waited for the server.
    Summed over the batches it is the loop's wall time less all encryption and decryption, whatever the
    scheduler (with Dask, several batches are in flight and this is the client's wait, not the workers'
    compute time). ``stage_seconds`` and ``server_s``: the steps and the compute seconds of the server
    process that computed the batch, measured there (``nn.distributed.ServerCosts``).
    """

    def __init__(self) -> None:
        self.encrypted_batches: dict[int, tuple[float, int]] = {}
        self.start()

    def start(self) -> None:
        """The loop starts now (or the previous batch is done): a new interval begins."""
        self.mark, self.encrypting = time.perf_counter(), 0.0

    def encrypted(self, index: int, seconds: float, size: int) -> None:
        """Batch ``index`` took ``seconds`` to encrypt into ``size`` bytes."""
        self.encrypted_batches[index] = (seconds, size)
        self.encrypting += seconds

    def done(self, index: int, arrived: float, size: int,
             server: ServerCosts | None) -> dict[str, dict[str, float]]:
        """Batch ``index``'s costs, now that its predictions (``size`` bytes, arrived at time ``arrived``,
        costing the server ``server``) are decrypted."""
        now = time.perf_counter()
        encrypt_seconds, data_size = self.encrypted_batches.pop(index)
        waited = arrived - self.mark - self.encrypting
        costs = {"timings_s": {"encrypt_data": encrypt_seconds, "predict": waited, "decrypt": now - arrived},
                 "sizes_bytes": {"data": data_size, "predictions": size}}
        if server is not None:
            costs["stage_seconds"] = dict(server.stage_seconds)
            costs["server_s"] = {"compute": server.compute_s, "cpu": server.cpu_s}
        self.start()
        return costs


def add_server_costs(servers: dict[str, dict[str, float]], costs: ServerCosts | None) -> None:
    """Count one batch into ``servers`` (where -> batches, compute_s and cpu_s summed, peak_rss_bytes the
    largest)."""
    if costs is None:
        return
    entry = servers.setdefault(costs.where,
                               {"batches": 0, "compute_s": 0.0, "cpu_s": 0.0, "peak_rss_bytes": 0})
    entry["batches"] += 1
    entry["compute_s"] += costs.compute_s
    entry["cpu_s"] += costs.cpu_s
    entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], costs.peak_rss_bytes)
