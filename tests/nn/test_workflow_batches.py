"""Every batch of a data set through the file workflow: one file per batch, predictions written whole and
resumed after Ctrl-C, and a merge that holds each record id exactly once or says which batch is wrong."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nn import artifacts, workflow
from nn.model import PlainNetwork
from nn.streaming import RecordProgress, check_each_once

BATCH = 8


@pytest.fixture(scope="module")
def network(toy_network) -> PlainNetwork:
    return toy_network(3, 2, 31)


def encrypted(path: Path, network: PlainNetwork, records: int) -> tuple[Path, np.ndarray]:
    """Toy keys (N = 64, insecure by name), plain weights encoded by the server, and every batch encrypted."""
    x = np.random.default_rng(records).uniform(-1, 1, (records, 3))
    workflow.keygen(path, network, x, batch_size=BATCH, frac_bits=20, security=None, ring_degree=64)
    workflow.encode_model(path, network)
    workflow.encrypt_batches(path, x, BATCH)
    return path, x


def test_every_batch_is_predicted_and_merged_by_record_id(tmp_path, network):
    """37 records: 5 batches, the last of 5 records; scores.csv lists ids 0..36 once, next to the scores."""
    w, x = encrypted(tmp_path, network, 37)
    manifest = json.loads((w / "client" / "batches.json").read_text())
    assert [(b["first_record"], b["records"]) for b in manifest["batches"]] == [(0, 8), (8, 8), (16, 8),
                                                                                (24, 8), (32, 5)]
    report = workflow.predict_batches(w)
    assert report.computed == [0, 1, 2, 3, 4] and not report.skipped and not report.failed
    ids, scores, path = workflow.decrypt_batches(w, network)
    np.testing.assert_array_equal(ids, np.arange(37))
    assert np.max(np.abs(scores - network.forward(x))) < 2.0**-12
    assert path.read_text().splitlines()[0] == "record_id,score_0,probability,decision"
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], np.arange(37))
    np.testing.assert_array_equal(table[:, 3], network.decide(network.forward(x))[1])


def test_ctrl_c_leaves_only_whole_files_and_a_rerun_resumes(tmp_path, network):
    """SIGINT to a real ``ckkslab predict`` once its first prediction is written: it exits 130, every file
    left loads, no temporary file stays; the next run predicts only the rest."""
    w, x = encrypted(tmp_path, network, 60 * BATCH)
    predictions = w / "server" / "predictions"
    process = subprocess.Popen([sys.executable, "-m", "validation.cli", "--quiet", "predict", "--workspace",
                                str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(predictions.glob("batch_*.ckks")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert (f"ckkslab predict: interrupted; the predictions finished so far are kept in {w}: rerun the same "
            "command to resume") in err, err
    left = sorted(predictions.iterdir())
    assert all(workflow.BATCH_FILE.fullmatch(p.name) for p in left), [p.name for p in left]  # no temp file
    assert 1 <= len(left) < 60
    params = workflow.load_plan(w).params
    for path in left:
        artifacts.ciphertexts_with_info(path.read_bytes(), params)
    done = sorted(int(p.stem.split("_")[1]) for p in left)
    report = workflow.predict_batches(w)
    assert sorted(report.skipped) == done and sorted(report.computed + done) == list(range(60))
    ids, scores, _ = workflow.decrypt_batches(w, network)
    np.testing.assert_array_equal(ids, np.arange(60 * BATCH))
    assert np.max(np.abs(scores - network.forward(x))) < 2.0**-12


def test_a_prediction_of_another_batch_is_refused_then_recomputed(tmp_path, network):
    """batch 1's predictions copied over batch 2's: decrypt names batch 2 (records 8-15 would be counted
    twice); predict sees they are not of batch 2's data and computes batch 2 again."""
    w, _ = encrypted(tmp_path, network, 32)
    workflow.predict_batches(w)
    folder = w / "server" / "predictions"
    (folder / workflow.batch_file(2)).write_bytes((folder / workflow.batch_file(1)).read_bytes())
    with pytest.raises(workflow.WorkflowError, match="is not the prediction of batch 2 as the client"):
        workflow.decrypt_batches(w, network)
    report = workflow.predict_batches(w)
    assert report.computed == [2] and sorted(report.skipped) == [0, 1, 3]
    ids, _, _ = workflow.decrypt_batches(w, network)
    np.testing.assert_array_equal(ids, np.arange(32))


def test_predictions_the_client_did_not_ask_for_are_refused(tmp_path, network):
    w, _ = encrypted(tmp_path, network, 16)
    workflow.predict_batches(w)
    folder = w / "server" / "predictions"
    (folder / workflow.batch_file(7)).write_bytes((folder / workflow.batch_file(1)).read_bytes())
    with pytest.raises(workflow.WorkflowError, match=r"batch\(es\) \[7\] that .* does not list"):
        workflow.decrypt_batches(w, network)


@pytest.mark.parametrize(("ids", "message"), [
    ([0, 1, 1, 3], r"present twice \[1\], missing \[2\], beyond the 4 records \[\]"),
    ([0, 5], r"present twice \[\], missing \[1\], beyond the 2 records \[5\]"),
    ([0, -1], r"negative record ids \[-1\]"),
])
def test_merged_ids_must_each_be_present_once(ids, message):
    with pytest.raises(workflow.WorkflowError, match=message):
        check_each_once(np.array(ids), "the merged predictions")
    check_each_once(np.array([2, 0, 1]), "the merged predictions")  # any order


def test_encrypting_more_batches_than_the_data_holds_is_refused(tmp_path, network):
    w, x = encrypted(tmp_path, network, 16)
    with pytest.raises(workflow.WorkflowError, match=r"3 batches of 8 need 24 records, the data has 16 \(2 "):
        workflow.encrypt_batches(w, x, BATCH, 3)
    with pytest.raises(workflow.WorkflowError, match="must be positive, got 8 and 0"):
        workflow.encrypt_batches(w, x, BATCH, 0)


def test_one_batch_encryption_replaces_the_batch_files(tmp_path, network):
    w, x = encrypted(tmp_path, network, 16)
    workflow.predict_batches(w)
    assert workflow.uses_batches(w)
    workflow.encrypt_data(w, x[:BATCH])
    assert not workflow.uses_batches(w) and not list((w / "server" / "predictions").iterdir())
    workflow.predict(w)
    scores, _ = workflow.decrypt(w, network)
    assert scores.shape == (BATCH, 1)


def test_progress_shows_records_per_second_and_time_left(capsys):
    with RecordProgress("predicting batches", 4, 400, enabled=True) as bar:
        bar.skip(100)
        time.sleep(0.05)
        bar.advance(100)
    err = capsys.readouterr().err
    last = err.strip().split("\r")[-1]
    assert last.startswith("predicting batches (") and "records/s, ETA" in last and ": 2/4 (" in last


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, so that the progress line is drawn into it."""

    def isatty(self) -> bool:
        return True


def test_records_per_second_leave_out_the_start_of_a_dask_cluster(tmp_path, network, monkeypatch):
    """predict_batches on an embedded LocalCluster (a start of seconds, then 5 toy batches of 8 records in a
    fraction of one): the rate on the progress line counts from the cluster's readiness, so the time it
    implies (40 records / rate) is well under the call's wall time, most of which is the start."""
    from nn.distributed import SchedulerOptions

    w, _ = encrypted(tmp_path, network, 5 * BATCH)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    start = time.perf_counter()
    report = workflow.predict_batches(w, SchedulerOptions("dask", workers=1), quiet=False)
    wall = time.perf_counter() - start
    assert sorted(report.computed) == list(range(5))
    last = terminal.getvalue().strip().split("\r")[-1]
    rate = float(re.search(r"\(([0-9.]+) records/s", last).group(1))
    assert 5 * BATCH / rate < 0.5 * wall, (last, wall)


def test_complex_records_are_refused_before_any_batch_is_written(tmp_path, network):
    """encrypt_batches converts to float64: complex records must be refused first, not lose their imaginary
    parts with only numpy's ComplexWarning."""
    import ckks

    w, x = encrypted(tmp_path, network, 2 * BATCH)
    before = sorted(p.name for p in (w / "server").rglob("*"))
    with pytest.raises(ckks.ValueRangeError, match="encrypt_batches: the records are complex numbers"):
        workflow.encrypt_batches(w, x + 0.5j, BATCH)
    assert sorted(p.name for p in (w / "server").rglob("*")) == before
