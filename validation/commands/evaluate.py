"""``ckkslab evaluate``: plaintext metrics of a model directory on its (or another) test batch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate", help="plaintext metrics of a trained model (float64, no encryption)",
        description="Run the network of a model directory (model.json + model.h5, read with h5py) in float64 "
        "on x_<split>.h5 and print accuracy, AUC, precision/recall/F1 per class, the confusion matrix and "
        "the largest |value| after every layer (what the encrypted run must hold).")
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory: model.json, model.h5, optional ckkslab.json (output kind and "
                        "decision threshold; absent = probability output, threshold 0.5)")
    parser.add_argument("--data", type=Path, default=None,
                        help="directory holding x_<split>.h5 / y_<split>.h5 (default: the model directory)")
    parser.add_argument("--split", default="test", help="which split to read: test (default), val or train")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the metrics and the per-layer ranges to FILE as JSON")
    parser.set_defaults(func=run)


def _check_scaling(model_dir: Path, data_dir: Path, metadata: dict[str, Any]) -> None:
    from validation.cli import UserError

    record_path = data_dir / "preprocessing.json"
    if data_dir == model_dir or not record_path.is_file() or "feature_scaling" not in metadata:
        return
    data_scaling = json.loads(record_path.read_text()).get("feature_scaling") or {}
    model_scaling = metadata["feature_scaling"] or {}
    if data_scaling != model_scaling:
        raise UserError(f"{data_dir} was scaled ({data_scaling.get('method')}) with other parameters than "
                        f"the model expects ({model_scaling.get('method')}); preprocess it with the model's "
                        "recipe")


def report(metrics: dict[str, Any], ranges: list[tuple[str, float]]) -> str:
    """The human-readable text of a metrics dictionary and per-layer ranges."""
    auc = "n/a (one class only)" if metrics["auc"] is None else f"{metrics['auc']:.4f}"
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines = [
        f"records    {metrics['records']}",
        f"accuracy   {metrics['accuracy']:.4f}",
        f"AUC        {auc}",
        "class  precision  recall  F1      support",
    ]
    for cls in (0, 1):
        lines.append(f"{cls:<6d} {metrics[f'precision_{cls}']:<10.4f} {metrics[f'recall_{cls}']:<7.4f} "
                     f"{metrics[f'f1_{cls}']:<7.4f} {metrics['support'][cls]}")
    lines += [
        "confusion matrix (rows: true 0, 1; columns: predicted 0, 1)",
        f"  {tn:8d} {fp:8d}",
        f"  {fn:8d} {tp:8d}",
        "max |value| per layer: " + ", ".join(f"{name} {value:.3g}" for name, value in ranges),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate ``args.model`` on ``args.data`` (default: the model directory) and print the metrics."""
    from nn.data import load_xy
    from nn.metrics import classification_metrics
    from nn.model import load_network

    data_dir = args.model if args.data is None else args.data
    net = load_network(args.model)
    _check_scaling(args.model, data_dir, net.metadata)
    x, y = load_xy(data_dir, args.split)
    trace = net.forward_trace(x)
    probabilities, _ = net.decide(trace[-1])
    metrics = classification_metrics(y, probabilities, net.decision.threshold)
    names = ["input"] + [layer.name for layer in net.layers]
    ranges = [(name, float(abs(values).max())) for name, values in zip(names, trace, strict=True)]
    recipe = net.metadata.get("recipe", "unknown")
    print(f"model {args.model} (recipe {recipe}, output {net.decision.output}, threshold "
          f"{net.decision.threshold:.6g}, depth {net.depth}) on {data_dir}/x_{args.split}.h5")
    print(report(metrics, ranges))
    if args.json is not None:
        payload = {"model": str(args.model), "data": str(data_dir), "split": args.split, "recipe": recipe,
                   "output": net.decision.output, **metrics, "max_abs_per_layer": dict(ranges)}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0
