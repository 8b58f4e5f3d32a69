"""The paper's data pipeline: code the diabetes table, split it, scale it, save x/y as HDF5, read them back.

The table is read and checked by ``nn.table`` (the two schemas, CSV or zip). Coding (paper; the gender coding
is ours, the paper does not give one): gender Female=0, Male=1, Other=2; smoking_history never=0, No Info=1,
not current/ever/former=2, current=3; ``location`` and ``clinical_notes`` dropped. Splits: 67/33
train/test, then the training part 67/33 train/validation (``sklearn.model_selection.train_test_split``,
not stratified, ``random_state=seed``). The minority class of the training part only is replicated until
the classes are about balanced. Test rows are truncated to a multiple of the encrypted batch (4096 by
default), train/validation rows to a multiple of the training batch (32). Scaling is a fixed per-record
transform the client applies before encryption: the paper's ``sklearn.preprocessing.normalize`` (each
record divided by its L2 norm) or, for the clinical recipe, a min-max map of each feature to [0, 1] with the
minimum and maximum of the training part.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from nn.errors import DataSchemaError, refuse_complex  # re-exported: from nn.data import DataSchemaError
from nn.hdf5_sandbox import HDF5_ERRORS, read_isolated
from nn.hdf5_storage import read_float64, storage_outside
from nn.jsonfile import parse_json
from nn.table import GENDER_CODES, LABEL, SCHEMA_FEATURES, SMOKING_CODES, check_values, load_table

# Which per-record scaling each training recipe uses (see the module docstring).
RECIPE_SCALING = {"paper": "l2_rows", "clinical": "minmax"}
SPLITS = ("train", "val", "test")


def preprocess(table: pd.DataFrame, schema: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Code the table as the paper does: raw (unscaled) float64 features, labels as a column vector.

    Returns ``(x (n, d), y (n, 1), feature_names)``; see the module docstring for the coding.

    Raises:
        DataSchemaError: ``schema`` unknown or the table does not hold its columns.
    """
    if schema not in SCHEMA_FEATURES:
        raise DataSchemaError(f"unknown schema '{schema}'; known: {list(SCHEMA_FEATURES)}")
    names = SCHEMA_FEATURES[schema]
    missing = [c for c in (*names, LABEL) if c not in table.columns]
    if missing:
        raise DataSchemaError(f"table lacks columns {missing} of schema '{schema}'")
    check_values(table, schema)
    columns = []
    for name in names:
        values = table[name]
        if name == "gender":
            values = values.astype(str).map(GENDER_CODES)
        elif name == "smoking_history":
            values = values.astype(str).map(SMOKING_CODES)
        columns.append(values.to_numpy(dtype=np.float64))
    x = np.column_stack(columns)
    y = table[LABEL].to_numpy(dtype=np.float64).reshape(-1, 1)
    return x, y, names


def fit_scaling(method: str, x_train: np.ndarray) -> dict[str, Any]:
    """The JSON-able description of a per-record scaling, fitted on the training rows where needed.

    ``l2_rows``: x / ||x||_2 per record (``sklearn.preprocessing.normalize``), nothing to fit.
    ``minmax``: (x - min) / (max - min) per feature, min and max of ``x_train`` (range 0 -> divide by 1).

    Raises:
        DataSchemaError: unknown method.
    """
    if method == "l2_rows":
        return {"method": "l2_rows"}
    if method == "minmax":
        return {"method": "minmax", "feature_min": x_train.min(axis=0).tolist(),
                "feature_max": x_train.max(axis=0).tolist()}
    raise DataSchemaError(f"unknown scaling '{method}'; known: l2_rows, minmax")


def apply_scaling(x: np.ndarray, scaling: dict[str, Any]) -> np.ndarray:
    """Apply a scaling made by :func:`fit_scaling` to raw features ``x`` (n, d); float64 result.

    Raises:
        DataSchemaError: unknown method, minmax bounds whose length differs from d, or complex features.
    """
    from sklearn.preprocessing import normalize

    x = refuse_complex(x, "the features to scale", DataSchemaError)
    method = scaling.get("method")
    if method == "l2_rows":
        return normalize(np.asarray(x, dtype=np.float64), norm="l2", axis=1)
    if method == "minmax":
        lo = np.asarray(scaling["feature_min"], dtype=np.float64)
        hi = np.asarray(scaling["feature_max"], dtype=np.float64)
        if lo.shape != (x.shape[1],) or hi.shape != lo.shape:
            raise DataSchemaError(f"minmax scaling has {lo.size} bounds for {x.shape[1]} features")
        span = np.where(hi > lo, hi - lo, 1.0)
        return (np.asarray(x, dtype=np.float64) - lo) / span
    raise DataSchemaError(f"unknown scaling '{method}'; known: l2_rows, minmax")


@dataclass(frozen=True)
class Splits:
    """Scaled train/validation/test arrays plus what it takes to reproduce or explain them."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    scaling: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


def _truncate(n: int, multiple: int) -> int:
    """The largest multiple of ``multiple`` that is at most ``n``."""
    return n - n % multiple


def make_splits(x_raw: np.ndarray, y: np.ndarray, *, scaling: str = "l2_rows", seed: int = 1,
                test_multiple: int = 4096, train_multiple: int = 32) -> Splits:
    """Split 67/33 then 67/33 again, replicate the minority class of train, truncate, scale.

    Replication: with n_major and n_minor rows in the training part, each minority row appears
    n_major // n_minor times; the result is shuffled by ``numpy.random.default_rng(seed)``.

    Raises:
        DataSchemaError: shapes disagree, one class is absent from the training part, or the test
            split holds fewer rows than one ``test_multiple`` batch.
    """
    from sklearn.model_selection import train_test_split

    if x_raw.ndim != 2 or y.shape != (x_raw.shape[0], 1):
        raise DataSchemaError(f"x must be (n, d) and y (n, 1); got {x_raw.shape} and {y.shape}")
    if test_multiple < 1 or train_multiple < 1:
        raise DataSchemaError("batch multiples must be positive")
    rows = np.arange(x_raw.shape[0])
    rest, test = train_test_split(rows, test_size=0.33, random_state=seed)
    train, val = train_test_split(rest, test_size=0.33, random_state=seed)
    labels = y[train, 0]
    positives, negatives = train[labels == 1], train[labels == 0]
    if positives.size == 0 or negatives.size == 0:
        raise DataSchemaError("the training part holds a single class; cannot train a classifier")
    minority, majority = sorted((positives, negatives), key=len)
    factor = len(majority) // len(minority)
    train = np.random.default_rng(seed).permutation(np.concatenate([majority, np.repeat(minority, factor)]))
    if len(test) < test_multiple:
        raise DataSchemaError(f"the test split holds {len(test)} rows, fewer than one batch of "
                              f"{test_multiple}")
    chosen = {
        "train": train[:_truncate(len(train), train_multiple)],
        "val": val[:_truncate(len(val), train_multiple)],
        "test": test[:_truncate(len(test), test_multiple)],
    }
    fitted = fit_scaling(scaling, x_raw[chosen["train"]])
    xs = {name: apply_scaling(x_raw[idx], fitted) for name, idx in chosen.items()}
    ys = {name: y[idx].astype(np.float64) for name, idx in chosen.items()}
    info = {
        "seed": seed, "test_size": 0.33, "val_size": 0.33, "minority_replication": factor,
        "test_multiple": test_multiple, "train_multiple": train_multiple,
        "rows": {name: int(len(idx)) for name, idx in chosen.items()},
        "positives": {name: int(ys[name].sum()) for name in chosen},
    }
    return Splits(x=xs, y=ys, scaling=fitted, info=info)


def prepare(csv: str | Path, recipe: str, *, seed: int = 1, test_multiple: int = 4096,
            train_multiple: int = 32) -> tuple[Splits, dict[str, Any]]:
    """Read, code, split and scale ``csv`` for a recipe; returns the splits and a JSON-able record.

    Raises:
        FileNotFoundError, DataSchemaError: see :func:`load_table` and :func:`make_splits`;
            DataSchemaError also for an unknown recipe.
    """
    if recipe not in RECIPE_SCALING:
        raise DataSchemaError(f"unknown recipe '{recipe}'; known: {list(RECIPE_SCALING)}")
    table, schema = load_table(csv)
    x_raw, y, names = preprocess(table, schema)
    splits = make_splits(x_raw, y, scaling=RECIPE_SCALING[recipe], seed=seed,
                         test_multiple=test_multiple, train_multiple=train_multiple)
    record = {
        "source": Path(csv).name, "source_sha256": hashlib.sha256(Path(csv).read_bytes()).hexdigest(),
        "schema": schema, "recipe": recipe, "feature_names": list(names),
        "gender_codes": GENDER_CODES, "smoking_codes": SMOKING_CODES,
        "feature_scaling": splits.scaling, "splits": splits.info,
    }
    return splits, record


def save_xy(directory: str | Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Write ``x_<split>.h5`` (dataset ``x_<split>``) and ``y_<split>.h5`` (``y_<split>``), byte-reproducibly.

    The layout HElayers' example utilities read; no timestamps are stored so equal arrays give equal files.

    Raises:
        DataSchemaError: x is not 2-D float, or y is not a column vector of the same length, or either is
            complex.
    """
    x = refuse_complex(x, f"the values of x_{split}", DataSchemaError)
    y = refuse_complex(y, f"the values of y_{split}", DataSchemaError)
    if x.ndim != 2 or y.shape != (x.shape[0], 1):
        raise DataSchemaError(f"x must be (n, d) and y (n, 1); got {x.shape} and {y.shape}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, values in ((f"x_{split}", x.astype(np.float64)), (f"y_{split}", y.astype(np.float64))):
        with h5py.File(directory / f"{name}.h5", "w") as handle:
            handle.create_dataset(name, data=values, track_times=False)


# The most values one x or y file may hold (checked from the header, before reading): 16 times the full
# 100,000-record table of 14 features.
MAX_XY_VALUES = 1 << 24


def load_xy(directory: str | Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Read ``x_<split>.h5`` / ``y_<split>.h5`` from a model or data directory as float64 arrays.

    The files are read in a child process (``nn.hdf5_sandbox``): a corrupted file that crashes or hangs the
    HDF5 library is refused like any other.

    Raises:
        FileNotFoundError: a file is missing.
        DataSchemaError: a file is not HDF5 or is corrupted, a dataset is missing or not numeric, the shapes
            are not (n, d) and (n, 1) or hold more than ``MAX_XY_VALUES`` values, a feature is NaN or
            infinite, or a label is not 0 or 1.
    """
    directory = Path(directory)
    x_path, y_path = directory / f"x_{split}.h5", directory / f"y_{split}.h5"
    for path in (x_path, y_path):
        if not path.is_file():
            raise FileNotFoundError(f"no {path.name} in {directory}")
    return read_isolated(lambda: _read_xy(x_path, y_path, split), f"{x_path} and {y_path.name}",
                         DataSchemaError)


def _read_xy(x_path: Path, y_path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """x (n, d) and y (n, 1), shapes checked from the headers before anything is read, values after."""
    x_name, y_name = f"x_{split}", f"y_{split}"
    with _dataset(x_path, x_name) as dataset:
        x_shape = dataset.shape
    with _dataset(y_path, y_name) as dataset:
        y_shape = dataset.shape
    if len(x_shape) != 2 or x_shape[1] == 0 or y_shape not in ((x_shape[0],), (x_shape[0], 1)):
        raise DataSchemaError(f"{x_path.parent}: {x_name} must be (n, d) and {y_name} (n, 1); "
                              f"got {x_shape} and {y_shape}")
    if x_shape[0] * x_shape[1] > MAX_XY_VALUES:
        raise DataSchemaError(f"{x_path} declares {x_shape[0]} x {x_shape[1]} values (more than "
                              f"{MAX_XY_VALUES}); refusing to read it")
    with _dataset(x_path, x_name) as dataset:
        x = read_float64(dataset)
    with _dataset(y_path, y_name) as dataset:
        y = read_float64(dataset).reshape(-1, 1)
    bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
    if bad.size:
        raise DataSchemaError(f"{x_path} holds NaN or infinity (records {bad[:5].tolist()}); remove or "
                              "repair those records")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise DataSchemaError(f"{y_path} holds labels other than 0 and 1")
    return x, y


@contextlib.contextmanager
def _dataset(path: Path, name: str) -> Iterator[h5py.Dataset]:
    """The dataset ``name`` of the HDF5 file ``path``, checked to be an array of numbers stored in ``path``
    itself (``nn.hdf5_storage``); what h5py raises on a corrupted file becomes a DataSchemaError naming the
    file."""
    try:
        handle = h5py.File(path, "r")
    except HDF5_ERRORS as exc:
        raise DataSchemaError(f"{path} is not a readable HDF5 file ({exc})") from None
    try:
        with handle:
            dataset = handle.get(name)
            if not isinstance(dataset, h5py.Dataset):
                raise DataSchemaError(f"{path} has no dataset '{name}' (found {list(handle.keys())[:10]})")
            if dataset.shape is None or dataset.dtype.kind not in "fiu":
                raise DataSchemaError(f"{path}: dataset '{name}' is not an array of numbers")
            elsewhere = storage_outside(dataset, handle.filename)
            if elsewhere is not None:
                raise DataSchemaError(f"{path}: the values of dataset '{name}' are stored in {elsewhere}; "
                                      "refusing to read them: write the file again with `ckkslab data`")
            yield dataset
    except DataSchemaError:
        raise
    except HDF5_ERRORS as exc:
        raise DataSchemaError(f"{path} is corrupted ({type(exc).__name__}: {exc}); write it again with "
                              "`ckkslab data`") from None


def save_splits(directory: str | Path, splits: Splits, record: dict[str, Any]) -> None:
    """Write every split with :func:`save_xy` and the record as ``preprocessing.json``."""
    for split in SPLITS:
        save_xy(directory, split, splits.x[split], splits.y[split])
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    (Path(directory) / "preprocessing.json").write_text(text)


def load_splits(directory: str | Path) -> tuple[Splits, dict[str, Any]]:
    """Read back what :func:`save_splits` wrote: every split and the ``preprocessing.json`` record.

    Raises:
        FileNotFoundError: a file is missing.
        DataSchemaError: a file cannot be read or is malformed (see :func:`load_xy`), the record is not a
            JSON object with a 'feature_scaling' object, or the splits have different numbers of features.
    """
    path = Path(directory) / "preprocessing.json"
    if not path.is_file():
        raise FileNotFoundError(f"no preprocessing.json in {directory} (write it with `ckkslab data`)")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DataSchemaError(f"cannot read {path}: {exc.strerror}") from None
    record = parse_json(text, str(path), DataSchemaError)
    if not isinstance(record, dict) or not isinstance(record.get("feature_scaling"), dict):
        raise DataSchemaError(f"{path} holds no 'feature_scaling' object: write it again with `ckkslab data`")
    xs, ys = {}, {}
    for split in SPLITS:
        xs[split], ys[split] = load_xy(directory, split)
    widths = {split: x.shape[1] for split, x in xs.items()}
    if len(set(widths.values())) > 1:
        raise DataSchemaError(f"{directory}: the splits have different numbers of features {widths}; "
                              "write them again with `ckkslab data`")
    return Splits(x=xs, y=ys, scaling=record["feature_scaling"], info=record.get("splits", {})), record
