"""report.md and the command line's summary: the report that ``validation.report`` builds, as text.

Tables of metrics, agreement, parameters, per-batch agreement and timings (with the ratios ckkslab /
HElayers), the notes on Dask, resumed batches and Numba, and the few lines ``compare`` prints at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from validation.compare import STAGES

COMPILE_ROW = "compile kernels"  # the timings' row of ckks.compile_kernels, run before the first stage

def bits(value: float | None) -> str:
    """A precision in bits for people: one decimal, or 'exact' for a zero error."""
    return "exact" if value is None else f"{value:.1f}"


def _seconds(value: float) -> str:
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _mib(value: int) -> str:
    return f"{value / 2**20:.2f} MiB"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _metrics_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, entry in report["engines"].items():
        m = entry["metrics"]
        auc = "n/a" if m["auc"] is None else f"{m['auc']:.4f}"
        rows.append([name, f"{m['accuracy']:.4f}", auc, f"{m['precision_1']:.4f}", f"{m['recall_1']:.4f}",
                     f"{m['f1_1']:.4f}", str(m["confusion_matrix"])])
    return rows


def _agreement_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for pair, a in report["agreement"].items():
        rows.append([pair.replace("_vs_", " vs "), f"{a['decisions_equal']}/{a['decisions_total']}",
                     f"{a['max_abs_error']:.3g}", f"{a['mean_abs_error']:.3g}", bits(a["bits_min"]),
                     bits(a["bits_mean"]), bits(a["bits_min_relative"]), bits(a["bits_mean_relative"])])
    return rows


def _params_rows(report: dict[str, Any]) -> list[list[str]]:
    keys = [("backend", "backend"), ("ring_degree", "ring degree N"), ("slots", "slots"),
            ("moduli_bits", "chain bits"), ("special_moduli_bits", "special prime bits"),
            ("scale_bits", "scale bits"), ("packing", "packing"), ("security", "security (ckkslab)"),
            ("security_level", "security (HElayers)"), ("encrypt_weights", "encrypted weights"),
            ("threads", "threads"), ("helayers_batch_size", "HElayers batch size")]
    engines = {k: v for k, v in report["engines"].items() if k != "plain"}
    rows = []
    for key, label in keys:
        values = [engines[name]["params"].get(key) for name in engines]
        if any(v is not None for v in values):
            rows.append([label] + ["-" if v is None else str(v) for v in values])
    return rows


def _per_batch_section(report: dict[str, Any]) -> list[str]:
    """The agreement of each pair batch by batch (with more than one batch): equal decisions, worst error."""
    table = report["per_batch_agreement"]
    if len(table) < 2 or not report["agreement"]:
        return []
    pairs = list(report["agreement"])
    rows = [[str(e["batch"]), f"{e['first_record']}-{e['first_record'] + e['records'] - 1}"]
            + [f"{e[p]['decisions_equal']}/{e[p]['decisions_total']}, {e[p]['max_abs_error']:.3g}"
               for p in pairs] for e in table]
    return (["", "## Agreement per batch (equal decisions, max abs error)", ""]
            + _table(["batch", "record ids", *(p.replace("_vs_", " vs ") for p in pairs)], rows))


def _timings_section(report: dict[str, Any]) -> list[str]:
    """Wall seconds per stage and engine, CPU seconds of each whole call, ratios, and what they include."""
    engines, ratio = report["engines"], report["ratios"]
    names = list(engines)
    rows = []
    for stage in (*STAGES, "total"):
        values = [engines[n]["total_s"] if stage == "total" else engines[n]["timings_s"].get(stage, 0.0)
                  for n in names]
        row = [stage] + ["-" if n == "plain" and stage not in ("predict", "total")
                         else _seconds(v) + (_client_only(report, n) if stage == "predict" else "")
                         for n, v in zip(names, values, strict=True)]
        if ratio:
            row.append(_ratio(ratio.get(f"{stage}_ckkslab_over_helayers")))
        rows.append(row)
    rows.append(["CPU, whole call" + (" (this run)" if resumed(report) else "")]
                + [_seconds(engines[n]["cpu_total_s"]) for n in names]
                + ([_ratio(ratio.get("cpu_total_ckkslab_over_helayers"))] if ratio else []))
    kernels = report.get("compile_kernels")
    if kernels is not None:
        cells = [_seconds(kernels["seconds"]) if n == "ckkslab" else "-" for n in names]
        rows.insert(0, [COMPILE_ROW, *cells] + (["-"] if ratio else []))
    every = ", loaded ones included (see Resumed above)" if resumed(report) else ""
    lines = ["", f"## Timings (wall seconds, summed over batches{every})", ""]
    lines += _table(["stage", *names] + (["ckkslab / HElayers"] if ratio else []), rows)
    lines += ["", "CPU, whole call: process CPU seconds of the engine's whole run (planning or compiling and "
              "serialization included), less sensitive than wall time to other work on the machine."]
    for line in numba_lines(report):
        lines += ["", f"{line}."]
    extra = engines.get("helayers", {}).get("extra_timings_s")
    if extra:
        lines += ["", "Not in HElayers' stage times above: " + ", ".join(
            f"{k} {_seconds(v)} s" for k, v in extra.items()) + " (ckkslab's stage times include its "
            "serialization; its parameter planning is in keygen)."]
    stage_seconds = engines.get("ckkslab", {}).get("stage_seconds")
    if stage_seconds:
        lines += ["", "ckkslab predict by step: "
                  + ", ".join(f"{k} {_seconds(v)} s" for k, v in stage_seconds.items()) + "."]
    return lines


def workers_text(report: dict[str, Any]) -> str:
    """What ckkslab's Dask workers measured: compute seconds summed over every batch (loaded ones included),
    and per worker the batches the engine's last run computed there, their wall and CPU seconds and the
    worker's peak RSS."""
    ckkslab = report["engines"]["ckkslab"]
    compute = ckkslab.get("server_s", {}).get("compute")
    each = "; ".join(f"{where} {e['batches']} batch(es), {_seconds(e['compute_s'])} s "
                     f"({_seconds(e['cpu_s'])} s of CPU), peak RSS "
                     f"{_mib(e['peak_rss_bytes'])}" for where, e in ckkslab.get("servers", {}).items())
    return (f"ckkslab's workers computed for {_seconds(compute) if compute is not None else '-'} s, summed "
            f"over the batches (measured on the workers); per worker, for the batches its last run computed: "
            f"{each or 'none'}")


def on_dask(report: dict[str, Any]) -> bool:
    """Whether ckkslab's server side ran on Dask workers (its predict and peak RSS are then the client's)."""
    return report["engines"].get("ckkslab", {}).get("params", {}).get("scheduler", "").startswith("dask")


def resumed(report: dict[str, Any]) -> bool:
    """Whether some engine loaded batches from the checkpoint instead of computing them in this run."""
    return any(entry["batches_loaded"] for entry in report["engines"].values())


def _client_only(report: dict[str, Any], name: str) -> str:
    """' (client)' after a ckkslab predict time or peak RSS measured in the client while Dask computed."""
    return " (client)" if name == "ckkslab" and on_dask(report) else ""


def _resumed_section(report: dict[str, Any]) -> list[str]:
    """How many batches each engine computed in this run and loaded from the checkpoint, and what the figures
    then cover; nothing when no batch was loaded."""
    engines = report["engines"]
    if not resumed(report):
        return []
    replayed = [name for name, e in engines.items() if e.get("replayed")]
    lines = ["## Resumed: batches computed in this run and loaded from the checkpoint", "",
             "; ".join(f"{name}: {len(e['batches_computed'])} computed, {len(e['batches_loaded'])} loaded"
                       for name, e in engines.items()) + f" (checkpoint: {report['checkpoint']}).", "",
             "A loaded batch's outputs, stage times and sizes are those of the run that computed it, and "
             "every figure summed over batches (the stage rows, total, bytes) covers all batches, whichever "
             "run computed them. keygen and encrypt_model are this run's: the checkpoint holds no key, so "
             "a run that computes a batch makes its keys and encrypts the model again. CPU, whole call and "
             "peak RSS are this run's only (its computed batches); the CPU ratio is given only when both "
             "encrypted engines computed the same batches in this run.", ""]
    if replayed:
        lines += [f"Not run at all: {', '.join(replayed)}. The checkpoint held every batch and the record of "
                  "the run that completed it, so each of their figures (keygen, encrypt_model, CPU, peak RSS "
                  "included) is that run's.", ""]
    return lines


def numba_lines(report: dict[str, Any]) -> list[str]:
    """What compiling ckkslab's kernels cost and where, for people; a warning if any stage includes it."""
    kernels, in_stages = report.get("compile_kernels"), report.get("numba_in_stages")
    lines = []
    if kernels is not None:
        lines.append(f"{COMPILE_ROW} (ckkslab, once per process, before the first stage; in no stage, total "
                     f"or ratio): {kernels['summary']}")
    if in_stages is not None and in_stages["first_calls"]:
        lines.append(f"WARNING: Numba made {in_stages['first_calls']} kernels ready inside the timed stages "
                     f"({_seconds(in_stages['seconds'])} s, {in_stages['compiled']} signatures compiled): "
                     "those stage times include it")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: what was compared, then metrics, agreement, timings, sizes, memory and parameters."""
    model, engines = report["model"], report["engines"]
    lines = [f"# ckkslab compare: {model['path']}", "",
             f"Model: recipe {model['recipe']}, {' / '.join(model['layers'])}; output {model['output']}, "
             f"threshold {model['threshold']:.6g}.  ",
             f"Data: {report['data']['path']}/x_test.h5, {report['data']['records_compared']} records "
             f"({report['batches']} batch(es) of {report['batch_size']}; {report['data']['positives']} "
             f"diabetic) of {report['data']['records_available']}.  ",
             f"Threads: {report['threads_note']}. "
             f"Weights {'encrypted' if report['encrypt_weights'] else 'plain'}. "
             f"Host: {report['host']['cpus']} CPUs ({report['host']['cpu']}), "
             f"load {report['host']['load_average_1_5_15']} at the end. "
             f"Created {report['created']}.", ""]
    for name, reason in report["skipped"].items():
        lines += [f"**{name} skipped:** {reason}", ""]
    lines += _resumed_section(report)
    lines += ["## Classification metrics (class 1 = diabetic)", ""]
    lines += _table(["engine", "accuracy", "AUC", "precision_1", "recall_1", "F1_1",
                     "confusion [[tn, fp], [fn, tp]]"], _metrics_rows(report))
    if report["agreement"]:
        lines += ["", "## Agreement (network outputs, every record)", "",
                  "bits = -log2(error): worst record (min) and mean; relative = error / output range "
                  "of the second engine.", ""]
        lines += _table(["pair", "equal decisions", "max abs error", "mean abs error", "bits (min)",
                         "bits (mean)", "bits rel. (min)", "bits rel. (mean)"], _agreement_rows(report))
    lines += _per_batch_section(report)
    ckkslab = engines.get("ckkslab", {}).get("params", {})
    if ckkslab.get("scheduler"):
        lines += ["", f"ckkslab's server side ran on: {ckkslab['scheduler']}."]
    if on_dask(report):
        lines[-1] += (f" So its predict time is {ckkslab['predict_scope']}, and its peak RSS covers "
                      f"{ckkslab['peak_rss_scope']}.")
        lines += ["", workers_text(report) + "."]
    names = list(engines)
    lines += _timings_section(report)
    encrypted = [n for n in names if n != "plain"]
    if encrypted:
        lines += ["", "## Sizes and memory", ""]
        keys = sorted({k for n in encrypted for k in engines[n]["sizes_bytes"]})
        rows = [[k] + [_mib(engines[n]["sizes_bytes"][k]) if k in engines[n]["sizes_bytes"] else "-"
                       for n in encrypted] for k in keys]
        rows.append(["peak RSS"] + [_mib(engines[n]["peak_rss_bytes"]) + _client_only(report, n)
                                    for n in encrypted])
        lines += _table(["bytes", *encrypted], rows)
        lines += ["", "## Parameters", ""]
        lines += _table(["", *encrypted], _params_rows(report))
    plan_text = engines.get("ckkslab", {}).get("plan_text")
    if plan_text:
        lines += ["", "ckkslab's plan:", "", "```", plan_text, "```"]
    plots = report.get("plots", [])
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def summary_text(report: dict[str, Any], out: Path) -> str:
    """A few lines for the terminal: metrics, agreement and timings with ratios, and where the files are."""
    engines = report["engines"]
    data = report["data"]
    left = data["records_available"] - data["records_compared"]
    lines = [f"{report['model']['path']} on {data['records_compared']} records "
             f"({report['batches']} x {report['batch_size']}"
             + (f"; {left} of the {data['records_available']} records not compared" if left else "")
             + f"), {report['threads_note']}"]
    for name, entry in engines.items():
        m = entry["metrics"]
        auc = "n/a" if m["auc"] is None else f"{m['auc']:.4f}"
        lines.append(f"  {name:9s} accuracy {m['accuracy']:.4f}  AUC {auc}  recall_1 {m['recall_1']:.4f}  "
                     f"precision_1 {m['precision_1']:.4f}  total {_seconds(entry['total_s'])} s")
    for pair, a in report["agreement"].items():
        lines.append(f"  {pair.replace('_vs_', ' vs '):20s} decisions {a['decisions_equal']}/"
                     f"{a['decisions_total']}  max error {a['max_abs_error']:.2e} "
                     f"({bits(a['bits_min'])} bits, "
                     f"mean {bits(a['bits_mean'])} bits)")
    if report["ratios"]:
        parts = [f"{stage} {_seconds(engines['ckkslab']['timings_s'][stage])}/"
                 f"{_seconds(engines['helayers']['timings_s'][stage])} s "
                 f"({_ratio(report['ratios'][f'{stage}_ckkslab_over_helayers'])})" for stage in STAGES]
        lines.append("  ckkslab/HElayers: " + ", ".join(parts))
    lines += [f"  {line}" for line in numba_lines(report)]
    if resumed(report):
        lines.append("  resumed: " + ", ".join(
            f"{name} {len(e['batches_computed'])} batch(es) computed + {len(e['batches_loaded'])} loaded"
            + (" (not run: every figure is the run's that completed it)" if e.get("replayed") else "")
            for name, e in engines.items()) + f" from {report['checkpoint']} (loaded batches with the times "
            "of the run that computed them; keygen, encrypt_model, CPU and memory of an engine that ran are "
            "this run's)")
    if on_dask(report):
        lines.append(f"  ckkslab predict on dask: {engines['ckkslab']['params']['predict_scope']}")
        lines.append(f"  {workers_text(report)}")
    for name, reason in report["skipped"].items():
        lines.append(f"  {name} skipped: {reason}")
    lines.append(f"  files: {out}/report.md, report.json, " + ", ".join(Path(p).name
                                                                      for p in report.get("plots", [])))
    return "\n".join(lines)
