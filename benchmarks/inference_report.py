"""The human-readable report of ``benchmarks.inference``: per mode the stage table (both engines, ratio),
sizes, memory, precision and the target; and, for a thread sweep, predict at each thread count."""

from __future__ import annotations

from typing import Any

from benchmarks.inference_results import PRECISION_TARGET_BITS, PREDICT_TARGET_RATIO


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.4g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _mb(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f}"


def _bits_text(bits: float | None) -> str:
    return "exact" if bits is None else f"{bits:.1f}"


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: per mode, the stage table, sizes, memory, precision and the target."""
    machine = result["machine"]
    lines = [
        f"ckkslab bench inference: {result['model']}, {result['records']} test records "
        f"({result['batches']} batch(es) of {result['batch_size']}), {result['threads']['ckkslab']} thread(s) "
        f"each; machine load (1 min) "
        f"{machine['load_1min_before']} before, {machine['load_1min_after']} after; "
        f"{machine['cpu_count']} cores",
    ]
    lines.append(f"compile kernels (ckkslab, once, before the first run; in no stage): "
                 f"{result['compile_kernels']['summary']}")
    if not result["helayers_available"]:
        lines.append(f"HElayers was not available, its columns are empty: {result['helayers_unavailable']}")
    for mode, entry in result["modes"].items():
        theirs_params = entry["params"]["helayers"] or {}
        ours_params = entry["params"]["ckkslab"]
        owner = "client" if entry["encrypt_weights"] else "server"
        lines += ["", f"weights {mode} ({owner} owns the model)"]
        lines.append(f"  ckkslab: N={ours_params.get('ring_degree')}, chain {ours_params.get('moduli_bits')} "
                     f"+ special {ours_params.get('special_moduli_bits')}, scale "
                     f"2^{ours_params.get('scale_bits')}, packing {ours_params.get('packing')}")
        if theirs_params:
            bits = theirs_params.get("moduli_bits") or []
            lines.append(f"  HElayers: {theirs_params.get('backend')}, N={theirs_params.get('ring_degree')}, "
                         f"chain {[round(b) for b in bits]} (special not exposed), scale "
                         f"2^{theirs_params.get('scale_bits')}, tiles {theirs_params.get('tile_layout')}, "
                         f"batch {theirs_params.get('helayers_batch_size')}")
        header = f"  {'stage':<14} {'ckkslab s':>10} {'HElayers s':>11} {'ratio':>8}"
        lines += [header, "  " + "-" * (len(header) - 2)]
        for row in entry["stages"]:
            note = ""
            if row["stage"] == "predict" and entry["encrypt_weights"]:
                note = f"  target <= {PREDICT_TARGET_RATIO:g}"
                met = entry["target"]["met"]
                if met is not None:
                    note += " met" if met else " NOT met"
            lines.append(f"  {row['stage']:<14} {_s(row['ckkslab_s']):>10} {_s(row['helayers_s']):>11} "
                         f"{_ratio(row['ratio']):>8}{note}")
        lines += [""] + _details_table(entry)
    lines.append("")
    lines.append("ratio = ckkslab s / HElayers s; target (issue 4): predict ratio <= "
                 f"{PREDICT_TARGET_RATIO:g} with encrypted weights at >= {PRECISION_TARGET_BITS:g} bits "
                 "relative to the output range")
    return "\n".join(lines)


def _details_table(entry: dict[str, Any]) -> list[str]:
    """Sizes, memory, precision and load of both engines in one mode, one row per measure."""
    engines = ("ckkslab", "helayers")
    size_keys = list(dict.fromkeys(key for name in engines for key in (entry["sizes_bytes"][name] or {})))
    rows: list[tuple[str, dict[str, str]]] = []
    for key in size_keys:
        rows.append((f"{key} MB", {n: _mb((entry["sizes_bytes"][n] or {}).get(key)) for n in engines}))
    rows.append(("peak RSS MB", {n: _mb(entry["peak_rss_bytes"][n]) for n in engines}))
    rows.append(("RSS on entry MB", {n: _mb(entry["rss_on_entry_bytes"][n]) for n in engines}))
    peaks, entries = entry["peak_rss_bytes"], entry["rss_on_entry_bytes"]
    rows.append(("peak above entry MB", {n: "-" if peaks[n] is None else _mb(peaks[n] - (entries[n] or 0))
                                         for n in engines}))
    measures = (("max abs error", "max_abs_error", lambda v: f"{v:.3g}"),
                ("bits (max abs error)", "bits", _bits_text),
                ("bits (mean abs error)", "mean_bits", _bits_text),
                ("bits rel. output range", "relative_bits", _bits_text))
    for label, key, fmt in measures:
        rows.append((label, {n: "-" if entry["precision"][n] is None else fmt(entry["precision"][n][key])
                             for n in engines}))
    rows.append(("decisions equal", {n: "-" if entry["precision"][n] is None else
                                     f"{entry['precision'][n]['decisions_equal']}/{entry['precision'][n]['records']}"
                                     for n in engines}))
    loads = {n: entry["load_1min"][n] for n in engines}
    rows.append(("load before -> after", {n: "-" if loads[n] is None else
                                          f"{loads[n]['before']} -> {loads[n]['after']}" for n in engines}))
    header = f"  {'measure':<24} {'ckkslab':>14} {'HElayers':>14}"
    lines = [header, "  " + "-" * (len(header) - 2)]
    lines += [f"  {label:<24} {values['ckkslab']:>14} {values['helayers']:>14}" for label, values in rows]
    return lines


def format_sweep(sweep: dict[str, Any]) -> str:
    """Each thread count's full report, then predict times, ratios and speed-ups side by side."""
    parts = [f"== {t} thread(s) ==\n{format_table(result)}" for t, result in sweep["runs"].items()]
    header = (f"{'mode':<10} {'threads':>7} {'ckkslab s':>10} {'HElayers s':>11} {'ratio':>7} "
              f"{'ckkslab speed-up':>17} {'HElayers speed-up':>18}")
    lines = ["predict at each thread count (speed-up from the first count)", header, "-" * len(header)]
    for t, result in sweep["runs"].items():
        for mode, entry in result["modes"].items():
            row = next(r for r in entry["stages"] if r["stage"] == "predict")
            ours, theirs = sweep["speedup"]["ckkslab"][mode][t], sweep["speedup"]["helayers"][mode][t]
            lines.append(f"{mode:<10} {t:>7} {_s(row['ckkslab_s']):>10} {_s(row['helayers_s']):>11} "
                         f"{_ratio(row['ratio']):>7} {_ratio(ours):>17} {_ratio(theirs):>18}")
    best = sweep["speedup"].get("machine baseline")
    typical = sweep["speedup"].get("machine baseline, medians")
    if best:
        lines.append(f"machine baseline ({sweep['baseline']['what']}, timed before and after every ckkslab "
                     "run), the speed-up the machine gave then, at its best moments (minima; the ceiling for "
                     "the speed-ups above) and typically (medians): "
                     + ", ".join(f"{_ratio(best[t])} / {_ratio(typical[t])} at {t}" for t in best))
    return "\n\n".join(parts + ["\n".join(lines)])
