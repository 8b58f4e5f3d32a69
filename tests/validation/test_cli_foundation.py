"""The foundation commands: ``ckkslab data``, ``train`` and ``evaluate``."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from validation.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CSV = ROOT / "data" / "diabetes_dataset.csv.zip"
MODELS = ROOT / "models"


@pytest.mark.parametrize("command", ["data", "train", "evaluate"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in {"data": ["--csv", "--out", "--recipe", "--seed", "--test-batch"],
                   "train": ["--recipe", "--out", "--data", "--epochs"],
                   "evaluate": ["--model", "--data", "--json"]}[command]:
        assert option in text


@pytest.mark.slow
def test_data_is_byte_reproducible_and_rebuilds_the_shipped_batches(tmp_path):
    for run in ("a", "b"):
        assert main(["--quiet", "data", "--recipe", "clinical", "--out", str(tmp_path / run)]) == 0
    for name in ("x_train.h5", "y_train.h5", "x_val.h5", "y_val.h5", "x_test.h5", "y_test.h5",
                 "preprocessing.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ("x_test.h5", "y_test.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (MODELS / "clinical" / name).read_bytes(), name


def test_wrong_column_gives_one_line_error(tmp_path, capsys):
    table = pd.read_csv(SHIPPED_CSV, nrows=50).rename(columns={"bmi": "body_mass"})
    table.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["--quiet", "data", "--csv", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "['bmi']" in err and "['body_mass']" in err


def test_evaluate_prints_and_writes_metrics(tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(MODELS / "clinical"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("accuracy", "AUC", "precision", "recall", "confusion matrix", "max |value| per layer"):
        assert word in text
    metrics = json.loads(out.read_text())
    with h5py.File(MODELS / "clinical" / "y_test.h5") as handle:
        labels = np.asarray(handle["y_test"]).reshape(-1)
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    assert [tn + fp, fn + tp] == [int((labels == 0).sum()), int((labels == 1).sum())]
    assert metrics["accuracy"] == pytest.approx((tn + tp) / labels.size)
    assert metrics["recall_1"] == pytest.approx(tp / (tp + fn))
    assert metrics["precision_1"] == pytest.approx(tp / (tp + fp))
    assert set(metrics["max_abs_per_layer"]) >= {"input", "dense"}


def test_evaluate_refuses_data_scaled_for_another_recipe(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("x_test.h5", "y_test.h5"):
        shutil.copy(MODELS / "clinical" / name, data / name)
    (data / "preprocessing.json").write_text(json.dumps({"feature_scaling": {"method": "l2_rows"}}))
    assert main(["evaluate", "--model", str(MODELS / "clinical"), "--data", str(data)]) == 2
    assert "l2_rows" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path / "absent")]) == 2
    assert "no model.json" in capsys.readouterr().err


@pytest.mark.tensorflow
def test_train_from_preprocessed_data(tmp_path, capsys):
    pytest.importorskip("tf_keras")
    csv = tmp_path / "small.csv"
    pd.read_csv(SHIPPED_CSV, nrows=12_000).to_csv(csv, index=False)
    data = tmp_path / "data"
    assert main(["--quiet", "data", "--csv", str(csv), "--recipe", "clinical", "--test-batch", "1024",
                 "--out", str(data)]) == 0
    model = tmp_path / "model"
    assert main(["--quiet", "train", "--recipe", "clinical", "--data", str(data), "--epochs", "1",
                 "--max-train-rows", "2000", "--out", str(model)]) == 0
    assert {p.name for p in model.iterdir()} == {"model.json", "model.h5", "x_test.h5", "y_test.h5",
                                                 "ckkslab.json"}
    assert (model / "x_test.h5").read_bytes() == (data / "x_test.h5").read_bytes()
    assert main(["evaluate", "--model", str(model)]) == 0
    assert main(["--quiet", "train", "--recipe", "paper", "--data", str(data), "--out", str(model)]) == 2
    assert "preprocessed for recipe 'clinical'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "starts"), [
    (["compare", "--model", "m", "--scheduler", "dask"], True),            # an embedded LocalCluster
    (["compare", "--model", "m", "--scheduler", "dask", "--scheduler-address", "tcp://h:8786"], False),
    (["compare", "--model", "m"], False),
    (["predict", "--workspace", "w", "--scheduler", "dask"], True),
    (["bench", "batches", "--model", "m"], True),
    (["bench", "inference", "--model", "m"], False),
])
def test_commands_that_start_dask_workers_here_are_told_apart(argv, starts):
    """Those get the short kernel-thread spin (ckks.threads.spin_briefly_before_sleeping) before any kernel:
    their workers need this machine's cores while the client encrypts."""
    from validation.cli import _starts_dask_workers_here, build_parser

    assert _starts_dask_workers_here(build_parser().parse_args(argv)) is starts
