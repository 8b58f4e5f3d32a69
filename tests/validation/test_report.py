"""report.json schema and report.md tables, from crafted engine runs whose metrics and agreement are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ckks import KernelCompilation
from ckks.instrument import NumbaActivity
from ckks.warmup import target_cpu
from nn.model import SQUARE, Decision, Dense, PlainNetwork, Polynomial
from validation.compare import STAGES, CompareOptions, Comparison, EngineRun, Inputs
from validation.report import build_report, ratios, save_comparison
from validation.report_text import render_markdown, summary_text

# y = (x0 - x1)^2, decided 1 when y > 0.5
NETWORK = PlainNetwork([Dense(np.array([[1.0], [-1.0]]), np.zeros(1), "d"), Polynomial(SQUARE, "sq")], 2,
                       Decision("probability", 0.5))
X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.5, 0.0]])
Y = np.array([[0.0], [1.0], [1.0], [1.0]])  # plain outputs 0, 1, 4, 0.25 -> decisions 0, 1, 1, 0


def _run(name: str, outputs: np.ndarray, seconds: float) -> EngineRun:
    return EngineRun(name, outputs, {"backend": name}, dict.fromkeys(STAGES, seconds),
                     {"context": 100, "data": 10}, 2**20, {}, cpu_s=3 * seconds)


def _comparison(tmp_path: Path, helayers: bool = True) -> Comparison:
    plain = NETWORK.forward(X)
    runs = {"plain": _run("plain", plain, 0.0),
            "ckkslab": _run("ckkslab", plain + np.array([[2**-20], [0.0], [0.0], [-2**-18]]), 2.0)}
    skipped = {}
    if helayers:
        runs["helayers"] = _run("helayers", plain + np.array([[0.0], [0.0], [0.0], [0.5]]), 1.0)  # flips #3
    else:
        skipped["helayers"] = "pyhelayers is not available"
    options = CompareOptions(model_dir=Path("tiny"), data_dir=Path("tiny"), out=tmp_path / "out",
                             batch_size=2, batches=2)
    inputs = Inputs(NETWORK, X, Y, 6, X, "crafted")
    return Comparison(options, inputs, runs, skipped)


def test_report_schema_and_known_values(tmp_path):
    report = build_report(_comparison(tmp_path))
    assert {"batch_size", "batches", "model", "threads", "engines", "agreement", "ratios"} <= set(report)
    assert (report["batch_size"], report["batches"], report["threads"]) == (2, 2, 1)
    assert report["model"]["layers"] == ["d: Dense 2 -> 1", "sq: x^2"]
    for name in ("plain", "ckkslab", "helayers"):
        entry = report["engines"][name]
        assert {"params", "timings_s", "sizes_bytes", "peak_rss_bytes", "metrics"} <= set(entry)
        assert set(entry["timings_s"]) == set(STAGES)
        metrics = {"accuracy", "auc", "precision_1", "recall_1", "f1_1", "confusion_matrix"}
        assert metrics <= set(entry["metrics"])
    plain = report["engines"]["plain"]["metrics"]
    assert plain["accuracy"] == 0.75 and plain["confusion_matrix"] == [[1, 0], [1, 2]]
    assert plain["recall_1"] == pytest.approx(2 / 3) and plain["precision_1"] == 1.0
    assert report["engines"]["helayers"]["metrics"]["accuracy"] == 1.0  # its flip fixes the false negative
    assert set(report["agreement"]) == {"ckkslab_vs_plain", "helayers_vs_plain", "ckkslab_vs_helayers"}
    ck = report["agreement"]["ckkslab_vs_plain"]
    assert (ck["max_abs_error"], ck["bits_min"]) == (2**-18, 18.0)
    assert ck["mean_abs_error"] == pytest.approx((2**-20 + 2**-18) / 4)
    assert (ck["decisions_equal"], ck["decisions_total"]) == (4, 4)
    he = report["agreement"]["helayers_vs_plain"]
    assert (he["bits_min"], he["decisions_equal"], he["decisions_differ_at"]) == (1.0, 3, [3])
    assert set(report["ratios"]) == {f"{s}_ckkslab_over_helayers" for s in (*STAGES, "total", "cpu_total")}
    assert all(r == 2.0 for r in report["ratios"].values())


def test_ratios_need_both_engines_and_a_nonzero_helayers_time():
    runs = {"ckkslab": _run("ckkslab", np.zeros((1, 1)), 3.0),
            "helayers": _run("helayers", np.zeros((1, 1)), 0.0)}
    assert all(r is None for r in ratios(runs).values())
    runs["helayers"].timings_s["predict"] = 1.5
    assert ratios(runs)["predict_ckkslab_over_helayers"] == 2.0
    assert ratios({"ckkslab": runs["ckkslab"]}) == {}


def test_files_are_written_and_json_is_strict(tmp_path):
    comparison = _comparison(tmp_path)
    report = save_comparison(comparison)
    out = comparison.options.out
    assert {"report.json", "report.md", "outputs.npz", "errors.png", "timings.png", "roc.png"} <= {
        p.name for p in out.iterdir()}
    assert report["plots"] == ["errors.png", "timings.png", "roc.png"]
    loaded = json.loads((out / "report.json").read_text())  # allow_nan=False when written: strict JSON
    assert loaded["agreement"]["helayers_vs_plain"]["decisions_equal"] == 3
    saved = np.load(out / "outputs.npz")
    assert np.array_equal(saved["plain"], NETWORK.forward(X)) and np.array_equal(saved["labels"], Y)
    md = (out / "report.md").read_text()
    assert "| helayers vs plain | 3/4 |" in md
    assert "| ckkslab vs plain | 4/4 | 3.81e-06 |" in md
    assert "| total | 0 | 10.0 | 5 | 2.00x |" in md
    assert "| CPU, whole call | 0 | 6 | 3 | 2.00x |" in md
    text = summary_text(report, out)
    assert "ckkslab vs plain" in text and "decisions 4/4" in text and "(2.00x)" in text


def test_skipped_engine_is_reported(tmp_path):
    report = build_report(_comparison(tmp_path, helayers=False))
    assert report["skipped"] == {"helayers": "pyhelayers is not available"}
    assert set(report["agreement"]) == {"ckkslab_vs_plain"} and report["ratios"] == {}
    out = tmp_path / "md"
    save = save_comparison(_comparison(out, helayers=False))
    md = (out / "out" / "report.md").read_text()
    assert "**helayers skipped:** pyhelayers is not available" in md
    # the CPU the kernels ran on, whose vector unit the timings depend on
    assert report["host"]["cpu"] == target_cpu() and f"CPUs ({target_cpu()})" in md
    assert "helayers skipped" in summary_text(save, out)


@pytest.mark.parametrize("in_stage_calls", [0, 3])
def test_compile_kernels_row_and_the_warning_for_a_compile_inside_a_stage(tmp_path, in_stage_calls):
    comparison = _comparison(tmp_path)
    comparison.kernels = KernelCompilation(seconds=7.5, numba_seconds=7.4, compiled=26, first_calls=18)
    comparison.numba_in_stages = NumbaActivity(seconds=0.5 * in_stage_calls, first_calls=in_stage_calls,
                                               compiled=in_stage_calls)
    report = build_report(comparison)
    assert report["compile_kernels"]["seconds"] == 7.5 and report["compile_kernels"]["compiled"] == 26
    assert report["numba_in_stages"]["first_calls"] == in_stage_calls
    assert sum(report["engines"]["ckkslab"]["timings_s"].values()) == report["engines"]["ckkslab"]["total_s"]
    md = render_markdown(report)
    assert "| compile kernels | - | 7.5 | - | - |" in md  # ckkslab's column only, no ratio
    assert "| total | 0 | 10.0 | 5 | 2.00x |" in md  # not added to the stages' total
    text = summary_text(report, tmp_path)
    assert "compile kernels (ckkslab, once per process, before the first stage" in text
    assert "7.50 s: 26 signatures compiled" in text
    warned = ["WARNING: Numba made 3 kernels ready inside the timed stages" in t for t in (md, text)]
    assert warned == [bool(in_stage_calls)] * 2


def test_no_compile_row_when_ckkslab_did_not_run(tmp_path):
    md = render_markdown(build_report(_comparison(tmp_path)))
    assert "compile kernels" not in md and "WARNING" not in md


def test_a_resumed_comparison_says_what_was_computed_and_what_loaded(tmp_path):
    """ckkslab computed batch 1 and loaded batch 0, HElayers computed both: the report counts them, labels
    CPU as this run's, and gives no CPU ratio (the two engines' CPU covers different batches)."""
    comparison = _comparison(tmp_path)
    comparison.checkpoint = tmp_path / "out" / "batches"
    comparison.runs["ckkslab"].batches_computed, comparison.runs["ckkslab"].batches_loaded = [1], [0]
    comparison.runs["helayers"].batches_computed = [0, 1]
    report = build_report(comparison)
    assert report["engines"]["ckkslab"]["batches_loaded"] == [0] and report["checkpoint"].endswith("batches")
    assert report["ratios"]["cpu_total_ckkslab_over_helayers"] is None
    assert report["ratios"]["predict_ckkslab_over_helayers"] == 2.0
    md = render_markdown(report)
    assert "plain: 0 computed, 0 loaded; ckkslab: 1 computed, 1 loaded; helayers: 2 computed, 0 loaded" in md
    assert "| CPU, whole call (this run) | 0 | 6 | 3 | - |" in md
    assert "## Timings (wall seconds, summed over batches, loaded ones included (see Resumed above))" in md
    assert "resumed: plain 0 batch(es) computed + 0 loaded, ckkslab 1 batch(es) computed + 1 loaded" in (
        summary_text(report, tmp_path))
    assert "Resumed" not in render_markdown(build_report(_comparison(tmp_path)))


def test_on_dask_ckkslab_predict_and_peak_rss_are_labelled_as_the_clients(tmp_path):
    comparison = _comparison(tmp_path)
    comparison.runs["ckkslab"].params.update(
        scheduler="dask: 2 worker thread(s), kernels on 1 thread(s) per worker, embedded LocalCluster",
        predict_scope="the client's wall time waiting for the Dask workers, not their compute time",
        peak_rss_scope="block, this client process only (not the Dask workers)")
    report = build_report(comparison)
    md = render_markdown(report)
    assert "| predict | 0 | 2 (client) | 1 | 2.00x |" in md
    assert "| peak RSS | 1.00 MiB (client) | 1.00 MiB |" in md
    assert ("So its predict time is the client's wall time waiting for the Dask workers, not their compute "
            "time, and its peak RSS covers block, this client process only (not the Dask workers).") in md
    assert "ckkslab predict on dask: the client's wall time waiting" in summary_text(report, tmp_path)
    assert "(client)" not in render_markdown(build_report(_comparison(tmp_path)))
