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

Each step loads only what its party has; every file is checked against the context it must belong to. Every
file is written under a temporary name and renamed (``streaming.write_atomic``), so an interrupted step
leaves only whole files, and ``predict_batches`` skips the batches whose predictions are already there and verify (it resumes).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import ckks

from . import artifacts, batch_packing, container
from . import encrypted as enc
from .distributed import Batch, SchedulerOptions, open_scheduler
from .errors import WorkflowError, refuse_complex
from .jsonfile import parse_json
from .model import PlainNetwork
from .plan import InferencePlan, plan_inference
from .server import Server, digest, keys_id, load_bundle
from .streaming import RecordProgress, check_each_once, write_atomic

__all__ = ["WorkflowError", "keys_id", "keygen", "encrypt_model", "encode_model", "encrypt_data",
           "encrypt_batches", "predict", "predict_batches", "decrypt", "decrypt_batches", "load_plan",
           "uses_batches"]

BATCH_FILE = re.compile(r"batch_(\d{4,})\.ckks")


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
        "batch_data": w / "server" / "data",
        "batch_predictions": w / "server" / "predictions",
        "manifest": w / "client" / "batches.json",
    }


def batch_file(index: int) -> str:
    """The name of batch ``index``'s data and prediction files: batch_0003.ckks."""
    return f"batch_{index:04d}.ckks"


def _batch_files(directory: Path) -> dict[int, Path]:
    """Batch index -> path of every batch_NNNN.ckks in ``directory`` (none if it does not exist)."""
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = BATCH_FILE.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def uses_batches(workspace: str | Path) -> bool:
    """Whether the workspace holds batch files (``encrypt_batches``) rather than one server/data.ckks."""
    paths = _paths(workspace)
    return bool(_batch_files(paths["batch_data"]) or _batch_files(paths["batch_predictions"])
                or paths["manifest"].is_file())


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
    write_atomic(paths["secret"], ckks.to_bytes(keys.secret_key))
    write_atomic(paths["bundle"], ckks.to_bytes(bundle))
    write_atomic(paths["plan"], json.dumps(artifacts.plan_to_dict(plan), indent=1).encode())
    return plan


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
    bundle = load_bundle(data, str(paths["bundle"]))
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
    write_atomic(_paths(workspace)["model"], data)
    return len(data)


def encode_model(workspace: str | Path, network: PlainNetwork) -> int:
    """Server (model owner): encode the weights as plaintexts, using only the public plan."""
    plan = load_plan(workspace)
    data = artifacts.model_to_bytes(enc.compile_model(network, plan, ckks.Encoder(plan.params)))
    write_atomic(_paths(workspace)["model"], data)
    return len(data)


def encrypt_data(workspace: str | Path, x: np.ndarray) -> int:
    """Client: pack and encrypt one batch of records; returns the file size.

    Batch files of an earlier ``encrypt_batches`` are removed (the workspace then holds this batch only).
    """
    plan, secret, keys = _client_keys(workspace)
    cts = enc.encrypt_batch(x, plan, ckks.Encoder(plan.params), ckks.Encryptor(plan.params, secret))
    data = artifacts.ciphertexts_to_bytes(cts, {"records": int(np.asarray(x).shape[0]), "keys": keys})
    _remove_batches(workspace)
    write_atomic(_paths(workspace)["data"], data)
    return len(data)


def _remove_batches(workspace: str | Path) -> None:
    paths = _paths(workspace)
    for key in ("batch_data", "batch_predictions"):
        for path in _batch_files(paths[key]).values():
            path.unlink()
    paths["manifest"].unlink(missing_ok=True)


def encrypt_batches(workspace: str | Path, x: np.ndarray, batch_size: int, batches: int | None = None,
                    quiet: bool = True) -> int:
    """Client: encrypt records ``x`` (n, d) as batches of ``batch_size`` into server/data/batch_NNNN.ckks,
    one batch in memory at a time, and list them in client/batches.json; returns the bytes written.

    ``batches``: how many from the start (None: every record, the last batch possibly smaller). Batch k
    holds record ids k * batch_size onwards (its header says from where and how many). Files of an earlier
    encryption (server/data.ckks, predictions, other batch files) are removed first: they are stale.

    Raises:
        WorkflowError: a batch size or count that is not positive, or more batches than ``x`` holds.
        ckks.ValueRangeError: complex records, or see ``nn.encrypted.encrypt_batch`` (records beyond the
            plan, NaN, ...).
    """
    plan, secret, keys = _client_keys(workspace)
    x = np.asarray(refuse_complex(x, "encrypt_batches: the records", ckks.ValueRangeError), dtype=np.float64)
    available = -(-x.shape[0] // batch_size) if batch_size >= 1 else 0
    count = available if batches is None else batches
    if batch_size < 1 or count < 1:
        raise WorkflowError(f"the batch size and the number of batches must be positive, got {batch_size} "
                            f"and {count}")
    if count > available:
        raise WorkflowError(f"{count} batches of {batch_size} need {count * batch_size} records, the data "
                            f"has {x.shape[0]} ({available} batch(es))")
    paths = _paths(workspace)
    _remove_batches(workspace)
    for key in ("data", "predictions"):
        paths[key].unlink(missing_ok=True)
    paths["batch_data"].mkdir(parents=True, exist_ok=True)
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, secret)
    listed, written = [], 0
    records = min(x.shape[0], count * batch_size)
    with RecordProgress("encrypting batches", count, records, enabled=False if quiet else None) as bar:
        for index in range(count):
            first = index * batch_size
            part = x[first : first + batch_size]
            info = {"records": part.shape[0], "keys": keys, "batch": index, "first_record": first}
            data = artifacts.ciphertexts_to_bytes(enc.encrypt_batch(part, plan, encoder, encryptor), info)
            write_atomic(paths["batch_data"] / batch_file(index), data)
            listed.append({"batch": index, "first_record": first, "records": part.shape[0],
                           "data_sha256": digest(data)})
            written += len(data)
            bar.advance(part.shape[0])
    manifest = {"batch_size": batch_size, "records": records, "batches": listed}
    write_atomic(paths["manifest"], json.dumps(manifest, indent=1).encode())
    return written


def predict(workspace: str | Path, timer: enc.StageTimer | None = None) -> int:
    """Server: load the bundle (no secret key), the model and the data; write the encrypted predictions."""
    paths = _paths(workspace)
    server = _server(paths)
    data = _read(paths["data"], "the data", "ckkslab encrypt")
    data = server.predict_bytes(data, str(paths["data"]), timer)
    write_atomic(paths["predictions"], data)
    return len(data)


def _server_files(paths: dict[str, Path]) -> tuple[bytes, bytes]:
    """What the server loads: the bundle's and the model's bytes."""
    return (_read(paths["bundle"], "the context bundle", "ckkslab keygen"),
            _read(paths["model"], "the model", "ckkslab encrypt"))


def _server(paths: dict[str, Path]) -> Server:
    return Server(*_server_files(paths), str(paths["bundle"]), str(paths["model"]))


@dataclass
class PredictReport:
    """What ``predict_batches`` did: batches computed and skipped (resumed), and the named error of each
    batch that failed (index -> error); ``scheduler``: where the batches ran."""

    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, Exception] = field(default_factory=dict)
    scheduler: str = ""
    bytes_written: int = 0


def _header_info(data: bytes, path: Path) -> dict[str, Any]:
    """The ``info`` of a ciphertexts file's header, read without loading its ciphertexts.

    Raises:
        ArtifactError: not a ciphertexts file, or an info that is not a JSON object.
    """
    header, _ = container.unpack(data, "ciphertexts", artifacts.CIPHERTEXTS_FIELDS)
    if not isinstance(header["info"], dict):
        raise artifacts.ArtifactError(f"{path}: the ciphertexts file's info must be a JSON object")
    return header["info"]


def _finished(prediction: Path, data: bytes, model_digest: str, keys: str, params: ckks.Parameters) -> bool:
    """Whether ``prediction`` holds whole, valid predictions of exactly ``data`` by this model and keys."""
    if not prediction.is_file():
        return False
    try:
        _, info = artifacts.ciphertexts_with_info(prediction.read_bytes(), params)
    except artifacts.ArtifactError:
        return False
    said = (info.get("data_sha256"), info.get("model_sha256"), info.get("keys"))
    return said == (digest(data), model_digest, keys)


def predict_batches(workspace: str | Path, scheduler: SchedulerOptions | None = None,
                    timer: enc.StageTimer | None = None, quiet: bool = True) -> PredictReport:
    """Server: every server/data/batch_NNNN.ckks -> server/predictions/batch_NNNN.ckks, on ``scheduler``.

    A batch whose prediction file exists and is the prediction of that very data file, model and keys is
    skipped (so a rerun after Ctrl-C resumes); any other is computed and written atomically. A batch that
    fails with a named error (a corrupted file) is reported in ``failed`` while the others go on.

    Raises:
        WorkflowError: no batch files, or a missing bundle or model.
        The server's load errors (``nn.server.Server``) and ``SchedulerError`` (``nn.distributed``).
    """
    paths = _paths(workspace)
    jobs = _batch_files(paths["batch_data"])
    if not jobs:
        raise WorkflowError(f"no batch files in {paths['batch_data']}: run `ckkslab encrypt --batches` first")
    bundle, model = _server_files(paths)
    params = load_bundle(bundle, str(paths["bundle"])).params
    keys, model_digest = keys_id(bundle), digest(model)
    paths["batch_predictions"].mkdir(parents=True, exist_ok=True)
    report = PredictReport()
    todo, records = [], {}
    for index, path in jobs.items():
        data = path.read_bytes()
        try:
            info = _header_info(data, path)
            records[index] = container.integer(info.get("records"), f"the records of {path}")
        except artifacts.ArtifactError as exc:
            report.failed[index] = exc
            continue
        if _finished(paths["batch_predictions"] / path.name, data, model_digest, keys, params):
            report.skipped.append(index)
        else:
            todo.append(index)

    def batches() -> Iterator[Batch]:
        for index in todo:
            yield Batch(index, jobs[index].read_bytes(), str(jobs[index]))

    options = scheduler or SchedulerOptions()
    with RecordProgress("predicting batches", len(records), sum(records.values()),
                        enabled=False if quiet else None) as bar:
        for index in report.skipped:
            bar.skip(records[index])
        if not todo:
            report.scheduler = "none: every batch was predicted already"
            return report
        with open_scheduler(options, bundle, model, bundle_name=str(paths["bundle"]),
                            model_name=str(paths["model"]), timer=timer) as running:
            report.scheduler = running.description
            for outcome in running.run(batches()):
                if outcome.error is not None:
                    report.failed[outcome.index] = outcome.error
                    continue
                write_atomic(paths["batch_predictions"] / jobs[outcome.index].name, outcome.predictions)
                report.computed.append(outcome.index)
                report.bytes_written += len(outcome.predictions)
                bar.advance(records[outcome.index])
    return report


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
    _, scores = _decrypt_file(paths["predictions"], paths, plan, secret, keys, network, flood_bits)
    header, columns = _score_columns(scores, network)
    buffer = io.StringIO()
    np.savetxt(buffer, np.hstack(columns), delimiter=",", header=",".join(header), comments="")
    write_atomic(paths["scores"], buffer.getvalue().encode())
    return scores, paths["scores"]


def _decrypt_file(path: Path, paths: dict[str, Path], plan: InferencePlan, secret: ckks.SecretKey,
                  keys: str, network: PlainNetwork | None,
                  flood_bits: float | None) -> tuple[dict[str, Any], np.ndarray]:
    """The info and the decrypted scores (records, output_dim) of one predictions file, checked to be of
    these keys and of the shape the plan (and the network, if given) allows."""
    outputs, info = artifacts.ciphertexts_with_info(_read(path, "the predictions", "ckkslab predict"),
                                                    plan.params)
    n, output_dim = _prediction_shape(info, len(outputs), plan, network, path)
    if info.get("keys") != keys:
        raise WorkflowError(f"{path} were made with other keys than {paths['secret']} (another client's data "
                            "or evaluation keys): they would decrypt to garbage")
    scores = enc.decrypt_batch(outputs, n, plan, output_dim, ckks.Encoder(plan.params),
                               ckks.Decryptor(plan.params, secret), flood_bits)
    return info, scores


def _score_columns(scores: np.ndarray, network: PlainNetwork | None) -> tuple[list[str], list[np.ndarray]]:
    """The scores.csv header and columns: scores, then probability and decision when ``network`` decides."""
    columns = [scores]
    header = [f"score_{i}" for i in range(scores.shape[1])]
    if network is not None and scores.shape[1] == 1:
        probabilities, decisions = network.decide(scores)
        columns += [probabilities[:, None], decisions[:, None]]
        header += ["probability", "decision"]
    return header, columns


MANIFEST_BATCH_FIELDS = ("batch", "first_record", "records", "data_sha256")


def _manifest(paths: dict[str, Path]) -> list[dict[str, Any]]:
    """The batches client/batches.json lists, each with integer fields and a digest, in batch order.

    Raises:
        WorkflowError: no manifest, or one that is not what ``encrypt_batches`` writes.
    """
    data = _read(paths["manifest"], "the list of encrypted batches", "ckkslab encrypt --batches")
    what = str(paths["manifest"])
    try:
        top = container.exact_fields(parse_json(data, what, artifacts.ArtifactError),
                                     ("batch_size", "records", "batches"), what)
        listed = container.list_of(lambda v, w: container.exact_fields(v, MANIFEST_BATCH_FIELDS, w))(
            top["batches"], f"the batches of {what}")
        for entry in listed:
            for name in MANIFEST_BATCH_FIELDS[:3]:
                container.integer(entry[name], f"{name} in {what}")
            container.string(entry["data_sha256"], f"data_sha256 in {what}")
    except artifacts.ArtifactError as exc:
        raise WorkflowError(f"{exc}: run `ckkslab encrypt --batches` again") from None
    if [entry["batch"] for entry in listed] != list(range(len(listed))) or not listed:
        raise WorkflowError(f"{what} does not list batches 0, 1, 2, ... in order: run `ckkslab encrypt "
                            "--batches` again")
    return list(listed)


def decrypt_batches(workspace: str | Path, network: PlainNetwork | None = None,
                    flood_bits: float | None = None,
                    quiet: bool = True) -> tuple[np.ndarray, np.ndarray, Path]:
    """Client: decrypt every batch client/batches.json lists into one client/scores.csv, with a record_id
    column; returns (record ids, scores, path).

    Each batch's predictions must be of that batch exactly (batch index, record ids and the SHA-256 of the
    data file the client wrote), and the merged record ids must be each present exactly once.

    Raises:
        WorkflowError: a batch without predictions (the message lists them: run predict, it resumes), a
            prediction file for a batch the client did not encrypt, predictions of other data or keys, or a
            record id missing or present twice.
    """
    plan, secret, keys = _client_keys(workspace)
    paths = _paths(workspace)
    listed = _manifest(paths)
    found = _batch_files(paths["batch_predictions"])
    missing = [entry["batch"] for entry in listed if entry["batch"] not in found]
    extra = sorted(set(found) - {entry["batch"] for entry in listed})
    if missing or extra:
        raise WorkflowError(
            f"{paths['batch_predictions']}: " + "; ".join(
                ([f"no predictions for batch(es) {missing}: run `ckkslab predict` (it resumes)"]
                 if missing else [])
                + ([f"predictions of batch(es) {extra} that {paths['manifest']} does not list: they are of "
                    "another encryption; remove them"] if extra else [])))
    ids, parts = [], []
    with RecordProgress("decrypting batches", len(listed), sum(e["records"] for e in listed),
                        enabled=False if quiet else None) as bar:
        for entry in listed:
            path = found[entry["batch"]]
            info, scores = _decrypt_file(path, paths, plan, secret, keys, network, flood_bits)
            said = {name: info.get(name) for name in MANIFEST_BATCH_FIELDS}
            if said != entry:
                raise WorkflowError(f"{path} is not the prediction of batch {entry['batch']} as the client "
                                    f"encrypted it (it says {said}, {paths['manifest']} {entry}): run "
                                    "`ckkslab predict` again")
            ids.append(entry["first_record"] + np.arange(scores.shape[0]))
            parts.append(scores)
            bar.advance(scores.shape[0])
    record_ids, scores = np.concatenate(ids), np.concatenate(parts)
    check_each_once(record_ids, f"the batches of {paths['manifest']}")
    header, columns = _score_columns(scores, network)
    buffer = io.StringIO()
    np.savetxt(buffer, np.hstack([record_ids[:, None], *columns]), delimiter=",",
               header=",".join(["record_id", *header]), comments="", fmt=["%d"] + ["%.18e"] * len(header))
    write_atomic(paths["scores"], buffer.getvalue().encode())
    return record_ids, scores, paths["scores"]
