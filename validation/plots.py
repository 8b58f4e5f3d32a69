"""PNG plots of a comparison (matplotlib, Agg backend): error histograms, stage timings, ROC curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from validation.compare import STAGES, Comparison
from validation.metrics import per_sample_errors

COLORS = {"plain": "#555555", "ckkslab": "#1f77b4", "helayers": "#d62728"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_histogram(comparison: Comparison, path: Path) -> Path | None:
    """Histogram of log10 of each record's |engine output - plain output|, one series per encrypted engine.

    Exact zeros are drawn at the float64 floor log10(2^-52 max|plain|). ``None`` (no file) without plain
    or without an encrypted engine.
    """
    runs = comparison.runs
    others = [name for name in ("ckkslab", "helayers") if name in runs]
    if "plain" not in runs or not others:
        return None
    plt = _pyplot()
    reference = runs["plain"].outputs
    floor = np.log10(np.finfo(np.float64).eps * max(float(np.max(np.abs(reference))), 1e-300))
    series = {name: np.log10(np.maximum(per_sample_errors(runs[name].outputs, reference), 10.0**floor))
              for name in others}
    lo = min(float(v.min()) for v in series.values())
    hi = max(float(v.max()) for v in series.values())
    edges = np.linspace(lo - 0.05, hi + 0.05, 61)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        ax.hist(values, bins=edges, alpha=0.6, color=COLORS[name],
                label=f"{name} (max {10**values.max():.1e}, {values.size} records)")
    ax.set_xlabel("log10 |output - plaintext output| per record")
    ax.set_ylabel("records")
    ax.set_title("Error of each encrypted engine against the float64 plaintext network")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def timing_bars(comparison: Comparison, path: Path) -> Path | None:
    """Bar chart of wall seconds per stage, engines side by side (log scale: stages span decades)."""
    runs = {name: run for name, run in comparison.runs.items() if name != "plain"}
    if not runs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(runs)
    positions = np.arange(len(STAGES))
    for i, (name, run) in enumerate(runs.items()):
        values = [run.timings_s.get(stage, 0.0) for stage in STAGES]
        bars = ax.bar(positions + (i - (len(runs) - 1) / 2) * width, values, width, color=COLORS[name],
                      label=name)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=7)
    ax.set_xticks(positions, STAGES)
    ax.set_yscale("log")
    ax.set_ylabel("wall seconds (log scale)")
    n = comparison.options.threads
    label = f"{n} thread" + ("s" if n > 1 else "")
    threads = {"ckkslab": label, "helayers": label}
    ax.set_title(f"Stage timings, {comparison.inputs.x.shape[0]} records ("
                 + ", ".join(f"{name} {threads[name]}" for name in runs) + ")")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def roc_curves(comparison: Comparison, path: Path) -> Path | None:
    """ROC curve of each engine's probabilities against the labels; ``None`` when one class is missing."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = comparison.inputs.y.reshape(-1).astype(np.int64)
    if labels.min() == labels.max():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    styles = {"plain": "-", "ckkslab": "--", "helayers": ":"}
    for name, run in comparison.runs.items():
        probabilities, _ = comparison.inputs.network.decide(run.outputs)
        fpr, tpr, _ = roc_curve(labels, probabilities)
        ax.plot(fpr, tpr, styles[name], color=COLORS[name], lw=1.5,
                label=f"{name} (AUC {roc_auc_score(labels, probabilities):.4f})")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC on the compared records")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(comparison: Comparison, out: Path) -> list[Path]:
    """Every plot that applies to the engines that ran, as PNG files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    made = [error_histogram(comparison, out / "errors.png"), timing_bars(comparison, out / "timings.png"),
            roc_curves(comparison, out / "roc.png")]
    return [path for path in made if path is not None]
