"""The comparison as data (report.json) and the files of a comparison's directory; ``validation.report_text``
turns the report into tables for people (report.md) and a short terminal summary.

A resumed comparison (``validation.checkpoint``) says per engine how many batches this run computed and how
many it loaded, and what each figure then covers; under ``--scheduler dask`` ckkslab's predict time and peak
memory are labelled as the client's.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ckks.warmup import target_cpu
from nn.model import SQUARE
from validation.compare import PAIRS, STAGES, Comparison, EngineRun
from validation.metrics import agreement
from validation.report_text import render_markdown

SCHEMA_VERSION = 1


def decisions_of(comparison: Comparison, run: EngineRun) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (n,) and 0/1 decisions (n,) of an engine's outputs, by the model's decision rule."""
    return comparison.inputs.network.decide(run.outputs)


def _model_summary(comparison: Comparison) -> dict[str, Any]:
    net = comparison.inputs.network
    layers = []
    for layer in net.layers:
        weights = getattr(layer, "weights", None)
        if weights is not None:
            layers.append(f"{layer.name}: Dense {weights.shape[0]} -> {weights.shape[1]}")
        elif layer.coeffs == SQUARE:
            layers.append(f"{layer.name}: x^2")
        else:
            layers.append(f"{layer.name}: polynomial {list(layer.coeffs)} (low to high degree)")
    return {"path": str(comparison.options.model_dir), "recipe": net.metadata.get("recipe", "unknown"),
            "layers": layers, "input_dim": net.input_dim, "output_dim": net.output_dim,
            "depth": net.depth, "output": net.decision.output, "threshold": net.decision.threshold}


def ratios(runs: dict[str, EngineRun]) -> dict[str, float | None]:
    """ckkslab time / HElayers time per stage, in total, and in process CPU of the whole call.

    r_stage = t_ckkslab(stage) / t_helayers(stage) in wall seconds; ``cpu_total`` divides the engines'
    ``cpu_s``, which cover this run only: None unless both engines computed the same batches in it (and
    none was replayed from its record, whose CPU is another run's). ``None`` where HElayers took no time;
    empty unless both engines ran.
    """
    if "ckkslab" not in runs or "helayers" not in runs:
        return {}
    ours, theirs = runs["ckkslab"].timings_s, runs["helayers"].timings_s
    result: dict[str, float | None] = {}
    for stage in (*STAGES, "total"):
        a = sum(ours.values()) if stage == "total" else ours.get(stage, 0.0)
        b = sum(theirs.values()) if stage == "total" else theirs.get(stage, 0.0)
        result[f"{stage}_ckkslab_over_helayers"] = a / b if b > 0 else None
    cpu = runs["helayers"].cpu_s
    same_batches = (runs["ckkslab"].batches_computed == runs["helayers"].batches_computed
                    and not runs["ckkslab"].replayed and not runs["helayers"].replayed)
    result["cpu_total_ckkslab_over_helayers"] = (runs["ckkslab"].cpu_s / cpu if cpu > 0 and same_batches
                                                 else None)
    return result


def _threads_note(runs: dict[str, EngineRun], threads: int) -> str:
    notes = {"plain": "plain: numpy",
             "ckkslab": f"ckkslab: {threads} thread(s) (Numba threads claiming the limbs)",
             "helayers": f"HElayers: OpenMP limited to {threads}"}
    return "; ".join(f"{name}: not run (its checkpoint was complete)" if run.replayed else notes[name]
                     for name, run in runs.items()) or "no engine ran"


def _numba_section(comparison: Comparison) -> dict[str, Any]:
    """``compile_kernels``: ckkslab's kernel compilation before the stages (None when ckkslab did not run);
    ``numba_in_stages``: Numba's first calls while the engines ran (first_calls 0: no stage includes any)."""
    kernels, in_stages = comparison.kernels, comparison.numba_in_stages
    return {
        "compile_kernels": None if kernels is None else kernels.as_json(),
        "numba_in_stages": None if in_stages is None else dataclasses.asdict(in_stages),
    }


def build_report(comparison: Comparison) -> dict[str, Any]:
    """The JSON-ready report: inputs, each engine's params/timings/sizes/memory/metrics, agreement, ratios,
    and what compiling ckkslab's kernels cost (before the stages, and any Numba activity inside them).

    Raises:
        ValueError: an engine's outputs are not finite or not one per record.
    """
    from nn.metrics import classification_metrics

    options, inputs, runs = comparison.options, comparison.inputs, comparison.runs
    decided = {name: decisions_of(comparison, run) for name, run in runs.items()}
    engines: dict[str, Any] = {}
    for name, run in runs.items():
        probabilities, _ = decided[name]
        metrics = classification_metrics(inputs.y, probabilities, inputs.network.decision.threshold)
        entry = {"params": run.params, "timings_s": run.timings_s, "total_s": sum(run.timings_s.values()),
                 "cpu_total_s": run.cpu_s, "sizes_bytes": run.sizes_bytes,
                 "peak_rss_bytes": run.peak_rss_bytes, "metrics": metrics,
                 "batches_computed": run.batches_computed, "batches_loaded": run.batches_loaded,
                 "replayed": run.replayed}
        entry.update(run.details)
        engines[name] = entry
    agreements = {
        f"{a}_vs_{b}": agreement(runs[a].outputs, runs[b].outputs, decided[a][1], decided[b][1])
        for a, b in PAIRS if a in runs and b in runs
    }
    batches = int(inputs.x.shape[0]) // options.batch_size
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": _model_summary(comparison),
        "data": {"path": str(options.data_dir), "records_available": inputs.records_available,
                 "records_compared": int(inputs.x.shape[0]), "positives": int(inputs.y.sum())},
        "batch_size": options.batch_size,
        "batches": batches,
        "checkpoint": None if comparison.checkpoint is None else str(comparison.checkpoint),
        "per_batch_agreement": per_batch_agreement(comparison, decided),
        "threads": options.threads,
        "threads_note": _threads_note(runs, options.threads),
        "encrypt_weights": options.encrypt_weights,
        "engines_requested": list(options.engines),
        "skipped": dict(comparison.skipped),
        "engines": engines,
        "agreement": agreements,
        "ratios": ratios(runs),
        **_numba_section(comparison),
        "host": {"cpus": os.cpu_count(), "cpu": target_cpu(),
                 "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]},
    }


def per_batch_agreement(comparison: Comparison,
                        decided: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    """For each batch of ``batch_size`` records and each pair of engines: equal decisions and worst error.

    Each entry: batch, first_record, records, and per pair ``{decisions_equal, decisions_total,
    max_abs_error, bits_min}`` (``validation.metrics.agreement`` on the batch's records).
    """
    runs, size = comparison.runs, comparison.options.batch_size
    pairs = [(a, b) for a, b in PAIRS if a in runs and b in runs]
    table = []
    for first in range(0, comparison.inputs.x.shape[0], size):
        rows = slice(first, first + size)
        entry: dict[str, Any] = {"batch": first // size, "first_record": first, "records": size}
        for a, b in pairs:
            found = agreement(runs[a].outputs[rows], runs[b].outputs[rows], decided[a][1][rows],
                              decided[b][1][rows])
            entry[f"{a}_vs_{b}"] = {key: found[key] for key in ("decisions_equal", "decisions_total",
                                                                 "max_abs_error", "bits_min")}
        table.append(entry)
    return table


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays -> Python values; non-finite floats -> None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(out: Path, report: dict[str, Any]) -> list[Path]:
    """Write ``out/report.json`` and ``out/report.md``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n")
    md_path.write_text(render_markdown(report))
    return [json_path, md_path]


def save_comparison(comparison: Comparison) -> dict[str, Any]:
    """Write everything into ``options.out``: plots, outputs.npz, report.json, report.md; returns the report.

    outputs.npz holds the labels and each engine's outputs, record by record, for later analysis.

    Raises:
        ValueError: an engine's outputs are not finite or not one per record.
    """
    from validation.plots import write_plots

    out = Path(comparison.options.out)
    report = build_report(comparison)
    report["plots"] = [path.name for path in write_plots(comparison, out)]
    np.savez_compressed(out / "outputs.npz", labels=comparison.inputs.y,
                        **{name: run.outputs for name, run in comparison.runs.items()})
    write_report(out, report)
    return report
