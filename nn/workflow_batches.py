"""The client/server workflow over every batch of a record set, one file per batch (see ``nn.workflow``):
``encrypt_batches`` (client), ``predict_batches`` (server, on any scheduler, resuming), ``decrypt_batches``
(client, merging by record id).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ckks

from . import artifacts, container
from . import encrypted as enc
from . import workspace as ws
from .distributed import Batch, SchedulerOptions, open_scheduler
from .errors import WorkflowError, refuse_complex
from .jsonfile import parse_json
from .model import PlainNetwork
from .server import digest, keys_id, load_bundle
from .streaming import RecordProgress, check_each_once, write_atomic


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
    plan, secret, keys = ws.client_keys(workspace)
    x = np.asarray(refuse_complex(x, "encrypt_batches: the records", ckks.ValueRangeError), dtype=np.float64)
    available = -(-x.shape[0] // batch_size) if batch_size >= 1 else 0
    count = available if batches is None else batches
    if batch_size < 1 or count < 1:
        raise WorkflowError(f"the batch size and the number of batches must be positive, got {batch_size} "
                            f"and {count}")
    if count > available:
        raise WorkflowError(f"{count} batches of {batch_size} need {count * batch_size} records, the data "
                            f"has {x.shape[0]} ({available} batch(es))")
    paths = ws.files(workspace)
    ws.remove_batches(workspace)
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
            write_atomic(paths["batch_data"] / ws.batch_file(index), data)
            listed.append({"batch": index, "first_record": first, "records": part.shape[0],
                           "data_digest": artifacts.ciphertexts_digest(data)})
            written += len(data)
            bar.advance(part.shape[0])
    manifest = {"batch_size": batch_size, "records": records, "batches": listed}
    write_atomic(paths["manifest"], json.dumps(manifest, indent=1).encode())
    return written


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
    """Whether ``prediction`` holds whole, valid predictions of exactly ``data`` by this model and keys.

    ``data`` is named by its content digest, which covers its ciphertexts' checksums but not the bytes they
    check: a batch file damaged inside a ciphertext after its prediction was made still counts as predicted
    (the prediction is of the file as it was; computing it again would fail on the damage). ``data`` is a
    ciphertexts file already (``_header_info`` read it), so its digest raises nothing."""
    if not prediction.is_file():
        return False
    try:
        _, info = artifacts.ciphertexts_with_info(prediction.read_bytes(), params)
    except artifacts.ArtifactError:
        return False
    said = (info.get("data_digest"), info.get("model_sha256"), info.get("keys"))
    return said == (artifacts.ciphertexts_digest(data), model_digest, keys)


def predict_batches(workspace: str | Path, scheduler: SchedulerOptions | None = None,
                    timer: enc.StageTimer | None = None, quiet: bool = True) -> PredictReport:
    """Server: every server/data/batch_NNNN.ckks -> server/predictions/batch_NNNN.ckks, on ``scheduler``.

    A batch whose prediction file exists and is the prediction of that very data file, model and keys is
    skipped (so a rerun after Ctrl-C resumes); any other is computed and written atomically. A batch that
    fails with a named error (a corrupted file) is reported in ``failed`` while the others go on.
    ``timer`` receives the server's steps summed over the computed batches, measured where they ran (on a
    Dask worker too).

    Raises:
        WorkflowError: no batch files, or a missing bundle or model.
        The server's load errors (``nn.server.Server``) and ``SchedulerError`` (``nn.distributed``).
    """
    paths = ws.files(workspace)
    jobs = ws.batch_files(paths["batch_data"])
    if not jobs:
        raise WorkflowError(f"no batch files in {paths['batch_data']}: run `ckkslab encrypt --batches` first")
    bundle, model = ws.server_files(paths)
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

    if not todo:
        report.scheduler = "none: every batch was predicted already"
        return report
    # The progress line (records/s, ETA) starts once the server is ready: a Dask cluster's start is not
    # time spent on records.
    with (open_scheduler(scheduler or SchedulerOptions(), bundle, model, bundle_name=str(paths["bundle"]),
                         model_name=str(paths["model"])) as running,
          RecordProgress("predicting batches", len(records), sum(records.values()),
                         enabled=False if quiet else None) as bar):
        report.scheduler = running.description
        for index in report.skipped:
            bar.skip(records[index])
        for outcome in running.run(batches()):
            if outcome.error is not None:
                report.failed[outcome.index] = outcome.error
                continue
            write_atomic(paths["batch_predictions"] / jobs[outcome.index].name, outcome.predictions)
            if timer is not None:
                for step, seconds in outcome.costs.stage_seconds.items():
                    timer.seconds[step] += seconds
            report.computed.append(outcome.index)
            report.bytes_written += len(outcome.predictions)
            bar.advance(records[outcome.index])
    return report


MANIFEST_BATCH_FIELDS = ("batch", "first_record", "records", "data_digest")


def _manifest(paths: dict[str, Path]) -> list[dict[str, Any]]:
    """The batches client/batches.json lists, each with integer fields and a digest, in batch order.

    Raises:
        WorkflowError: no manifest, or one that is not what ``encrypt_batches`` writes.
    """
    data = ws.read(paths["manifest"], "the list of encrypted batches", "ckkslab encrypt --batches")
    what = str(paths["manifest"])
    try:
        top = container.exact_fields(parse_json(data, what, artifacts.ArtifactError),
                                     ("batch_size", "records", "batches"), what)
        listed = container.list_of(lambda v, w: container.exact_fields(v, MANIFEST_BATCH_FIELDS, w))(
            top["batches"], f"the batches of {what}")
        for entry in listed:
            for name in MANIFEST_BATCH_FIELDS[:3]:
                container.integer(entry[name], f"{name} in {what}")
            container.string(entry["data_digest"], f"data_digest in {what}")
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

    Each batch's predictions must be of that batch exactly (batch index, record ids and the content digest
    of the data file the client wrote), and the merged record ids must be each present exactly once.

    Raises:
        WorkflowError: a batch without predictions (the message lists them: run predict, it resumes), a
            prediction file for a batch the client did not encrypt, predictions of other data or keys, or a
            record id missing or present twice.
    """
    plan, secret, keys = ws.client_keys(workspace)
    paths = ws.files(workspace)
    listed = _manifest(paths)
    found = ws.batch_files(paths["batch_predictions"])
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
            info, scores = ws.decrypt_file(path, paths, plan, secret, keys, network, flood_bits)
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
    header, columns = ws.score_columns(scores, network)
    ws.write_scores(paths["scores"], ["record_id", *header], [record_ids[:, None], *columns],
                    fmt=["%d"] + ["%.18e"] * len(header))
    return record_ids, scores, paths["scores"]
