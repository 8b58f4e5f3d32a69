"""Each engine's finished batches of ``ckkslab compare`` on disk: Ctrl-C loses none, and a rerun resumes.

Layout, under the comparison's ``--out`` directory::

    batches/plain/batch_0000.npz       batch 0 of the plaintext engine
    batches/ckkslab/batch_0003.npz     batch 3 of ckkslab
    batches/helayers/batch_0003.npz    batch 3 of HElayers
    batches/ckkslab/run.json           ckkslab's run costs once it had every batch (below)

A file is written as soon as its engine has decrypted the batch, under a temporary name and then renamed
(``nn.streaming.write_atomic``), so an interrupted run leaves only whole files. It holds ``outputs`` (records,
outputs), the decrypted network outputs in float64; ``record_ids`` (records,) int64; and ``meta``, a JSON
text: the format version, the batch's key (below) and its costs, the batch's share of the stage seconds and
bytes that the report sums over batches (``nn.streaming.BatchSink``).

Only what the client holds in plaintext goes there: decrypted outputs and numbers, never a key. A rerun
makes new keys and reuses the stored outputs. That is sound because a decrypted CKKS output is the network's
output plus the encryption noise (about 2^-30 of the value range here), whatever the key: outputs decrypted
under an earlier key compare with the others as this run's own would, and the report's per-batch agreement
shows that noise batch by batch.

The key of a batch is what determines its outputs: the SHA-256 of model.json and of model.h5, the batch size
and index, the SHA-256 of the batch's records (float64), and the engine's options that change its outputs
(ckkslab: encrypted or plain weights, frac bits, the calibration records; HElayers: backend, encrypted or
plain weights), and the code that computed them: the SHA-256 of the engine's sources (``ENGINE_CODE``: the
packages it runs, and pyhelayers' version for HElayers), so that outputs of an older ckkslab are not mixed
with a newer one's. Threads and the scheduler are not in it (they change how fast, not what), nor ckkslab.json
(the report applies its decision rule to the stored outputs). A file whose key is not this run's is refused
(``CheckpointError`` naming what differs) rather than computed again and overwritten: it may hold hours of
batches, and a changed option is more often a slip than a choice. ``--fresh`` discards the checkpoint on
purpose (or give another ``--out``). A file that cannot be read back is refused as corrupt. Files of batches
beyond this run's count are left as they are (a later ``--batches all`` uses them).

When an engine has every batch, ``run.json`` keeps what its run cost beside the batches (keygen and
encrypt_model, CPU, peak RSS, parameters: ``RunRecord``), with the engine's key, the batch count and the
batches' summed costs. A rerun that finds every batch and a record that still matches them (same key, count
and costs) runs nothing for that engine: its figures are those of the run that completed the checkpoint.
A record whose batches changed since (one was deleted and computed again) is not used, and is rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nn import container
from nn.container import ArtifactError
from nn.jsonfile import parse_json
from nn.streaming import add_costs, check_each_once, write_atomic

FORMAT = 1
BATCH_FILE = re.compile(r"batch_(\d{4,})\.npz")
RUN_FILE = "run.json"
#: What ``write_atomic`` leaves if killed (SIGKILL) while writing a batch file or the run record.
TEMPORARY_FILE = re.compile(r"\.(batch_\d{4,}\.npz|run\.json)\.\d+\.tmp")
#: The key's digests, as a difference is named in a message.
DIGESTS = {"model_json_sha256": "another model.json", "model_h5_sha256": "another model.h5",
           "records_sha256": "other records", "calibration_sha256": "other calibration records",
           "code_sha256": "other engine code (ckkslab was changed or updated since)"}
#: The packages whose code computes each engine's outputs (the plaintext pass is nn.model's).
ENGINE_CODE = {"plain": ("nn",), "ckkslab": ("ckks", "nn"), "helayers": ("nn", "reference")}
ROOT = Path(__file__).resolve().parents[1]
REMEDY = "delete it or run with --fresh"


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, or was made with other inputs or options than this run's."""


@dataclass
class FinishedBatch:
    """One engine's batch: decrypted outputs (records, outputs), record ids (records,), and its costs."""

    index: int
    outputs: np.ndarray
    record_ids: np.ndarray
    costs: dict[str, dict[str, float]]


@dataclass
class RunRecord:
    """What an engine's run cost beyond its batches, as the run that completed the checkpoint measured it:
    the fields of ``validation.compare.EngineRun`` but the outputs (which the batches hold)."""

    params: dict[str, Any]
    timings_s: dict[str, float]
    sizes_bytes: dict[str, int]
    peak_rss_bytes: int
    details: dict[str, Any]
    cpu_s: float

    @classmethod
    def from_json(cls, value: Any) -> RunRecord:
        """The record of ``run.json``'s "run" object.

        Raises:
            ArtifactError: other fields, a part that is not a JSON object, or costs that are not numbers.
        """
        container.exact_fields(value, [f.name for f in dataclasses.fields(cls)], "the run record")
        for name in ("params", "timings_s", "sizes_bytes", "details"):
            if not isinstance(value[name], dict):
                raise ArtifactError(f"the run record's {name} must be a JSON object, got "
                                    f"{container.show(value[name])}")
        return cls(value["params"],
                   {name: container.number(v, f"timings_s.{name}") for name, v in value["timings_s"].items()},
                   {name: _count(v, f"sizes_bytes.{name}") for name, v in value["sizes_bytes"].items()},
                   _count(value["peak_rss_bytes"], "peak_rss_bytes"), value["details"],
                   container.number(value["cpu_s"], "cpu_s"))


def _count(value: Any, what: str) -> int:
    """A whole number of bytes (a float that holds one, as summed costs are, included)."""
    number = container.number(value, f"the run record's {what}")
    if number != int(number) or number < 0:
        raise ArtifactError(f"the run record's {what} must be a whole number of bytes, got "
                            f"{container.show(value)}")
    return int(number)


def checkpoint_dir(out: Path) -> Path:
    """Where a comparison writing into ``out`` keeps its finished batches: ``out/batches``."""
    return Path(out) / "batches"


def batch_path(directory: Path, index: int) -> Path:
    """The file of batch ``index`` in an engine's checkpoint directory: batch_0003.npz."""
    return directory / f"batch_{index:04d}.npz"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sha256_rows(rows: np.ndarray) -> str:
    """The SHA-256 of records as float64 bytes (row-major), in hex."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.float64).tobytes()).hexdigest()


def engine_key(engine: str, model_dir: Path, batch_size: int, options: dict[str, Any]) -> dict[str, Any]:
    """What determines an engine's outputs on a batch, but the batch itself: the model files, the batch size,
    ``options`` (the engine's options that change its outputs) and its code (``code_sha256``)."""
    model_dir = Path(model_dir)
    return {"engine": engine, "model_json_sha256": sha256_file(model_dir / "model.json"),
            "model_h5_sha256": sha256_file(model_dir / "model.h5"), "batch_size": batch_size,
            "code_sha256": code_sha256(engine), **options}


def code_sha256(engine: str) -> str:
    """SHA-256 over the path and text of every .py file of ``ENGINE_CODE[engine]``, in sorted order, and for
    HElayers the installed pyhelayers version ("absent" if none)."""
    digest = hashlib.sha256()
    for package in ENGINE_CODE[engine]:
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    if engine == "helayers":
        from importlib import metadata

        try:
            digest.update(metadata.version("pyhelayers").encode())
        except metadata.PackageNotFoundError:
            digest.update(b"absent")
    return digest.hexdigest()


def discard(out: Path) -> int:
    """Remove the checkpoint files under ``out/batches`` (and the folders they leave empty); returns how many.

    Only files named as this module writes them are removed: a folder that holds anything else stays.
    """
    root = checkpoint_dir(out)
    removed = 0
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            ours = BATCH_FILE.fullmatch(path.name) or TEMPORARY_FILE.fullmatch(path.name)
            if ours or path.name == RUN_FILE:
                path.unlink()
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return removed


class BatchStore:
    """One engine's finished batches of ``x`` in batches of ``batch_size``: those found in ``directory``
    (``loaded``, read when the store is made) and those computed in this run (``computed``, each written by
    ``save`` as soon as the engine hands it over).

    ``key``: ``engine_key``; each batch's file must hold it with the batch's index and records' digest.

    Raises:
        CheckpointError: a file of one of the batches is corrupt, or was made with other inputs.
    """

    def __init__(self, directory: Path, key: dict[str, Any], x: np.ndarray, batch_size: int) -> None:
        self.directory, self.key, self.x, self.batch_size = Path(directory), key, x, batch_size
        self.batches = x.shape[0] // batch_size
        self.computed: dict[int, FinishedBatch] = {}
        self.loaded = {index: self._load(index) for index in range(self.batches)
                       if batch_path(self.directory, index).is_file()}

    def batch_key(self, index: int) -> dict[str, Any]:
        """The key batch ``index``'s file must hold: the engine's key, the index and the records' digest."""
        first = index * self.batch_size
        records = self.x[first : first + self.batch_size]
        return {**self.key, "batch": index, "records_sha256": sha256_rows(records)}

    def save(self, index: int, outputs: np.ndarray, record_ids: np.ndarray,
             costs: dict[str, dict[str, float]]) -> None:
        """Keep batch ``index`` (an ``nn.streaming.BatchSink``): its file written atomically, then counted."""
        batch = FinishedBatch(index, np.asarray(outputs, dtype=np.float64),
                              np.asarray(record_ids, dtype=np.int64), costs)
        meta = {"format": FORMAT, "key": self.batch_key(index), "costs": costs}
        buffer = io.BytesIO()
        np.savez(buffer, outputs=batch.outputs, record_ids=batch.record_ids, meta=np.array(json.dumps(meta)))
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(batch_path(self.directory, index), buffer.getvalue())
        self.computed[index] = batch

    def outputs(self) -> np.ndarray:
        """Every batch's outputs, loaded or computed, in record order.

        Raises:
            WorkflowError: the batches do not hold each record id 0 .. n - 1 exactly once.
        """
        batches = [{**self.loaded, **self.computed}[i] for i in sorted({*self.loaded, *self.computed})]
        record_ids = np.concatenate([batch.record_ids for batch in batches])
        check_each_once(record_ids, f"the batches of {self.directory.name}")
        return np.concatenate([batch.outputs for batch in batches])[np.argsort(record_ids)]

    def loaded_costs(self) -> dict[str, dict[str, float]]:
        """The costs of the loaded batches, summed (group -> name -> value)."""
        return self._costs(self.loaded.values())

    @staticmethod
    def _costs(batches: Iterable[FinishedBatch]) -> dict[str, dict[str, float]]:
        """The costs of ``batches``, summed in batch order (so that equal sets give equal sums)."""
        totals: dict[str, dict[str, float]] = {}
        for batch in sorted(batches, key=lambda b: b.index):
            add_costs(totals, batch.costs)
        return totals

    def save_run(self, record: RunRecord) -> None:
        """Write ``run.json`` (atomically): ``record`` with the key, the batch count and the batches' costs.

        Raises:
            ValueError: a batch is missing (a record is only kept for a whole set).
        """
        missing = sorted(set(range(self.batches)) - {*self.loaded, *self.computed})
        if missing:
            raise ValueError(f"no run record for {self.directory.name} while batch(es) {missing} are missing")
        text = json.dumps({"format": FORMAT, "key": self.key, "batches": self.batches,
                           "batch_costs": self._costs({**self.loaded, **self.computed}.values()),
                           "run": dataclasses.asdict(record)}, allow_nan=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / RUN_FILE, text.encode())

    def finished_run(self) -> RunRecord | None:
        """The run record to reuse instead of running the engine: when every batch was loaded and ``run.json``
        was written for this key, this batch count and exactly these batches' costs; else None.

        Raises:
            CheckpointError: ``run.json`` is corrupt, or was made with another key (as a batch file).
        """
        path = self.directory / RUN_FILE
        if len(self.loaded) < self.batches or not path.is_file():
            return None
        try:
            stored = parse_json(path.read_text(encoding="utf-8"), str(path), ArtifactError)
            container.exact_fields(stored, ("format", "key", "batches", "batch_costs", "run"), str(path))
            if stored["format"] != FORMAT:
                raise ArtifactError(f"format {container.show(stored['format'])}, this ckkslab reads {FORMAT}")
            record = RunRecord.from_json(stored["run"])
        except (ArtifactError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt ({exc}): {REMEDY}") from None
        if stored["key"] != self.key:
            differences = ", ".join(_differences(stored["key"], self.key))
            raise CheckpointError(f"checkpoint {path} was made with other inputs ({differences}): {REMEDY}")
        same = stored["batches"] == self.batches and stored["batch_costs"] == self.loaded_costs()
        return record if same else None

    def _load(self, index: int) -> FinishedBatch:
        """Batch ``index``'s file, checked whole and made with this run's key.

        Raises:
            CheckpointError: the file is corrupt, or its key differs from this run's (the message says how).
        """
        path = batch_path(self.directory, index)
        try:
            outputs, record_ids, meta = _read(path)
            key, costs = _check_meta(meta)
        except ArtifactError as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt ({exc}): {REMEDY}") from None
        expected = self.batch_key(index)
        if key != expected:  # before the arrays: a batch of another size is stale, not corrupt
            differences = ", ".join(_differences(key, expected))
            raise CheckpointError(
                f"checkpoint {path} was made with other inputs ({differences}): rerun with the inputs and "
                "options it was made with to resume, or run with --fresh to discard the checkpoint (or give "
                "another --out)")
        try:
            _check_arrays(outputs, record_ids, index, self.batch_size)
        except ArtifactError as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt ({exc}): {REMEDY}") from None
        return FinishedBatch(index, outputs, record_ids, costs)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """The arrays of a checkpoint file and its meta parsed from JSON.

    Raises:
        ArtifactError: not a readable npz archive holding outputs, record_ids and a JSON meta text.
    """
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as archive:
            outputs, record_ids, meta = archive["outputs"], archive["record_ids"], archive["meta"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"not a readable npz archive of outputs, record_ids and meta: {exc}") from None
    if meta.ndim != 0 or meta.dtype.kind != "U":
        raise ArtifactError(f"meta must be one text, got an array of {meta.dtype} and shape {meta.shape}")
    return outputs, record_ids, parse_json(str(meta), "meta", ArtifactError)


def _check_meta(meta: Any) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The key and the costs of a file's meta, whose format must be this module's.

    Raises:
        ArtifactError: other fields, another format, a key that is not an object, costs that are not numbers.
    """
    container.exact_fields(meta, ("format", "key", "costs"), "meta")
    if meta["format"] != FORMAT:
        raise ArtifactError(f"format {container.show(meta['format'])}, this ckkslab reads format {FORMAT}")
    if not isinstance(meta["key"], dict):
        raise ArtifactError(f"the key must be a JSON object, got {container.show(meta['key'])}")
    if not isinstance(meta["costs"], dict):
        raise ArtifactError(f"the costs must be a JSON object, got {container.show(meta['costs'])}")
    costs = {}
    for group, values in meta["costs"].items():
        if not isinstance(values, dict):
            raise ArtifactError(f"the costs' {group!r} must be a JSON object, got {container.show(values)}")
        costs[group] = {name: container.number(value, f"the costs' {group}.{name}")
                        for name, value in values.items()}
    return meta["key"], costs


def _check_arrays(outputs: np.ndarray, record_ids: np.ndarray, index: int, batch_size: int) -> None:
    """Outputs (batch_size, k) float64 and the record ids of batch ``index``: index * batch_size onwards.

    Raises:
        ArtifactError: other shapes or dtypes, or record ids of other records.
    """
    if outputs.dtype != np.float64 or outputs.ndim != 2 or outputs.shape[0] != batch_size:
        raise ArtifactError(f"outputs must be float64 of shape ({batch_size}, k), got {outputs.dtype} "
                            f"{outputs.shape}")
    expected = index * batch_size + np.arange(batch_size)
    if record_ids.dtype.kind not in "iu" or not np.array_equal(record_ids, expected):
        raise ArtifactError(f"record_ids are not those of batch {index} ({expected[0]} to {expected[-1]})")


def _differences(stored: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What differs between a file's key and this run's, for people: 'frac_bits 20 (this run: 30)'."""
    names = [*expected, *(name for name in stored if name not in expected)]
    return [DIGESTS.get(name, f"{name} {stored.get(name)!r} (this run: {expected.get(name)!r})")
            for name in names if stored.get(name) != expected.get(name)]
