"""Binary classification metrics of predicted probabilities against 0/1 labels (scikit-learn)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray,
                           threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, AUC, per-class precision/recall/F1, confusion matrix and support of p > threshold.

    Decision: 1 when p > threshold (strictly, as HElayers' example utilities). AUC is the ROC area of the
    probabilities (``sklearn.metrics.roc_auc_score``), ``None`` when only one class is present.
    ``confusion_matrix`` is [[tn, fp], [fn, tp]]; ``support`` is [n_0, n_1]; a precision with no predicted
    member of its class is reported as 0.

    Raises:
        ValueError: lengths differ, labels are not 0/1, or probabilities or threshold are not finite.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} probabilities")
    if y.size == 0:
        raise ValueError("no records to evaluate")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"labels must be 0 or 1, found {sorted(set(np.unique(y)) - {0.0, 1.0})[:5]}")
    if not np.all(np.isfinite(p)) or not math.isfinite(threshold):
        raise ValueError("probabilities and threshold must be finite")
    labels = y.astype(np.int64)
    decisions = (p > threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, decisions, labels=[0, 1], zero_division=0
    )
    matrix = confusion_matrix(labels, decisions, labels=[0, 1])
    auc = float(roc_auc_score(labels, p)) if 0 < labels.sum() < labels.size else None
    result: dict[str, Any] = {
        "records": int(labels.size),
        "threshold": float(threshold),
        "accuracy": float(np.mean(decisions == labels)),
        "auc": auc,
    }
    for cls in (0, 1):
        result[f"precision_{cls}"] = float(precision[cls])
        result[f"recall_{cls}"] = float(recall[cls])
        result[f"f1_{cls}"] = float(f1[cls])
    result["confusion_matrix"] = matrix.astype(int).tolist()
    result["support"] = [int(s) for s in support]
    return result
