"""``ckkslab bench ops`` / ``bench inference``: table and JSON structure, and every ratio = ours / theirs.

Fast smoke tests: the ops benchmark runs ckkslab for real at a toy ring degree (N=1024) against a stand-in
SEAL timer with fixed times (or with SEAL unavailable); the inference benchmark runs with stand-in engines
on a tiny network. No timing is asserted, only that what is printed and written is consistent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.inference_results import STAGES
from validation.cli import main
from validation.commands.bench import _benchmark

ops = _benchmark("ops")
inference = _benchmark("inference")

# Stand-in SEAL seconds: distinct, so a row mixed up with another one shows.
FAKE_SEAL = {"encode": 0.0011, "encrypt": 0.0023, "decrypt_decode": 0.0017, "add": 0.00007,
             "multiply_plain": 0.00013, "multiply_raw": 0.00029, "relinearize": 0.0019,
             "multiply_relinearize": 0.0021, "rescale_raw": 0.00031, "rotate": 0.0018}
ROW_RE = re.compile(r"^\s*(?P<op>\S.*?)\s{2,}(?P<ours>\S+)\s+(?P<theirs>\S+)\s+(?P<ratio>\S+)"
                    r"(?:\s+(?P<rest>.*))?$")


def _fake_seal_timer(ring_degree: int, repeats: int) -> dict[str, Any]:
    params = {"library": "SEAL (stand-in)", "ring_degree": ring_degree, "slots": ring_degree // 2,
              "moduli_bits": [40.0, 30.0, 30.0], "scale_bits": 30.0, "security_level": None, "threads": 1,
              "repeats": repeats}
    return {**FAKE_SEAL, "params": params}


def _table_rows(text: str, header_start: str) -> dict[str, re.Match[str]]:
    """The rows between the dashed line under ``header_start`` and the next blank or '(' line."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(header_start)) + 2
    rows = {}
    for line in lines[first:]:
        if not line.strip() or line.lstrip().startswith("("):
            break
        match = ROW_RE.match(line)
        assert match, line
        rows[match["op"]] = match
    return rows


def _check_printed_ratio(ours: str, theirs: str, ratio: str) -> None:
    """The printed ratio equals ours / theirs from the printed times, within the printing's rounding."""
    a, b, r = float(ours), float(theirs), float(ratio)
    expected = a / b
    # times carry 4 significant digits (relative error <= 5e-4 each), the ratio 3 decimals
    assert abs(r - expected) <= 5e-4 + expected * 1.1e-3, (ours, theirs, ratio)


def test_ops_table_and_json_against_stand_in_seal(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ops, "_seal_timer", _fake_seal_timer)
    out_json = tmp_path / "ops.json"
    code = main(["bench", "ops", "--ring-degree", "1024", "--repeats", "2", "--no-first-call",
                 "--threads", "1", "--json", str(out_json)])
    assert code == 0
    text = capsys.readouterr().out
    assert "machine load" in text and "not measured here" in text
    rows = _table_rows(text, "op ")
    assert list(rows) == [row.label for row in ops.ROWS]

    result = json.loads(out_json.read_text())
    assert result["benchmark"] == "ops" and result["ring_degree"] == 1024 and result["seal_available"]
    assert result["threads"]["ckkslab"] == 1 and result["repeats"] == 2
    assert {"load_1min_before", "load_1min_after", "cpu_count"} <= set(result["machine"])
    assert result["ckkslab_params"]["moduli_bits"] == pytest.approx([40, 30, 30], abs=1)
    assert result["first_call"] is None
    for entry, row in zip(result["ops"], ops.ROWS, strict=True):
        assert entry["op"] == row.label and entry["target_ratio"] == row.target
        printed = rows[row.label]
        assert entry["ckkslab_s"] > 0
        assert float(printed["ours"]) == pytest.approx(entry["ckkslab_s"] * 1e3, rel=5e-4)
        if row.seal_key is None:  # the NTT: ckkslab only (SEAL's figure is reported at N=16384 only)
            assert entry["seal_s"] is None and entry["ratio"] is None and printed["ratio"] == "-"
            continue
        assert entry["seal_s"] == FAKE_SEAL[row.seal_key]
        assert entry["ratio"] == entry["ckkslab_s"] / entry["seal_s"]
        assert float(printed["theirs"]) == pytest.approx(entry["seal_s"] * 1e3, rel=5e-4)
        _check_printed_ratio(printed["ours"], printed["theirs"], printed["ratio"])
        if row.target is not None:
            assert entry["met"] == (entry["ratio"] <= row.target)
            assert ("NOT met" in printed["rest"]) == (not entry["met"])


def test_ops_without_seal_prints_ckkslab_column_only(tmp_path, capsys):
    out_json = tmp_path / "ops.json"  # N=1024 has no SEAL chain (or pyhelayers is missing): ckkslab alone
    assert main(["bench", "ops", "--ring-degree", "1024", "--repeats", "1", "--no-first-call",
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "SEAL was not available" in text
    rows = _table_rows(text, "op ")
    assert all(m["theirs"] == "-" and m["ratio"] == "-" and float(m["ours"]) > 0 for m in rows.values())
    result = json.loads(out_json.read_text())
    assert not result["seal_available"] and result["seal_unavailable"]
    assert all(entry["ratio"] is None and entry["met"] is None for entry in result["ops"])


def test_ops_rejects_bad_repeats(capsys):
    assert main(["bench", "ops", "--ring-degree", "1024", "--repeats", "0", "--no-first-call"]) == 2
    assert "--repeats" in capsys.readouterr().err


# ----- inference ------------------------------------------------------------------------------------------
def _tiny_network() -> Any:
    from nn.model import Decision, Dense, PlainNetwork, Polynomial

    rng = np.random.default_rng(3)
    layers = [Dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 4), "dense"),
              Polynomial((0.0, 0.0, 1.0), "square"),
              Dense(rng.uniform(-1, 1, (4, 1)), rng.uniform(-1, 1, 1), "out")]
    return PlainNetwork(layers, 3, Decision("logit", 0.5))


def _fake_engine(scale: float, error: float) -> Any:
    def runner(*args: Any) -> dict[str, Any]:
        x, encrypt_weights = args[1], args[2]  # args[0]: the network (ckkslab) or model directory
        expected = _tiny_network().forward(x)
        factor = scale * (2.0 if encrypt_weights else 1.0)
        return {"predictions": expected + error, "timings_s": {
                    "keygen": 1.5 * factor, "encrypt_model": 0.25 * factor, "encrypt_data": 0.125 * factor,
                    "predict": 0.75 * factor, "decrypt": 0.0625 * factor},
                "sizes_bytes": {"context": 1000, "model": 2000, "data": 3000, "predictions": 400},
                "params": {"ring_degree": 16384, "moduli_bits": [60, 53], "special_moduli_bits": [60],
                           "scale_bits": 53, "packing": "batch"}}
    return runner


def test_inference_table_and_json_with_stand_in_engines(monkeypatch, tmp_path, capsys):
    import nn.data
    import nn.model

    x = np.random.default_rng(5).uniform(0, 1, (4096, 3))
    monkeypatch.setattr(nn.model, "load_network", lambda _dir: _tiny_network())
    monkeypatch.setattr(nn.data, "load_xy", lambda _dir, split="test": (x, np.zeros((4096, 1))))
    monkeypatch.setattr(inference, "_ckkslab_runner", _fake_engine(0.3, 2.0**-35))
    monkeypatch.setattr(inference, "_helayers_runner", _fake_engine(1.0, 2.0**-33))
    out_json = tmp_path / "inference.json"
    assert main(["bench", "inference", "--model", str(tmp_path), "--repeats", "2",
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out

    result = json.loads(out_json.read_text())
    assert result["benchmark"] == "inference" and result["records"] == 4096 and result["helayers_available"]
    assert list(result["modes"]) == ["encrypted", "plain"] and result["repeats"] == 2
    assert all(len(entry["timings_s_per_run"]["helayers"]) == 2 for entry in result["modes"].values())
    blocks = text.split("\nweights ")[1:]
    assert len(blocks) == 2
    for block, (mode, entry) in zip(blocks, result["modes"].items(), strict=True):
        assert block.startswith(mode)
        rows = _table_rows(block, "stage ")
        assert list(rows) == [*STAGES, "total"]
        for stage in entry["stages"]:
            assert stage["ratio"] == stage["ckkslab_s"] / stage["helayers_s"]
            printed = rows[stage["stage"]]
            _check_printed_ratio(printed["ours"], printed["theirs"], printed["ratio"])
            assert stage["ratio"] == pytest.approx(0.3)
        for engine, bits in (("ckkslab", 35.0), ("helayers", 33.0)):
            prec = entry["precision"][engine]
            assert prec["bits"] == pytest.approx(bits) and prec["decisions_equal"] == 4096
            assert entry["peak_rss_bytes"][engine] > 0
        assert entry["sizes_bytes"]["ckkslab"]["model"] == 2000
    target = result["modes"]["encrypted"]["target"]
    assert target["predict_ratio"] == pytest.approx(0.3) and target["met"] is True
    assert "target <= 0.5 met" in text


def test_inference_without_helayers(monkeypatch, tmp_path, capsys):
    import nn.data
    import nn.model
    from reference.errors import HelayersUnavailable

    def missing(*_args: Any) -> dict[str, Any]:
        raise HelayersUnavailable("pyhelayers is not available (stand-in)")

    x = np.random.default_rng(5).uniform(0, 1, (4096, 3))
    monkeypatch.setattr(nn.model, "load_network", lambda _dir: _tiny_network())
    monkeypatch.setattr(nn.data, "load_xy", lambda _dir, split="test": (x, np.zeros((4096, 1))))
    monkeypatch.setattr(inference, "_ckkslab_runner", _fake_engine(0.3, 2.0**-35))
    monkeypatch.setattr(inference, "_helayers_runner", missing)
    assert main(["bench", "inference", "--model", str(tmp_path), "--modes", "encrypted"]) == 0
    text = capsys.readouterr().out
    assert "HElayers was not available" in text
    rows = _table_rows(text.split("\nweights ")[1], "stage ")
    assert all(m["theirs"] == "-" and m["ratio"] == "-" for m in rows.values())


def test_bench_help_is_light():
    import subprocess
    import sys

    code = ("import sys; from validation.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numba', 'pyhelayers', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert "numba" not in out and "pyhelayers" not in out and "tensorflow" not in out


@pytest.mark.helayers
def test_ops_against_real_seal_copies_its_chain(tmp_path, capsys):
    pytest.importorskip("pyhelayers")
    out_json = tmp_path / "ops.json"
    assert main(["bench", "ops", "--ring-degree", "8192", "--repeats", "1", "--no-first-call",
                 "--json", str(out_json)]) == 0
    rows = _table_rows(capsys.readouterr().out, "op ")
    result = json.loads(out_json.read_text())
    assert result["seal_available"] and result["threads"]["seal"] == 1
    ours, theirs = result["ckkslab_params"], result["seal_params"]
    assert ours["ring_degree"] == theirs["ring_degree"] == 8192
    chain = [round(b) for b in ours["moduli_bits"]]
    assert chain == [round(b) for b in theirs["moduli_bits"]] == [47, 40, 40, 40]
    assert round(ours["scale_bits"]) == round(theirs["scale_bits"]) == 40 and ours["security_level"] == 128
    for entry in result["ops"]:
        if entry["seal_s"] is not None:
            assert entry["ratio"] == entry["ckkslab_s"] / entry["seal_s"]
            printed = rows[entry["op"]]
            _check_printed_ratio(printed["ours"], printed["theirs"], printed["ratio"])


def test_thread_sweep_reports_each_engines_speed_up(monkeypatch, tmp_path, capsys):
    """--thread-counts runs everything at each count; the speed-ups are predict(first) / predict(T), here
    made proportional to T by stand-in engines (ckkslab reads the count set by the sweep, HElayers gets it)."""
    import ckks
    import nn.data
    import nn.model

    counts = sorted({1, ckks.available_threads()})
    if len(counts) < 2:
        pytest.skip("one core: no second thread count")
    ours, theirs = _fake_engine(0.3, 2.0**-35), _fake_engine(1.0, 2.0**-33)

    def scaled(result: dict[str, Any], threads: int, speed_up: float) -> dict[str, Any]:
        result["timings_s"]["predict"] /= threads**speed_up
        return result

    x = np.random.default_rng(5).uniform(0, 1, (4096, 3))
    monkeypatch.setattr(nn.model, "load_network", lambda _dir: _tiny_network())
    monkeypatch.setattr(nn.data, "load_xy", lambda _dir, split="test": (x, np.zeros((4096, 1))))
    monkeypatch.setattr(inference, "_ckkslab_runner", lambda *a: scaled(ours(*a), ckks.get_threads(), 1.0))
    monkeypatch.setattr(inference, "_helayers_runner", lambda *a: scaled(theirs(*a), a[4], 0.5))
    out_json = tmp_path / "sweep.json"
    assert main(["bench", "inference", "--model", str(tmp_path), "--modes", "encrypted", "--thread-counts",
                 ",".join(map(str, counts)), "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    top = str(counts[-1])
    assert result["thread_counts"] == counts and result["runs"][top]["threads"]["ckkslab"] == counts[-1]
    assert result["speedup"]["ckkslab"]["encrypted"][top] == pytest.approx(counts[-1])
    assert result["speedup"]["helayers"]["encrypted"][top] == pytest.approx(counts[-1] ** 0.5)
    assert "predict at each thread count" in capsys.readouterr().out
    with pytest.raises(ValueError, match="distinct positive integers"):
        inference.run_thread_sweep(tmp_path, (1, 1))
    with pytest.raises(SystemExit):
        main(["bench", "inference", "--model", str(tmp_path), "--thread-counts", "0,x"])


def test_thread_sweep_repeats_go_through_every_count_in_turn(monkeypatch, tmp_path):
    """With --repeats 2 and two counts, each repeat runs ckkslab at both counts, then HElayers at both, so that
    a slow spell of the machine falls on both counts; ckkslab's first runs all come before HElayers'; only
    the first repeat (whose memory figures are kept) starts after the heap's free pages go back to the OS;
    the machine baseline is timed beside every ckkslab run."""
    import ckks
    import nn.data
    import nn.model
    from benchmarks.inference_report import format_sweep

    counts = sorted({1, ckks.available_threads()})
    if len(counts) < 2:
        pytest.skip("one core: no second thread count")
    calls: list[tuple[str, int]] = []
    ours, theirs = _fake_engine(0.3, 2.0**-35), _fake_engine(1.0, 2.0**-33)

    def our_engine(*args: Any) -> dict[str, Any]:
        calls.append(("ckkslab", ckks.get_threads()))
        return ours(*args)

    def their_engine(*args: Any) -> dict[str, Any]:
        calls.append(("helayers", args[4]))
        return theirs(*args)

    x = np.random.default_rng(6).uniform(0, 1, (4096, 3))
    monkeypatch.setattr(nn.model, "load_network", lambda _dir: _tiny_network())
    monkeypatch.setattr(nn.data, "load_xy", lambda _dir, split="test": (x, np.zeros((4096, 1))))
    monkeypatch.setattr(inference, "release_free_memory", lambda: calls.append(("release", 0)))
    result = inference.run_thread_sweep(tmp_path, tuple(counts), modes=("encrypted",), repeats=2,
                                        ckkslab_runner=our_engine, helayers_runner=their_engine)
    one, two = counts
    runs = [("ckkslab", one), ("ckkslab", two), ("helayers", one), ("helayers", two)]
    assert calls == [step for run in runs for step in (("release", 0), run)] + runs
    assert all(len(r["modes"]["encrypted"]["timings_s_per_run"]["ckkslab"]) == 2 for r in result["runs"].values())
    assert "alternate between the thread counts" in result["runs"][one]["statistic"]
    # the machine baseline: 3 NTT calls before and 3 after each ckkslab run, filed under its thread count
    seconds = result["baseline"]["seconds"]
    assert sorted(seconds) == [one, two] and all(len(seconds[t]) == 2 * 2 * 3 for t in counts)
    machine = result["speedup"]["machine baseline"]
    assert machine[one] == 1.0 and machine[two] == pytest.approx(min(seconds[one]) / min(seconds[two]))
    assert result["speedup"]["machine baseline, medians"][one] == 1.0
    assert "machine baseline (forward NTT of 32 independent rows" in format_sweep(result)


def test_thread_baseline_speed_up_is_the_ratio_of_the_minima_once_both_counts_are_sampled():
    """ThreadBaseline keeps each sample under the thread count it ran at; no speed-up before both were."""
    import ckks
    from benchmarks.machine import ThreadBaseline

    baseline, before = ThreadBaseline(rows=2, ring_degree=1024), ckks.get_threads()
    try:
        ckks.set_threads(1)
        fastest = baseline.sample(calls=2)
        assert baseline.speedup(1, 2) is None and fastest == min(baseline.seconds[1]) > 0
        baseline.seconds[2] = [fastest / 1.5, fastest]  # as if sampled at 2 threads
        assert baseline.speedup(1, 2) == pytest.approx(1.5) and len(baseline.seconds[1]) == 2
        with pytest.raises(ValueError, match="calls must be a positive integer, got 0"):
            baseline.sample(calls=0)
    finally:
        ckks.set_threads(before)


def test_server_threads_times_both_counts_on_the_shipped_model_and_refuses_bad_counts(capsys):
    """benchmarks/server_threads.py on the shipped model, one round: both counts timed, the same predictions
    (the script raises otherwise), a speed-up that is the ratio of the printed minima; bad counts named."""
    import ckks
    from benchmarks import server_threads

    if ckks.available_threads() < 2:
        pytest.skip("one core: no second thread count")
    model = Path(__file__).resolve().parents[2] / "models" / "clinical"
    before = ckks.get_threads()
    try:
        result = server_threads.run(model, rounds=1, threads=2, encrypt_weights=False)
    finally:
        ckks.set_threads(before)
    one, two = result["threads"][1], result["threads"][2]
    assert len(one["runs_s"]) == len(two["runs_s"]) == 1 and min(one["min_s"], two["min_s"]) > 0
    assert result["speedup"] == pytest.approx(one["min_s"] / two["min_s"]) and result["baseline_speedup"] > 0
    for bad in ({"rounds": 0}, {"threads": 1}, {"threads": ckks.available_threads() + 1}):
        with pytest.raises(ValueError, match="rounds must be a positive integer|threads must be in"):
            server_threads.run(model, **{"rounds": 1, "threads": 2, **bad})
    assert server_threads.main(["--model", str(model), "--threads", "1"]) == 2
    assert "threads must be in [2, " in capsys.readouterr().err


def test_kernel_scaling_sums_every_launch_once_and_refuses_bad_counts(capsys):
    """benchmarks/kernel_scaling.py on the shipped model, one round: its rows hold as many calls as
    kernel_launches counts in a predict, each row's speed-up and loss follow from its two times, operand
    bytes count each array a call receives once (not its scalars), and the time outside the kernels is what
    the wall time leaves; bad counts are named."""
    import ckks
    from benchmarks import kernel_launches, kernel_scaling

    if ckks.available_threads() < 2:
        pytest.skip("one core: no second thread count")
    model = Path(__file__).resolve().parents[2] / "models" / "clinical"
    before = ckks.get_threads()
    try:
        result = kernel_scaling.run(model, rounds=1, threads=2, encrypt_weights=False)
        launches = kernel_launches.run(model, encrypt_weights=False)["launches"]
    finally:
        ckks.set_threads(before)
    rows = result["kernels"]
    assert sum(row["calls"] for row in rows) == launches > 100
    for row in rows:
        assert row["speedup"] == pytest.approx(row["ms_1"] / row["ms_t"])
        assert row["lost_ms"] == pytest.approx(row["ms_t"] - row["ms_1"] / 2)
        assert row["operand_gb_per_s_1"] == pytest.approx(row["operand_mb"] / row["ms_1"])
    a, b = np.zeros((3, 8), dtype=np.uint64), np.zeros(5, dtype=np.int64)
    assert kernel_scaling._operand_bytes((a, b, a, 7, np.uint64(3))) == 3 * 8 * 8 + 5 * 8  # a counted once
    assert [row["lost_ms"] for row in rows] == sorted((row["lost_ms"] for row in rows), reverse=True)
    for count in (1, 2):
        column = "ms_1" if count == 1 else "ms_t"
        assert result["kernels_ms"][count] == pytest.approx(sum(row[column] for row in rows))
        assert 0 < result["outside_kernels_ms"][count] < result["wall_min_ms"][count]
    for bad in ({"rounds": 0}, {"threads": 1}, {"threads": ckks.available_threads() + 1}):
        with pytest.raises(ValueError, match="rounds must be a positive integer|threads must be in"):
            kernel_scaling.run(model, **{"rounds": 1, "threads": 2, **bad})
    assert kernel_scaling.main(["--model", str(model), "--threads", "1"]) == 2
    assert "threads must be in [2, " in capsys.readouterr().err
    assert kernel_scaling.main(["--model", str(model), "--top", "0"]) == 2
    assert "--top must be a positive integer, got 0" in capsys.readouterr().err


def test_bench_batches_report_names_each_server_process_with_its_own_figures():
    """The batches benchmark's table, then per scheduler each server process with its batches, compute
    seconds and peak RSS as measured there (figures made up here: this checks the report, not a run)."""
    from benchmarks.batches import format_report

    servers = {"tcp://127.0.0.1:4001": {"batches": 1, "compute_s": 0.5, "cpu_s": 0.25,
                                        "peak_rss_bytes": 800 * 2**20},
               "tcp://127.0.0.1:4002": {"batches": 1, "compute_s": 0.75, "cpu_s": 1.5,
                                        "peak_rss_bytes": 900 * 2**20}}
    run = {"scheduler": "dask, 2 worker(s)", "where": "dask: 2 worker thread(s)", "records": 8192,
           "batches": 2, "loop_s": 2.0, "total_s": 4.0, "server_load_s": 1.5, "records_per_s": 4096.0,
           "records_per_s_end_to_end": 2048.0, "decisions_equal_to_plain": 8192, "ratio_to_local": 1.0,
           "ratio_to_local_end_to_end": 1.0, "server_compute_s": 1.25, "servers": servers}
    text = format_report({"model": "m", "cpus": 2, "cpu": "Some CPU (znver3, AVX2)", "load_before": [0.5],
                          "load_after": [0.6], "runs": [run]})
    assert "weights encrypted; 2 CPUs (Some CPU (znver3, AVX2)); load average before [0.5]" in text
    assert ("  dask, 2 worker(s): tcp://127.0.0.1:4001 1 batch(es), compute 0.50 s (0.25 s of CPU), "
            "peak RSS 800 MiB; tcp://127.0.0.1:4002 1 batch(es), compute 0.75 s (1.50 s of CPU), "
            "peak RSS 900 MiB") in text
    assert "| dask, 2 worker(s) | 4096 | 1.00x | 2048 | 1.00x | 2.00 | 4.00 | 1.50 | 8192/8192 |" in text


def test_mac_bandwidth_times_both_counts_and_refuses_bad_rounds():
    """benchmarks/mac_bandwidth.py, one round: the read and the multiply-accumulate timed at 1 and 2 threads
    (the script raises if the products differ between them), each speed-up the ratio of the minima and each
    bandwidth the weights' bytes over a minimum."""
    import ckks
    from benchmarks import mac_bandwidth

    if ckks.available_threads() < 2:
        pytest.skip("one core: no second thread count")
    result = mac_bandwidth.run(rounds=1)
    assert result["weights_gb"] == pytest.approx(140 * 2 * 6 * 16384 * 8 / 1e9)
    for name in ("read", "mac"):
        row = result[name]
        assert row["speedup"] == pytest.approx(row["min_s"][1] / row["min_s"][2])
        assert row["gb_per_s"][2] == pytest.approx(result["weights_gb"] / row["min_s"][2])
    with pytest.raises(ValueError, match="rounds must be a positive integer"):
        mac_bandwidth.run(rounds=0)


def test_signed_compare_loops_agree_with_python_integers_and_report_the_ratio_of_minima(tmp_path, capsys):
    """benchmarks/signed_compare.py: both versions of each loop compute, mod q, what Python integers do (the
    butterflies: 14 passes of (x, y) <- (x + w y, x - w y); the sums: sum_t (w0 x0, w1 x0 + w0 x1, w1 x1)),
    and bit for bit the same; run reports signed / unsigned as the ratio of the minima, refuses 0 rounds."""
    from benchmarks import signed_compare as sc
    from ckks.ring.modarith import conditional_subtract
    from ckks.ring.primes import ntt_primes

    q = np.array(ntt_primes(61, 64, 2), dtype=np.uint64)
    rng = np.random.default_rng(3)
    limbs = rng.integers(0, 1 << 62, (2, 64), dtype=np.uint64) % q[:, None]
    w = np.array([q[0] - 1, 12345], dtype=np.uint64)
    outs = []
    for reduce in (sc._unsigned_subtract, conditional_subtract):
        data = limbs.copy()
        sc._butterflies(reduce)(data, w, sc._companions(w, q), q)
        outs.append(data)
    assert np.array_equal(outs[0], outs[1])
    for i in range(2):
        qi, wi = int(q[i]), int(w[i])
        for j in (0, 1, 31):
            x, y = int(limbs[i, j]), int(limbs[i, 32 + j])
            for _ in range(14):
                x, y = (x + wi * y) % qi, (x - wi * y) % qi
            assert (int(outs[1][i, j]) % qi, int(outs[1][i, 32 + j]) % qi) == (x, y)
    q6 = np.array(ntt_primes(61, 64, 6), dtype=np.uint64)
    x = rng.integers(0, 1 << 62, (2, 6, 64), dtype=np.uint64) % q6[None, :, None]
    ws = rng.integers(0, 1 << 62, (3, 2, 6, 64), dtype=np.uint64) % q6[None, None, :, None]
    sums = []
    for reduce in (sc._unsigned_subtract, conditional_subtract):
        out = np.empty((3, 6, 64), dtype=np.uint64)
        sc._tensor_sums(reduce)(x, sc._companions(x, q6[:, None]), ws, q6, out)
        sums.append(out)
    assert np.array_equal(sums[0], sums[1])
    for i, k in ((0, 0), (5, 63)):
        qi = int(q6[i])
        x0, x1 = int(x[0, i, k]), int(x[1, i, k])
        pairs = [(int(ws[t, 0, i, k]), int(ws[t, 1, i, k])) for t in range(3)]
        want = [sum(w0 * x0 for w0, _ in pairs) % qi, sum(w1 * x0 + w0 * x1 for w0, w1 in pairs) % qi,
                sum(w1 * x1 for _, w1 in pairs) % qi]
        assert [int(sums[1][c, i, k]) % qi for c in range(3)] == want
    assert sc.main(["--rounds", "1", "--json", str(tmp_path / "out.json")]) == 0  # benchmarks.rounds_cli
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["rounds"] == 1 and set(result["loops"]) == {"butterflies", "multiply-accumulate"}
    for loop, row in result["loops"].items():
        assert row["signed_over_unsigned"] == pytest.approx(row["min_s"]["signed"] / row["min_s"]["unsigned"])
        assert f"signed / unsigned {row['signed_over_unsigned']:.3f}" in printed and loop in printed
    assert sc.main(["--rounds", "0"]) == 2
    assert "error: rounds must be a positive integer, got 0" in capsys.readouterr().err


def test_kernel_launches_finds_the_parallel_kernels_and_counts_each_call_then_restores_them():
    """benchmarks/kernel_launches.py: every parallel kernel of ckks is found (and no serial one), two
    transforms count two launches of the transform's kernel, and the kernels are the originals again after."""
    import numpy as np

    from benchmarks.kernel_launches import counting, parallel_kernels
    from ckks.ring import ntt, rns
    from ckks.ring.primes import ntt_primes

    kernels = parallel_kernels()
    names = {f"{module.__name__}.{name}" for module, name in kernels}
    assert {"ckks.ring.ntt._forward_rows", "ckks.ring.rns._copy_rows",
            "ckks.rlwe.keyswitch._ntt_and_inner_product"} <= names
    assert "ckks.ring.ntt.ntt_forward_limb" not in names  # serial: called inside kernels, not launched
    basis = rns.rns_basis(tuple(ntt_primes(30, 16, 2)), 16)
    a = np.zeros((2, 16), dtype=np.uint64)
    with counting(kernels) as calls:
        ntt.ntt_forward(a, basis.tables)
        ntt.ntt_forward(a, basis.tables)
        rns.copy_into(np.empty_like(a), a)
    assert calls == {"ring.ntt._forward_rows": 2, "ring.rns._copy_rows": 1}
    assert all(type(getattr(module, name)).__name__ == "CPUDispatcher" for module, name in kernels)


def test_dynamic_schedule_compares_the_same_transform_and_reports_what_it_timed(tmp_path, capsys):
    """benchmarks/dynamic_schedule.py: its static loop transforms rows as ``ntt_forward`` does (which claims
    them from a counter), and one round reports each statistic's speed-up as 1-thread / 2-thread; bad rounds
    are refused by name."""
    import ckks
    from benchmarks import dynamic_schedule as ds
    from ckks.ring import rns
    from ckks.ring.ntt import _stacked, ntt_forward
    from ckks.ring.primes import ntt_primes

    moduli = tuple(ntt_primes(40, 64, 3))
    limbs = np.random.default_rng(1).integers(0, min(moduli), (7, 64), dtype=np.uint64)
    table = np.array([0, 1, 2, 0, 1, 2, 0], dtype=np.int64)
    st = _stacked(moduli, 64)
    static = limbs.copy()
    ds._forward_rows_static(static, np.arange(7, dtype=np.int64), table, st["psi_rev"], st["psi_rev_shoup"],
                            st["narrow_rev"], st["narrow_rev_shoup"], st["modulus"])
    reference = limbs.copy()
    basis = rns.rns_basis(moduli, 64)
    ntt_forward(reference, tuple(basis.tables[t] for t in table))
    assert np.array_equal(static, reference)
    assert ds.main(["--rounds", "0"]) == 2
    assert "error: rounds must be a positive integer, got 0" in capsys.readouterr().err
    if ckks.available_threads() < 2:
        pytest.skip("one core: no second thread count")
    before = ckks.get_threads()
    assert ds.main(["--rounds", "1", "--json", str(tmp_path / "out.json")]) == 0
    assert ckks.get_threads() == before
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "out.json").read_text())
    assert set(result["versions"]) == {"static", "counter"}
    for name, row in result["versions"].items():
        assert len(row["runs_s"]["1"]) == len(row["runs_s"]["2"]) == ds.CALLS
        assert row["speedup"] == pytest.approx(min(row["runs_s"]["1"]) / min(row["runs_s"]["2"]))
        assert row["speedup_median"] == pytest.approx(row["median_s"]["1"] / row["median_s"]["2"])
        assert f"speed-up {row['speedup']:.2f}" in printed and name in printed
