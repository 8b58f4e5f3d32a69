"""Reading the diabetes table: a CSV file, or a zip holding one CSV, checked against the two known schemas.

Two schemas are recognised: the 17-column "comprehensive" table the paper uses (Choksi, Kaggle 2024; 14
features) and the 9-column "prediction" variant of the same records (8 features). Anything else is refused
with an error naming the missing and unexpected columns. Every feature and the label must be present,
numeric and finite, except gender and smoking_history whose values must be known category names (their
codes, used by ``nn.data.preprocess``, are given here).

A file is read as plain CSV whatever its suffix (``.gz``, ``.xz``, ``.tar``, ...: no decompression, whose
output the size cap could not bound); only ``.zip`` is opened as an archive, and its one CSV is refused if it
declares more than ``MAX_CSV_BYTES`` once unzipped. Every failure is a DataSchemaError naming the file.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from nn.errors import DataSchemaError

GENDER_CODES = {"Female": 0, "Male": 1, "Other": 2}
SMOKING_CODES = {"never": 0, "No Info": 1, "not current": 2, "ever": 2, "former": 2, "current": 3}
LABEL = "diabetes"

# Feature columns in model-input order; the label and the dropped columns complete each schema.
SCHEMA_FEATURES = {
    "comprehensive": (
        "year", "gender", "age", "race:AfricanAmerican", "race:Asian", "race:Caucasian", "race:Hispanic",
        "race:Other", "hypertension", "heart_disease", "smoking_history", "bmi", "hbA1c_level",
        "blood_glucose_level",
    ),
    "prediction": (
        "gender", "age", "hypertension", "heart_disease", "smoking_history", "bmi", "HbA1c_level",
        "blood_glucose_level",
    ),
}
SCHEMA_DROPPED = {"comprehensive": ("location",), "prediction": ()}
SCHEMA_OPTIONAL = {"comprehensive": ("clinical_notes",), "prediction": ()}

# The largest CSV read, plain or as declared by its zip entry (a zip bomb is refused before it is unzipped);
# the real table is 3.8 MB zipped.
MAX_CSV_BYTES = 1 << 30
# What a damaged CSV or zip raises: ValueError (pandas, UnicodeDecodeError), BadZipFile, zlib.error
# (deflate), OSError (bzip2, I/O), LZMAError (lzma), EOFError, NotImplementedError (unknown compression),
# RuntimeError (encrypted entry), MemoryError.
TABLE_ERRORS = (ValueError, zipfile.BadZipFile, zlib.error, OSError, lzma.LZMAError, EOFError,
                NotImplementedError, RuntimeError, MemoryError)


def load_table(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read a diabetes table (CSV, or a zip holding one CSV) and name its schema.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataSchemaError (naming ``path``): unreadable as CSV, too large, wrong columns, missing values or
            unknown category values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no table at {path}")
    try:
        table = _read_csv(path)
    except DataSchemaError:
        raise
    except TABLE_ERRORS as exc:
        raise DataSchemaError(f"{path} is not a readable CSV (or a zip with one CSV): {exc}") from None
    try:
        schema = detect_schema([str(c) for c in table.columns])
        check_values(table, schema)
    except DataSchemaError as exc:
        raise DataSchemaError(f"{path}: {exc}") from None
    return table, schema


def _read_csv(path: Path) -> pd.DataFrame:
    """The table in a CSV file, or in the only file of a ``.zip``; sizes checked before reading, nothing
    decompressed but the zip entry."""
    if path.suffix.lower() != ".zip":
        if path.stat().st_size > MAX_CSV_BYTES:
            raise DataSchemaError(f"{path} is larger than {MAX_CSV_BYTES >> 30} GiB: not a diabetes table")
        return pd.read_csv(path, compression=None)
    with zipfile.ZipFile(path) as archive:
        # Not ZipInfo.is_dir(): it raises IndexError on an entry with an empty name.
        entries = [entry for entry in archive.infolist() if not entry.filename.endswith("/")]
        if len(entries) != 1:
            raise DataSchemaError(f"{path} holds {len(entries)} files; it must hold exactly one CSV")
        if entries[0].file_size > MAX_CSV_BYTES:
            raise DataSchemaError(f"{path}: {entries[0].filename} declares {entries[0].file_size} bytes once "
                                  f"unzipped (more than {MAX_CSV_BYTES >> 30} GiB); refusing to unzip it")
        with archive.open(entries[0]) as csv:  # zipfile stops at the declared size
            return pd.read_csv(csv, compression=None)


def _required_columns(schema: str) -> set[str]:
    """The columns a table of ``schema`` must have: its features, its dropped columns and the label."""
    return set(SCHEMA_FEATURES[schema]) | set(SCHEMA_DROPPED[schema]) | {LABEL}


def detect_schema(columns: list[str]) -> str:
    """Name the schema ("comprehensive" or "prediction") whose columns ``columns`` are exactly.

    Raises:
        DataSchemaError: a column is repeated, or no schema matches; the message names the missing and
            unexpected columns relative to the closest schema.
    """
    present = set(columns)
    if len(present) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise DataSchemaError(f"duplicate columns: {dupes}")
    best: tuple[int, str, list[str], list[str]] | None = None
    for schema in SCHEMA_FEATURES:
        required = _required_columns(schema)
        missing = sorted(required - present)
        unexpected = sorted(present - required - set(SCHEMA_OPTIONAL[schema]))
        if not missing and not unexpected:
            return schema
        score = len(missing) + len(unexpected)
        if best is None or score < best[0]:
            best = (score, schema, missing, unexpected)
    _, schema, missing, unexpected = best
    raise DataSchemaError(
        f"the table matches no known schema; closest is '{schema}': missing columns {missing}, "
        f"unexpected columns {unexpected}"
    )


def check_values(table: pd.DataFrame, schema: str) -> None:
    """Every feature and the label present, numeric and finite (gender and smoking_history: known codes);
    the label 0 or 1.

    Raises:
        DataSchemaError: naming the first column that fails, and the first rows that do.
    """
    for column in (*SCHEMA_FEATURES[schema], LABEL):
        values = table[column]
        if values.isna().any():
            rows = np.flatnonzero(values.isna().to_numpy())[:5].tolist()
            raise DataSchemaError(f"column '{column}' has missing values (rows {rows})")
        codes = {"gender": GENDER_CODES, "smoking_history": SMOKING_CODES}.get(column)
        if codes is not None:
            unknown = sorted(set(values.astype(str)) - set(codes))
            if unknown:
                raise DataSchemaError(f"column '{column}' has unknown values {unknown[:5]}; "
                                      f"known: {list(codes)}")
        elif not pd.api.types.is_numeric_dtype(values):
            raise DataSchemaError(f"column '{column}' is not numeric (dtype {values.dtype})")
        elif not np.all(np.isfinite(values.to_numpy(dtype=np.float64))):
            rows = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=np.float64)))[:5].tolist()
            raise DataSchemaError(f"column '{column}' has infinite values (rows {rows}); replace them with "
                                  "measured values or drop those records")
    labels = set(np.unique(table[LABEL].to_numpy()).tolist())
    if not labels <= {0, 1}:
        raise DataSchemaError(f"column '{LABEL}' must hold 0 or 1, found {sorted(labels)[:5]}")
