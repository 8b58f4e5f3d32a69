"""The data pipeline: schema detection, the paper's coding on real rows, splits, scaling, HDF5 round trips."""

import bz2
import gzip
import io
import json
import lzma
import math
import re
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from nn.data import (
    DataSchemaError,
    apply_scaling,
    fit_scaling,
    load_splits,
    load_xy,
    make_splits,
    prepare,
    preprocess,
    save_splits,
    save_xy,
)
from nn.table import load_table

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "diabetes_dataset.csv.zip"

# Real rows of the shipped table (index: raw values as in the CSV, location dropped).
REAL_ROWS = {
    0: "2020,Female,32.0,0,0,0,0,1,0,0,never,27.32,5.0,100,0",
    6: "2015,Female,49.0,0,0,1,0,0,0,0,current,24.34,5.7,80,0",
    29: "2016,Male,80.0,1,0,0,0,0,0,0,former,29.16,8.8,140,1",
    7: "2016,Female,15.0,0,0,0,0,1,0,0,No Info,20.98,5.0,155,0",
    14: "2016,Female,64.0,0,0,0,0,1,0,0,ever,49.27,8.2,140,1",
    5: "2016,Male,66.0,0,0,1,0,0,0,0,not current,27.32,5.7,159,0",
    1611: "2019,Other,23.0,0,1,0,0,0,0,0,No Info,24.23,6.1,140,0",
}
# The same rows coded by hand: gender F=0 M=1 O=2; smoking never 0, No Info 1, not current/ever/former 2,
# current 3; then the label.
CODED = {
    0: ([2020, 0, 32, 0, 0, 0, 0, 1, 0, 0, 0, 27.32, 5.0, 100], 0),
    6: ([2015, 0, 49, 0, 0, 1, 0, 0, 0, 0, 3, 24.34, 5.7, 80], 0),
    29: ([2016, 1, 80, 1, 0, 0, 0, 0, 0, 0, 2, 29.16, 8.8, 140], 1),
    7: ([2016, 0, 15, 0, 0, 0, 0, 1, 0, 0, 1, 20.98, 5.0, 155], 0),
    14: ([2016, 0, 64, 0, 0, 0, 0, 1, 0, 0, 2, 49.27, 8.2, 140], 1),
    5: ([2016, 1, 66, 0, 0, 1, 0, 0, 0, 0, 2, 27.32, 5.7, 159], 0),
    1611: ([2019, 2, 23, 0, 1, 0, 0, 0, 0, 0, 1, 24.23, 6.1, 140], 0),
}
PREDICTION_CSV = (
    "gender,age,hypertension,heart_disease,smoking_history,bmi,HbA1c_level,blood_glucose_level,diabetes\r\n"
    "Female,80.0,0,1,never,25.19,6.6,140,0\r\n"
    "Male,28.0,0,0,current,27.32,5.7,158,1\r\n"
)


@pytest.fixture(scope="module")
def real_table():
    return load_table(SHIPPED)


def test_real_table_is_the_comprehensive_schema(real_table):
    table, schema = real_table
    assert schema == "comprehensive"
    assert len(table) == 100_000 and int(table["diabetes"].sum()) == 8_500


def test_real_rows_coded_as_the_paper(real_table):
    table, schema = real_table
    rows = table.loc[list(REAL_ROWS)]
    text = rows.drop(columns=["location", "clinical_notes"]).to_csv(header=False, index=False).splitlines()
    assert text == list(REAL_ROWS.values())  # the fixture rows are what the file holds
    x, y, names = preprocess(rows, schema)
    assert len(names) == 14 and names[0] == "year" and names[-1] == "blood_glucose_level"
    for i, index in enumerate(REAL_ROWS):
        features, label = CODED[index]
        np.testing.assert_array_equal(x[i], features)
        assert y[i, 0] == label
    # sklearn's normalize: each record divided by its Euclidean norm
    paper = apply_scaling(x, {"method": "l2_rows"})
    for i, index in enumerate(REAL_ROWS):
        features = CODED[index][0]
        norm = math.sqrt(sum(v * v for v in features))
        np.testing.assert_allclose(paper[i], [v / norm for v in features], rtol=1e-15, atol=0)


def test_prediction_variant_detected_with_crlf(tmp_path):
    path = tmp_path / "prediction.csv"
    path.write_bytes(PREDICTION_CSV.encode())
    table, schema = load_table(path)
    assert schema == "prediction"
    x, y, names = preprocess(table, schema)
    assert names == ("gender", "age", "hypertension", "heart_disease", "smoking_history", "bmi",
                     "HbA1c_level", "blood_glucose_level")
    np.testing.assert_array_equal(x, [[0, 80.0, 0, 1, 0, 25.19, 6.6, 140],
                                      [1, 28.0, 0, 0, 3, 27.32, 5.7, 158]])
    np.testing.assert_array_equal(y, [[0], [1]])


def test_wrong_column_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(PREDICTION_CSV.replace("blood_glucose_level", "glucose"))
    with pytest.raises(DataSchemaError, match=r"bad\.csv: the table matches no known schema.*missing columns "
                                              r"\['blood_glucose_level'\].*unexpected columns \['glucose'\]"):
        load_table(path)


def test_unknown_category_and_missing_value_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(PREDICTION_CSV.replace("current", "sometimes"))
    with pytest.raises(DataSchemaError, match=r"bad\.csv: column 'smoking_history'.*sometimes"):
        load_table(path)
    path.write_text(PREDICTION_CSV.replace("25.19", ""))
    with pytest.raises(DataSchemaError, match=r"bad\.csv: column 'bmi' has missing values"):
        load_table(path)


def test_not_a_table_refused(tmp_path):
    path = tmp_path / "noise.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataSchemaError):
        load_table(path)
    with pytest.raises(FileNotFoundError):
        load_table(tmp_path / "absent.csv")


def tar_holding(data: bytes) -> bytes:
    """A tar archive holding ``data`` as t.csv."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        entry = tarfile.TarInfo("t.csv")
        entry.size = len(data)
        archive.addfile(entry, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(("name", "pack"), [
    pytest.param("t.csv.gz", gzip.compress, id="gzip"),
    pytest.param("t.csv.bz2", bz2.compress, id="bzip2"),
    pytest.param("t.csv.xz", lzma.compress, id="xz"),
    pytest.param("t.tar", tar_holding, id="tar"),
    pytest.param("t.csv.zst", lambda data: b"\x28\xb5\x2f\xfd" + data, id="zstandard-magic"),
])
def test_only_a_zip_is_unpacked(name, pack, tmp_path):
    """A valid table packed otherwise than in a zip is read as the plain CSV it is not, and refused naming the
    file: nothing is decompressed past the size cap (MAX_CSV_BYTES), no decompressor's own error escapes."""
    path = tmp_path / name
    path.write_bytes(pack(PREDICTION_CSV.encode()))
    with pytest.raises(DataSchemaError, match=re.escape(str(path))):
        load_table(path)


def test_splits_sizes_replication_and_disjointness():
    n = 20_000
    ids = np.arange(n, dtype=np.float64)
    y = (ids % 10 == 0).astype(np.float64).reshape(-1, 1)  # 10 % positives
    x = np.column_stack([ids, ids % 7])
    splits = make_splits(x, y, scaling="minmax", seed=3, test_multiple=1024, train_multiple=32)
    lo, hi = splits.scaling["feature_min"][0], splits.scaling["feature_max"][0]
    back = {k: np.rint(v[:, 0] * (hi - lo) + lo).astype(int) for k, v in splits.x.items()}
    assert len(splits.x["test"]) == 6 * 1024  # 6600 test rows truncated to a multiple of 1024
    assert len(splits.x["train"]) % 32 == 0 and len(splits.x["val"]) % 32 == 0
    assert not set(back["test"]) & set(back["train"]) and not set(back["val"]) & set(back["train"])
    for split in ("train", "val", "test"):  # labels follow their records
        np.testing.assert_array_equal(splits.y[split][:, 0], back[split] % 10 == 0)
    positives = back["train"][splits.y["train"][:, 0] == 1]
    counts = np.bincount(positives)[np.unique(positives)]
    factor = splits.info["minority_replication"]
    assert factor in (8, 9, 10) and set(counts.tolist()) <= {factor - 1, factor}  # truncation may cut one
    assert np.mean(counts == factor) > 0.95
    assert 0.45 < splits.y["train"].mean() < 0.55  # about balanced after replication
    assert np.unique(back["test"]).size == back["test"].size  # test rows are never replicated


def test_too_small_test_split_refused():
    x = np.ones((100, 2))
    y = (np.arange(100) % 2).reshape(-1, 1).astype(float)
    with pytest.raises(DataSchemaError, match="fewer than one batch"):
        make_splits(x, y, test_multiple=4096)


def test_minmax_scaling_by_hand():
    scaling = fit_scaling("minmax", np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(apply_scaling(np.array([[2.0, 5.0], [4.0, 6.0]]), scaling),
                                  [[0.5, 0.0], [1.5, 1.0]])  # constant feature: divided by 1
    with pytest.raises(DataSchemaError):
        apply_scaling(np.ones((1, 3)), scaling)
    with pytest.raises(DataSchemaError, match="the features to scale are complex numbers"):
        apply_scaling(np.array([[2.0, 5.0 + 1j]]), scaling)


def test_complex_records_are_refused_on_the_way_in_and_out(tmp_path):
    """save_xy refuses complex x or y by name (astype(float64) would keep the real parts); an x_test.h5
    holding complex values (written by hand) is refused by load_xy: its dtype is not a real number type."""
    with pytest.raises(DataSchemaError, match="the values of x_test are complex numbers"):
        save_xy(tmp_path, "test", np.zeros((4, 2)) + 1j, np.zeros((4, 1)))
    with pytest.raises(DataSchemaError, match="the values of y_train are complex numbers"):
        save_xy(tmp_path, "train", np.zeros((4, 2)), np.zeros((4, 1), dtype=np.complex64))
    save_xy(tmp_path, "test", np.zeros((4, 2)), np.zeros((4, 1)))
    with h5py.File(tmp_path / "x_test.h5", "w") as handle:
        handle["x_test"] = np.full((4, 2), 1 + 2j)
    with pytest.raises(DataSchemaError, match="dataset 'x_test' is not an array of numbers"):
        load_xy(tmp_path)


def test_save_load_round_trip_is_byte_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)), rng.integers(0, 2, size=(64, 1)).astype(float)
    save_xy(tmp_path / "a", "test", x, y)
    save_xy(tmp_path / "b", "test", x, y)
    for name in ("x_test.h5", "y_test.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    x2, y2 = load_xy(tmp_path / "a")
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    with h5py.File(tmp_path / "a" / "x_test.h5") as handle:  # the layout HElayers' utilities read
        assert list(handle.keys()) == ["x_test"]


def test_bad_xy_files_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="x_test.h5"):
        load_xy(tmp_path)
    with h5py.File(tmp_path / "x_test.h5", "w") as handle:
        handle["wrong"] = np.zeros((4, 2))
    with h5py.File(tmp_path / "y_test.h5", "w") as handle:
        handle["y_test"] = np.zeros(4)
    with pytest.raises(DataSchemaError, match="no dataset 'x_test'"):
        load_xy(tmp_path)
    with pytest.raises(DataSchemaError):
        save_xy(tmp_path, "test", np.zeros((4, 2)), np.zeros((3, 1)))


def test_prepare_is_deterministic_and_round_trips(tmp_path):
    table = pd.read_csv(SHIPPED, nrows=15_000).drop(columns=["clinical_notes"])
    csv = tmp_path / "small.csv"
    table.to_csv(csv, index=False)
    first, record = prepare(csv, "clinical", test_multiple=1024)
    second, _ = prepare(csv, "clinical", test_multiple=1024)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first.x[split], second.x[split])
    save_splits(tmp_path / "out", first, record)
    loaded, loaded_record = load_splits(tmp_path / "out")
    assert loaded_record == record
    np.testing.assert_array_equal(loaded.x["val"], first.x["val"])
    with pytest.raises(DataSchemaError, match="unknown recipe"):
        prepare(csv, "fancy")


def test_xy_values_stored_outside_the_file_refused(tmp_path):
    """An x_test.h5 whose dataset keeps its raw data in another local file would read that file as records."""
    save_xy(tmp_path, "test", np.zeros((4, 2)), np.zeros((4, 1)))
    other = tmp_path / "other.bin"
    np.arange(8, dtype="<f8").tofile(other)
    (tmp_path / "x_test.h5").unlink()
    with h5py.File(tmp_path / "x_test.h5", "w") as handle:
        handle.create_dataset("x_test", shape=(4, 2), dtype="<f8", external=[(str(other), 0, 64)])
    with pytest.raises(DataSchemaError, match=r"x_test\.h5: the values of dataset 'x_test' are stored in "
                                              r"external files \['.*other\.bin'\]; refusing"):
        load_xy(tmp_path)


def write_splits(directory: Path, widths: tuple[int, int, int]) -> None:
    """x/y files of 4 records for train, val and test with ``widths`` features, and a preprocessing.json."""
    for split, width in zip(("train", "val", "test"), widths, strict=True):
        save_xy(directory, split, np.zeros((4, width)), np.zeros((4, 1)))
    (directory / "preprocessing.json").write_text(json.dumps({"feature_scaling": {"method": "l2_rows"}}))


def test_splits_with_different_feature_counts_refused(tmp_path):
    write_splits(tmp_path, (14, 14, 3))
    with pytest.raises(DataSchemaError, match=r"the splits have different numbers of features "
                                              r"\{'train': 14, 'val': 14, 'test': 3\}"):
        load_splits(tmp_path)


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux's /proc/self/mem")
def test_unreadable_preprocessing_json_refused(tmp_path):
    """/proc/self/mem is a regular file whose first page no process can read (EIO), root included."""
    write_splits(tmp_path, (3, 3, 3))
    (tmp_path / "preprocessing.json").unlink()
    (tmp_path / "preprocessing.json").symlink_to("/proc/self/mem")
    with pytest.raises(DataSchemaError, match=r"cannot read .*preprocessing\.json: Input/output error"):
        load_splits(tmp_path)
