"""``ckkslab compare`` on a tiny model written with h5py in tf-keras 2 layout: bad input gives one-line
errors, every engine sees the same records, the HElayers adapter agrees with plaintext, a model HElayers
cannot parse is named, and a missing pyhelayers only skips its engine."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nn.data import save_xy
from validation.cli import main
from validation.compare import (
    CompareError,
    CompareOptions,
    compare,
    load_inputs,
    open_store,
    parse_engines,
    run_helayers_engine,
)


@pytest.fixture(scope="module")
def tiny(tiny_model) -> Path:
    return tiny_model(64)


def _options(model: Path, out: Path, **kw) -> CompareOptions:
    args = dict(model_dir=model, data_dir=model, out=out, batch_size=16, batches=2, quiet=True)
    args.update(kw)
    return CompareOptions(**args)


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ckkslab compare: error: ")
    return err


def test_engine_names_are_parsed_in_canonical_order():
    assert parse_engines("helayers, PLAIN") == ("plain", "helayers")
    with pytest.raises(CompareError, match="unknown engine 'seal'"):
        parse_engines("plain,seal")
    with pytest.raises(CompareError, match="no engine"):
        parse_engines(" , ")


@pytest.mark.parametrize("extra, message", [
    (["--engines", "plain,gpu"], "unknown engine 'gpu'"),
    (["--batch-size", "0"], "must be positive"),
    (["--batches", "5"], "holds 64 records: not enough for 5 batch"),
    (["--threads", "0"], "threads must be an integer in [1, "),
    (["--threads", "999"], "threads must be an integer in [1, "),
])
def test_bad_options_give_one_line(capsys, tiny, tmp_path, extra, message):
    err = _cli_error(capsys, ["compare", "--model", str(tiny), "--batch-size", "16", "--out", str(tmp_path),
                              *extra])
    assert message in err


def test_bad_directories_give_one_line(capsys, tiny, tmp_path):
    err = _cli_error(capsys, ["compare", "--model", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert "model directory" in err and "does not exist" in err
    err = _cli_error(capsys, ["compare", "--model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "has no model.json" in err
    err = _cli_error(capsys, ["compare", "--model", str(tiny), "--data", str(tmp_path), "--out",
                              str(tmp_path / "o")])
    assert "no x_test.h5" in err


def test_data_of_another_width_is_refused(tiny, tmp_path):
    save_xy(tmp_path, "test", np.zeros((32, 5)), np.zeros((32, 1)))
    with pytest.raises(CompareError, match="5 features but the model takes 3"):
        load_inputs(_options(tiny, tmp_path / "out", data_dir=tmp_path))


def test_inputs_are_the_first_batches_and_calibration_prefers_the_model_data(tiny, tmp_path):
    other = tmp_path / "data"
    x = np.random.default_rng(4).uniform(-2.0, 2.0, (40, 3))
    save_xy(other, "test", x, np.ones((40, 1)))
    inputs = load_inputs(_options(tiny, tmp_path / "out", data_dir=other))
    assert np.array_equal(inputs.x, x[:32]) and inputs.records_available == 40
    assert inputs.calibration_x.shape == (64, 3) and str(tiny) in inputs.calibration_source


def test_missing_pyhelayers_skips_only_its_engine(tiny, tmp_path, monkeypatch):
    import reference.helayers_flow as flow
    from reference.errors import HelayersUnavailable

    def unavailable(*args, **kwargs):
        raise HelayersUnavailable("pyhelayers is not available (test)")

    monkeypatch.setattr(flow, "run_helayers", unavailable)
    comparison = compare(_options(tiny, tmp_path, engines=("plain", "helayers")))
    assert list(comparison.runs) == ["plain"]
    assert comparison.skipped == {"helayers": "pyhelayers is not available (test)"}


@pytest.mark.helayers
def test_helayers_adapter_agrees_with_plaintext(tiny, tmp_path):
    options = _options(tiny, tmp_path)
    inputs = load_inputs(options)
    run = run_helayers_engine(inputs, options, open_store("helayers", options, inputs))
    expected = inputs.network.forward(inputs.x)
    assert run.outputs.shape == expected.shape == (32, 1)
    assert np.max(np.abs(run.outputs - expected)) < 1e-4
    assert run.params["backend"] == "SEAL" and run.params["threads"] == 1 and run.params["batches"] == 2
    assert run.peak_rss_bytes > 0 and set(run.details["extra_timings_s"]) == {"compile", "serialize"}


@pytest.mark.helayers
def test_model_helayers_cannot_parse_is_named(tiny, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(tiny / "model.json", broken / "model.json")
    (broken / "model.h5").write_bytes(b"not an HDF5 file")
    inputs = load_inputs(_options(tiny, tmp_path))  # the plaintext network loads from the good copy
    options = _options(broken, tmp_path)
    with pytest.raises(CompareError, match=r"helayers engine: .*model\.h5.*--engines plain,ckkslab"):
        run_helayers_engine(inputs, options, open_store("helayers", options, inputs))


@pytest.mark.helayers
def test_compare_command_plain_and_helayers_end_to_end(capsys, tiny, tmp_path):
    out = tmp_path / "report"
    assert main(["compare", "--model", str(tiny), "--batch-size", "16", "--batches", "2",
                 "--engines", "plain,helayers", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "helayers vs plain" in printed and "decisions 32/32" in printed
    report = json.loads((out / "report.json").read_text())
    agreement = report["agreement"]["helayers_vs_plain"]
    assert agreement["decisions_equal"] == agreement["decisions_total"] == 32
    assert agreement["bits_min"] > 13
    assert report["engines"]["helayers"]["params"]["batch_size"] == 16
    assert (out / "errors.png").is_file() and (out / "roc.png").is_file()


def test_quiet_after_the_command_does_not_hide_the_global_one():
    from validation.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["compare", "--model", "m", "--quiet"]).quiet is True
    assert parser.parse_args(["--quiet", "compare", "--model", "m"]).quiet is True
    assert parser.parse_args(["demo"]).quiet is False


def test_demo_without_a_shipped_model_says_how_to_make_it(capsys, tmp_path, monkeypatch):
    import validation.commands.demo as demo

    monkeypatch.setattr(demo, "SHIPPED_MODELS", tmp_path)
    assert main(["demo", "--recipe", "paper", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ckkslab demo: error: no shipped model in")
    assert "ckkslab train --recipe paper" in err


def test_ckkslab_engine_agrees_with_plaintext(tiny, tmp_path):
    comparison = compare(_options(tiny, tmp_path, engines=("plain", "ckkslab"), frac_bits=20))
    plain, ours = comparison.runs["plain"], comparison.runs["ckkslab"]
    assert ours.outputs.shape == plain.outputs.shape == (32, 1)
    assert np.max(np.abs(ours.outputs - plain.outputs)) < 2.0**-12
    assert ours.params["batch_size"] == 16 and ours.params["calibration"].startswith(str(tiny))
    assert set(ours.details) == {"stage_seconds", "plan_text", "server_s", "servers"}
    assert ours.peak_rss_bytes > 0
    assert ours.details["servers"]["this process"]["batches"] == 2  # local: both batches in this process


@pytest.mark.helayers
def test_demo_quick_runs_the_three_engines(capsys, tiny, tmp_path, monkeypatch):
    import validation.commands.demo as demo

    shipped = tmp_path / "models"
    shutil.copytree(tiny, shipped / "clinical")
    monkeypatch.setattr(demo, "SHIPPED_MODELS", shipped)
    monkeypatch.setattr(demo, "QUICK_BATCH", 16)
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ckkslab vs plain" in printed and "helayers vs plain" in printed and "ckkslab/HElayers:" in printed
    report = json.loads((out / "clinical" / "report.json").read_text())
    assert set(report["engines"]) == {"plain", "ckkslab", "helayers"}
    assert report["batch_size"] == 16 and report["batches"] == 1 and report["encrypt_weights"] is False
    for pair in ("ckkslab_vs_plain", "helayers_vs_plain", "ckkslab_vs_helayers"):
        assert report["agreement"][pair]["decisions_equal"] == 16
    assert report["ratios"]["predict_ckkslab_over_helayers"] > 0


def test_every_batch_on_dask_with_metrics_over_all_and_agreement_per_batch(capsys, tiny, tmp_path):
    """``--batches all`` (64 records: 4 batches of 16) with ckkslab's server side on an embedded LocalCluster
    of 2 workers: metrics over the 64 records, one agreement row per batch, the scheduler named."""
    out = tmp_path / "out"
    assert main(["--quiet", "compare", "--model", str(tiny), "--batch-size", "16", "--batches", "all",
                 "--engines", "plain,ckkslab", "--frac-bits", "20", "--scheduler", "dask", "--workers", "2",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["batches"] == 4 and report["data"]["records_compared"] == 64
    assert report["engines"]["ckkslab"]["params"]["scheduler"].startswith("dask: 2 worker thread(s)")
    per_batch = report["per_batch_agreement"]
    assert [(e["batch"], e["first_record"], e["records"]) for e in per_batch] == [(0, 0, 16), (1, 16, 16),
                                                                                   (2, 32, 16), (3, 48, 16)]
    assert all(e["ckkslab_vs_plain"]["decisions_equal"] == 16 for e in per_batch)
    assert max(e["ckkslab_vs_plain"]["max_abs_error"] for e in per_batch) == pytest.approx(
        report["agreement"]["ckkslab_vs_plain"]["max_abs_error"])
    assert report["engines"]["ckkslab"]["metrics"] == report["engines"]["plain"]["metrics"]
    text = (out / "report.md").read_text()
    assert "## Agreement per batch" in text and "| 3 | 48-63 | 16/16, " in text
    assert re.search(r"\| predict \| [0-9.e-]+ \| [0-9.e-]+ \(client\) \|", text)  # the client's wait
    assert "its peak RSS covers block, this client process only (not the Dask workers)" in text
    servers = report["engines"]["ckkslab"]["servers"]  # measured on the workers themselves
    assert all(where.startswith("tcp://127.0.0.1:") for where in servers) and 1 <= len(servers) <= 2
    assert sum(e["batches"] for e in servers.values()) == 4 and all(e["peak_rss_bytes"] > 0 for e in
                                                                      servers.values())
    compute = report["engines"]["ckkslab"]["server_s"]["compute"]
    assert compute == pytest.approx(sum(e["compute_s"] for e in servers.values()))
    assert "ckkslab's workers computed for " in text and "per worker, for the batches its last run" in text


def test_batches_must_be_a_number_or_all(capsys, tiny, tmp_path):
    with pytest.raises(SystemExit):
        main(["compare", "--model", str(tiny), "--batches", "every", "--out", str(tmp_path)])
    assert "expected a number of batches or 'all', got 'every'" in capsys.readouterr().err
