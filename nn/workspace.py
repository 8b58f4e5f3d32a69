"""The client/server workspace: where each file lives, and the reads and checks every step shares.

``files(workspace)`` is the layout (see ``nn.workflow``); ``client_keys`` loads the client's plan and secret
key and checks the bundle holds its public keys; ``server`` loads what the server holds; ``decrypt_file``
decrypts one predictions file after checking its keys and shape. Every file is written through
``streaming.write_atomic``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

import ckks

from . import artifacts, batch_packing
from . import encrypted as enc
from .errors import WorkflowError
from .jsonfile import parse_json
from .model import PlainNetwork
from .plan import InferencePlan
from .server import Server, keys_id, load_bundle
from .streaming import write_atomic

BATCH_FILE = re.compile(r"batch_(\d{4,})\.ckks")


def files(workspace: str | Path) -> dict[str, Path]:
    """Every file of the workspace (the layout in ``nn.workflow``'s docstring), by role."""
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


def batch_files(directory: Path) -> dict[int, Path]:
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
    paths = files(workspace)
    return bool(batch_files(paths["batch_data"]) or batch_files(paths["batch_predictions"])
                or paths["manifest"].is_file())


def read(path: Path, what: str, step: str) -> bytes:
    """The bytes of ``path``; WorkflowError naming ``what`` and the ``step`` that writes it when missing."""
    if not path.is_file():
        raise WorkflowError(f"{what} not found at {path}: run `{step}` first")
    return path.read_bytes()


def load_plan(workspace: str | Path) -> InferencePlan:
    """The plan the client wrote at keygen.

    Raises:
        WorkflowError: no plan yet, or a plan.json that is not UTF-8 JSON of a valid plan (see
            ``artifacts.plan_from_dict``); the message names the problem.
    """
    path = files(workspace)["plan"]
    data = read(path, "the plan", "ckkslab keygen")
    try:
        return artifacts.plan_from_dict(parse_json(data, str(path), artifacts.ArtifactError), str(path))
    except artifacts.ArtifactError as exc:
        raise WorkflowError(f"{exc}; run `ckkslab keygen` again to rewrite it") from None


def client_keys(workspace: str | Path) -> tuple[InferencePlan, ckks.SecretKey, str]:
    """The plan, the secret key, and the id of the bundle, checked to hold this secret key's public keys."""
    plan = load_plan(workspace)
    paths = files(workspace)
    read(paths["secret"], "the secret key", "ckkslab keygen")
    secret = ckks.load(paths["secret"], params=plan.params)
    if not isinstance(secret, ckks.SecretKey):
        raise WorkflowError(f"{paths['secret']} is not a secret key: the client needs the SecretKey, got "
                            f"{type(secret).__name__}")
    data = read(paths["bundle"], "the context bundle", "ckkslab keygen")
    bundle = load_bundle(data, str(paths["bundle"]))
    if bundle.params.fingerprint != plan.params.fingerprint or not ckks.made_from(
            secret, bundle.public_key, bundle.relin_key, plan.params):
        raise WorkflowError(f"{paths['bundle']} was made with other keys than {paths['secret']}: copy this "
                            "client's bundle back, or run `ckkslab keygen` again")
    return plan, secret, keys_id(data)


def remove_batches(workspace: str | Path) -> None:
    """Delete every batch data and prediction file and the batch list (they are stale)."""
    paths = files(workspace)
    for key in ("batch_data", "batch_predictions"):
        for path in batch_files(paths[key]).values():
            path.unlink()
    paths["manifest"].unlink(missing_ok=True)


def server_files(paths: dict[str, Path]) -> tuple[bytes, bytes]:
    """What the server loads: the bundle's and the model's bytes."""
    return (read(paths["bundle"], "the context bundle", "ckkslab keygen"),
            read(paths["model"], "the model", "ckkslab encrypt"))


def server(paths: dict[str, Path]) -> Server:
    """The server, loaded from the workspace's bundle and model."""
    return Server(*server_files(paths), str(paths["bundle"]), str(paths["model"]))


def prediction_shape(info: dict, count: int, plan: InferencePlan, network: PlainNetwork | None,
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


def decrypt_file(path: Path, paths: dict[str, Path], plan: InferencePlan, secret: ckks.SecretKey,
                  keys: str, network: PlainNetwork | None,
                  flood_bits: float | None) -> tuple[dict[str, Any], np.ndarray]:
    """The info and the decrypted scores (records, output_dim) of one predictions file, checked to be of
    these keys and of the shape the plan (and the network, if given) allows."""
    outputs, info = artifacts.ciphertexts_with_info(read(path, "the predictions", "ckkslab predict"),
                                                    plan.params)
    n, output_dim = prediction_shape(info, len(outputs), plan, network, path)
    if info.get("keys") != keys:
        raise WorkflowError(f"{path} were made with other keys than {paths['secret']} (another client's data "
                            "or evaluation keys): they would decrypt to garbage")
    scores = enc.decrypt_batch(outputs, n, plan, output_dim, ckks.Encoder(plan.params),
                               ckks.Decryptor(plan.params, secret), flood_bits)
    return info, scores


def score_columns(scores: np.ndarray, network: PlainNetwork | None) -> tuple[list[str], list[np.ndarray]]:
    """The scores.csv header and columns: scores, then probability and decision when ``network`` decides."""
    columns = [scores]
    header = [f"score_{i}" for i in range(scores.shape[1])]
    if network is not None and scores.shape[1] == 1:
        probabilities, decisions = network.decide(scores)
        columns += [probabilities[:, None], decisions[:, None]]
        header += ["probability", "decision"]
    return header, columns


def write_scores(path: Path, header: list[str], columns: list[np.ndarray],
                 fmt: str | list[str] = "%.18e") -> None:
    """client/scores.csv: ``header`` and ``columns`` as comma-separated values, written atomically."""
    buffer = io.StringIO()
    np.savetxt(buffer, np.hstack(columns), delimiter=",", header=",".join(header), comments="", fmt=fmt)
    write_atomic(path, buffer.getvalue().encode())
