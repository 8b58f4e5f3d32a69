"""The paper's client/server flow through files, in a workspace directory:

    client/secret.key      the secret key (never leaves the client)
    context/plan.json      the inference plan (public: parameters, packing, levels)
    context/bundle.ckks    parameters + public, relinearization and Galois keys (no secret key: sent to the server)
    server/model.ckks      the model: encrypted by the client (it owns the model), or encoded by the server
    server/data.ckks       the encrypted batch
    server/predictions.ckks  the encrypted scores
    client/scores.csv      the decrypted scores, probabilities and decisions

Each step loads only what its party has; every file is checked against the context it must belong to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

import ckks

from . import artifacts, batch_packing
from . import encrypted as enc
from .jsonfile import parse_json
from .model import PlainNetwork
from .plan import InferencePlan, plan_inference


class WorkflowError(ValueError):
    """A workspace file is missing, from another context, or the step is called out of order."""


def _paths(workspace: str | Path) -> dict[str, Path]:
    w = Path(workspace)
    return {
        "secret": w / "client" / "secret.key",
        "plan": w / "context" / "plan.json",
        "bundle": w / "context" / "bundle.ckks",
        "model": w / "server" / "model.ckks",
        "data": w / "server" / "data.ckks",
        "predictions": w / "server" / "predictions.ckks",
        "scores": w / "client" / "scores.csv",
    }


def _read(path: Path, what: str, step: str) -> bytes:
    if not path.is_file():
        raise WorkflowError(f"{what} not found at {path}: run `{step}` first")
    return path.read_bytes()


def load_plan(workspace: str | Path) -> InferencePlan:
    """The plan the client wrote at keygen.

    Raises:
        WorkflowError: no plan yet, or a plan.json that is not UTF-8 JSON of a valid plan (see
            ``artifacts.plan_from_dict``); the message names the problem.
    """
    path = _paths(workspace)["plan"]
    data = _read(path, "the plan", "ckkslab keygen")
    try:
        return artifacts.plan_from_dict(parse_json(data, str(path), artifacts.ArtifactError), str(path))
    except artifacts.ArtifactError as exc:
        raise WorkflowError(f"{exc}; run `ckkslab keygen` again to rewrite it") from None


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
    paths = _paths(workspace)
    plan = plan_inference(network, calibration_x, batch_size=batch_size, frac_bits=frac_bits, **plan_options)
    keys = ckks.KeyGenerator(plan.params, quiet=quiet)
    bundle = ckks.ServerBundle(
        plan.params, keys.public_key(), keys.relin_key(), keys.galois_keys(plan.rotation_steps)
    )
    for key in ("secret", "bundle", "model"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    ckks.save(keys.secret_key, paths["secret"])
    ckks.save(bundle, paths["bundle"])
    paths["plan"].write_text(json.dumps(artifacts.plan_to_dict(plan), indent=1))
    return plan


def keys_id(bundle_bytes: bytes) -> str:
    """The identity of a client's keys: SHA-256 of its context/bundle.ckks (public, like the bundle).

    The client writes it next to its ciphertexts; the server and the client check it, so that data, evaluation
    keys and secret key of different clients (same parameters, so no fingerprint differs) are not mixed into
    garbage that decrypts without an error.
    """
    return hashlib.sha256(bundle_bytes).hexdigest()[:32]


def _bundle(data: bytes, path: Path) -> ckks.ServerBundle:
    bundle = ckks.from_bytes(data)
    if not isinstance(bundle, ckks.ServerBundle):
        raise WorkflowError(f"{path} is not a server bundle")
    return bundle


def _client_keys(workspace: str | Path) -> tuple[InferencePlan, ckks.SecretKey, str]:
    """The plan, the secret key, and the id of the bundle, checked to hold this secret key's public keys."""
    plan = load_plan(workspace)
    paths = _paths(workspace)
    _read(paths["secret"], "the secret key", "ckkslab keygen")
    secret = ckks.load(paths["secret"], params=plan.params)
    if not isinstance(secret, ckks.SecretKey):
        raise WorkflowError(f"{paths['secret']} is not a secret key: the client needs the SecretKey, got "
                            f"{type(secret).__name__}")
    data = _read(paths["bundle"], "the context bundle", "ckkslab keygen")
    bundle = _bundle(data, paths["bundle"])
    if bundle.params.fingerprint != plan.params.fingerprint or not ckks.made_from(
            secret, bundle.public_key, bundle.relin_key, plan.params):
        raise WorkflowError(f"{paths['bundle']} was made with other keys than {paths['secret']}: copy this "
                            "client's bundle back, or run `ckkslab keygen` again")
    return plan, secret, keys_id(data)


def encrypt_model(workspace: str | Path, network: PlainNetwork) -> int:
    """Client (model owner): encrypt the weights with the secret key; returns the file size."""
    plan, secret, keys = _client_keys(workspace)
    model = enc.compile_model(network, plan, ckks.Encoder(plan.params), ckks.Encryptor(plan.params, secret))
    data = artifacts.model_to_bytes(replace(model, keys=keys))
    _paths(workspace)["model"].write_bytes(data)
    return len(data)


def encode_model(workspace: str | Path, network: PlainNetwork) -> int:
    """Server (model owner): encode the weights as plaintexts, using only the public plan."""
    plan = load_plan(workspace)
    data = artifacts.model_to_bytes(enc.compile_model(network, plan, ckks.Encoder(plan.params)))
    _paths(workspace)["model"].write_bytes(data)
    return len(data)


def encrypt_data(workspace: str | Path, x: np.ndarray) -> int:
    """Client: pack and encrypt one batch of records; returns the file size."""
    plan, secret, keys = _client_keys(workspace)
    cts = enc.encrypt_batch(x, plan, ckks.Encoder(plan.params), ckks.Encryptor(plan.params, secret))
    data = artifacts.ciphertexts_to_bytes(cts, {"records": int(np.asarray(x).shape[0]), "keys": keys})
    _paths(workspace)["data"].write_bytes(data)
    return len(data)


def predict(workspace: str | Path, timer: enc.StageTimer | None = None) -> int:
    """Server: load the bundle (no secret key), the model and the data; write the encrypted predictions."""
    paths = _paths(workspace)
    bundle_bytes = _read(paths["bundle"], "the context bundle", "ckkslab keygen")
    bundle = _bundle(bundle_bytes, paths["bundle"])
    model = artifacts.model_from_bytes(_read(paths["model"], "the model", "ckkslab encrypt"), bundle.params)
    inputs, info = artifacts.ciphertexts_with_info(
        _read(paths["data"], "the data", "ckkslab encrypt"), bundle.params
    )
    if info.get("keys") != keys_id(bundle_bytes):
        raise WorkflowError(f"{paths['data']} was encrypted under another key than the evaluation keys in "
                            f"{paths['bundle']}: use the data and the bundle of the same client")
    if model.encrypted_weights and model.keys != keys_id(bundle_bytes):
        raise WorkflowError(f"{paths['model']} was encrypted under another key than the evaluation keys in "
                            f"{paths['bundle']}: encrypt the model with this client's keys")
    ev = ckks.Evaluator(bundle.params, relin_key=bundle.relin_key, galois_keys=bundle.galois_keys)
    outputs = enc.predict(model, inputs, ev, enc.prepare_weights(model, ev), timer)
    info = {**info, "output_dim": model.output_dim}
    data = artifacts.ciphertexts_to_bytes(outputs, info)
    paths["predictions"].write_bytes(data)
    return len(data)


def _prediction_shape(info: dict, count: int, plan: InferencePlan, network: PlainNetwork | None,
                      path: Path) -> tuple[int, int]:
    """(records, output_dim) from the predictions' info, checked: integers, 1 <= records <= the plan's batch,
    output_dim the network's (if given) and held by the ``count`` ciphertexts of the plan's packing."""
    n, output_dim = info.get("records"), info.get("output_dim")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (n, output_dim)):
        raise WorkflowError(f"{path} does not say how many records and outputs it holds: run `ckkslab predict` "
                            "again")
    if n > plan.batch_size:
        raise WorkflowError(f"{path} claims {n} records, more than the planned batch of {plan.batch_size}")
    if network is not None and output_dim != network.output_dim:
        raise WorkflowError(f"{path} holds {output_dim} outputs per record, the model gives "
                            f"{network.output_dim}: decrypt with the model the server ran")
    needed = 1 if plan.packing == "single" else batch_packing.ciphertext_count(output_dim,
                                                                                 plan.features_per_ciphertext)
    if count != needed or (plan.packing == "single" and output_dim > plan.block):
        raise WorkflowError(f"{path} holds {count} ciphertexts, {output_dim} outputs per record need {needed}")
    return n, output_dim


def decrypt(workspace: str | Path, network: PlainNetwork | None = None,
            flood_bits: float | None = None) -> tuple[np.ndarray, Path]:
    """Client: decrypt the predictions; write scores (and probabilities/decisions if ``network`` is given).

    ``flood_bits``: noise-flooded decryption (``ckks.Decryptor.decrypt``), for scores that will be shared.
    """
    plan, secret, keys = _client_keys(workspace)
    paths = _paths(workspace)
    outputs, info = artifacts.ciphertexts_with_info(
        _read(paths["predictions"], "the predictions", "ckkslab predict"), plan.params
    )
    n, output_dim = _prediction_shape(info, len(outputs), plan, network, paths["predictions"])
    if info.get("keys") != keys:
        raise WorkflowError(f"{paths['predictions']} were made with other keys than {paths['secret']} (another "
                            "client's data or evaluation keys): they would decrypt to garbage")
    scores = enc.decrypt_batch(
        outputs, n, plan, output_dim, ckks.Encoder(plan.params), ckks.Decryptor(plan.params, secret), flood_bits
    )
    columns = [scores]
    header = [f"score_{i}" for i in range(output_dim)]
    if network is not None and output_dim == 1:
        probabilities, decisions = network.decide(scores)
        columns += [probabilities[:, None], decisions[:, None]]
        header += ["probability", "decision"]
    np.savetxt(paths["scores"], np.hstack(columns), delimiter=",", header=",".join(header), comments="")
    return scores, paths["scores"]
