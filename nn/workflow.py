"""The paper's client/server flow through files, in a workspace directory:

    client/secret.key      the secret key (never leaves the client)
    context/plan.json      the inference plan (public: parameters, packing, levels)
    context/bundle.ckks    parameters + public, relinearization and Galois keys (no secret key: sent to the server)
    server/model.ckks      the model: encrypted by the client (it owns the model), or encoded by the server
    server/data.ckks       the encrypted batch
    server/predictions.ckks  the encrypted scores
    client/scores.csv      the decrypted scores, probabilities and decisions

Every batch of a larger set (``encrypt_batches``, ``predict_batches``, ``decrypt_batches``) instead:

    server/data/batch_0003.ckks         batch 3 (its header: records, first record id, batch index, keys)
    server/predictions/batch_0003.ckks  its encrypted scores (and the SHA-256 of the data and model used)
    client/batches.json                 what the client encrypted: per batch its record ids and data SHA-256
    client/scores.csv                   every record's scores, with its record id, each id exactly once

The single-batch steps are here; the steps over every batch are in ``nn.workflow_batches`` (re-exported
here); the layout and the checks both share are in ``nn.workspace``. Each step loads only what its party
has; every file is checked against the context it must belong to. Every file is written under a temporary
name and renamed (``streaming.write_atomic``), so an interrupted step leaves only whole files, and
``predict_batches`` skips the batches whose predictions are already there and verify (it resumes).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

import ckks

from . import artifacts
from . import encrypted as enc
from . import workspace as ws
from .errors import WorkflowError
from .model import PlainNetwork
from .plan import InferencePlan, plan_inference
from .server import keys_id
from .streaming import write_atomic
from .workflow_batches import PredictReport, decrypt_batches, encrypt_batches, predict_batches
from .workspace import BATCH_FILE, batch_file, load_plan, uses_batches

__all__ = ["BATCH_FILE", "PredictReport", "WorkflowError", "batch_file", "decrypt", "decrypt_batches",
           "encode_model", "encrypt_batches", "encrypt_data", "encrypt_model", "keygen", "keys_id",
           "load_plan", "predict", "predict_batches", "uses_batches"]


def keygen(
    workspace: str | Path,
    network: PlainNetwork,
    calibration_x: np.ndarray,
    batch_size: int = 4096,
    frac_bits: int = 30,
    quiet: bool = True,
    **plan_options: object,
) -> InferencePlan:
    """Client: plan the parameters on calibration records, make the keys, write the secret key and the bundle.

    ``plan_options`` go to ``plan_inference`` (e.g. ``security=None, ring_degree=64`` for a toy run).
    """
    paths = ws.files(workspace)
    plan = plan_inference(network, calibration_x, batch_size=batch_size, frac_bits=frac_bits, **plan_options)
    keys = ckks.KeyGenerator(plan.params, quiet=quiet)
    bundle = ckks.ServerBundle(
        plan.params, keys.public_key(), keys.relin_key(), keys.galois_keys(plan.rotation_steps)
    )
    for key in ("secret", "bundle", "model"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    write_atomic(paths["secret"], ckks.to_bytes(keys.secret_key))
    write_atomic(paths["bundle"], ckks.to_bytes(bundle))
    write_atomic(paths["plan"], json.dumps(artifacts.plan_to_dict(plan), indent=1).encode())
    return plan


def encrypt_model(workspace: str | Path, network: PlainNetwork) -> int:
    """Client (model owner): encrypt the weights with the secret key; returns the file size."""
    plan, secret, keys = ws.client_keys(workspace)
    model = enc.compile_model(network, plan, ckks.Encoder(plan.params), ckks.Encryptor(plan.params, secret))
    data = artifacts.model_to_bytes(replace(model, keys=keys))
    write_atomic(ws.files(workspace)["model"], data)
    return len(data)


def encode_model(workspace: str | Path, network: PlainNetwork) -> int:
    """Server (model owner): encode the weights as plaintexts, using only the public plan."""
    plan = ws.load_plan(workspace)
    data = artifacts.model_to_bytes(enc.compile_model(network, plan, ckks.Encoder(plan.params)))
    write_atomic(ws.files(workspace)["model"], data)
    return len(data)


def encrypt_data(workspace: str | Path, x: np.ndarray) -> int:
    """Client: pack and encrypt one batch of records; returns the file size.

    Batch files of an earlier ``encrypt_batches`` are removed (the workspace then holds this batch only).
    """
    plan, secret, keys = ws.client_keys(workspace)
    cts = enc.encrypt_batch(x, plan, ckks.Encoder(plan.params), ckks.Encryptor(plan.params, secret))
    data = artifacts.ciphertexts_to_bytes(cts, {"records": int(np.asarray(x).shape[0]), "keys": keys})
    ws.remove_batches(workspace)
    write_atomic(ws.files(workspace)["data"], data)
    return len(data)


def predict(workspace: str | Path, timer: enc.StageTimer | None = None) -> int:
    """Server: load the bundle (no secret key), the model and the data; write the encrypted predictions."""
    paths = ws.files(workspace)
    server = ws.server(paths)
    data = ws.read(paths["data"], "the data", "ckkslab encrypt")
    data = server.predict_bytes(data, str(paths["data"]), timer)
    write_atomic(paths["predictions"], data)
    return len(data)


def decrypt(workspace: str | Path, network: PlainNetwork | None = None,
            flood_bits: float | None = None) -> tuple[np.ndarray, Path]:
    """Client: decrypt the predictions; write scores (and probabilities/decisions if ``network`` is given).

    ``flood_bits``: noise-flooded decryption (``ckks.Decryptor.decrypt``), for scores that will be shared.
    """
    plan, secret, keys = ws.client_keys(workspace)
    paths = ws.files(workspace)
    _, scores = ws.decrypt_file(paths["predictions"], paths, plan, secret, keys, network, flood_bits)
    header, columns = ws.score_columns(scores, network)
    ws.write_scores(paths["scores"], header, columns)
    return scores, paths["scores"]
