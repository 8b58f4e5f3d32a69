"""The inference benchmark's figures from its runs: each engine's precision against float64, one engine's
repeated runs of one mode combined (stage minima, worst precision, the first run's memory), and both
engines side by side with ratios and issue 4's target (``benchmarks.inference`` runs them).

Module level imports are the standard library only (``ckkslab --help`` imports ``benchmarks.inference``).
"""

from __future__ import annotations

from typing import Any

STAGES = ("keygen", "encrypt_model", "encrypt_data", "predict", "decrypt")
MODES = {"encrypted": True, "plain": False}
PREDICT_TARGET_RATIO = 0.5
PRECISION_TARGET_BITS = 30.0


def precision(predictions: Any, expected: Any, network: Any) -> dict[str, Any]:
    """How far decrypted outputs are from the float64 forward pass, in bits, and how many decisions agree.

    ``bits`` = -log2 max |error| (worst record), ``mean_bits`` = -log2 mean |error|, ``relative_bits`` =
    -log2(max |error| / max |expected|) (issue 4's measure), ``decisions_equal`` compares
    ``network.decide`` of both.
    """
    import numpy as np

    from validation.metrics import precision_bits

    got = np.asarray(predictions, dtype=np.float64).reshape(expected.shape)
    error = np.abs(got - expected)
    worst = float(error.max())
    output_range = float(np.abs(expected).max())
    _, decisions = network.decide(got)
    _, reference = network.decide(expected)
    return {
        "max_abs_error": worst,
        "mean_abs_error": float(error.mean()),
        "bits": precision_bits(worst),
        "mean_bits": precision_bits(float(error.mean())),
        "output_range": output_range,
        "relative_bits": precision_bits(worst / output_range) if output_range > 0 else None,
        "decisions_equal": int(np.sum(decisions == reference)),
        "records": int(got.shape[0]),
    }


def combine_runs(runs: list[dict[str, Any]], expected: Any, network: Any) -> dict[str, Any]:
    """One engine's repeated runs of one mode: stage minima, worst precision, first run's memory."""
    combined = dict(runs[0])
    combined["timings_s"] = {stage: min(r["timings_s"][stage] for r in runs) for stage in STAGES}
    combined["timings_s_per_run"] = [r["timings_s"] for r in runs]
    precisions = [precision(r["predictions"], expected, network) for r in runs]
    combined["precision"] = max(precisions, key=lambda p: p["max_abs_error"])
    combined["load_1min"] = {"before": runs[0]["load_1min"]["before"],
                             "after": runs[-1]["load_1min"]["after"]}
    del combined["predictions"]
    return combined


def compare_engines(mode: str, ours: dict[str, Any], theirs: dict[str, Any] | None) -> dict[str, Any]:
    """Stage rows (both times, ratio ours/theirs), sizes, memory, precision, and the target verdict."""
    stages = []
    for stage in (*STAGES, "total"):
        ckkslab_s = (sum(ours["timings_s"][s] for s in STAGES) if stage == "total"
                     else ours["timings_s"][stage])
        helayers_s = None
        if theirs is not None:
            helayers_s = (sum(theirs["timings_s"][s] for s in STAGES) if stage == "total"
                          else theirs["timings_s"][stage])
        stages.append({"stage": stage, "ckkslab_s": ckkslab_s, "helayers_s": helayers_s,
                       "ratio": None if not helayers_s else ckkslab_s / helayers_s})
    engines = {"ckkslab": ours, "helayers": theirs}
    out: dict[str, Any] = {
        "encrypt_weights": MODES[mode],
        "stages": stages,
        "sizes_bytes": {name: None if r is None else r["sizes_bytes"] for name, r in engines.items()},
        "peak_rss_bytes": {name: None if r is None else r["peak_rss_bytes"] for name, r in engines.items()},
        "rss_on_entry_bytes": {name: None if r is None else r["rss_on_entry_bytes"]
                               for name, r in engines.items()},
        "precision": {name: None if r is None else r["precision"] for name, r in engines.items()},
        "timings_s_per_run": {name: None if r is None else r["timings_s_per_run"]
                              for name, r in engines.items()},
        "params": {name: None if r is None else r["params"] for name, r in engines.items()},
        "extra": {name: None if r is None else r.get("extra") for name, r in engines.items()},
        "load_1min": {name: None if r is None else r["load_1min"] for name, r in engines.items()},
    }
    if MODES[mode]:
        predict = next(row for row in stages if row["stage"] == "predict")
        bits = out["precision"]["ckkslab"]["relative_bits"]
        bits_ok = bits is None or bits >= PRECISION_TARGET_BITS
        out["target"] = {
            "predict_ratio": predict["ratio"], "relative_bits": bits,
            "met": None if predict["ratio"] is None else bool(predict["ratio"] <= PREDICT_TARGET_RATIO
                                                              and bits_ok),
        }
    return out
