"""How closely two engines agree on the same records: absolute errors, precision in bits, equal decisions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def precision_bits(error: float) -> float | None:
    """Bits of agreement of an absolute error: -log2(error); ``None`` when the error is exactly 0.

    Raises:
        ValueError: the error is negative or not finite.
    """
    if not math.isfinite(error) or error < 0:
        raise ValueError(f"an absolute error must be finite and >= 0, got {error!r}")
    return None if error == 0 else -math.log2(error)


def _abs_errors(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|outputs - reference| element-wise, after checking the shapes agree and every value is finite."""
    a = np.asarray(outputs, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare outputs of shape {a.shape} with {b.shape}")
    if a.size == 0:
        raise ValueError("no outputs to compare")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("outputs hold NaN or infinite values")
    return np.abs(a - b)


def per_sample_errors(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The worst output's absolute error of each record: e_i = max_j |outputs[i, j] - reference[i, j]|.

    Raises:
        ValueError: the two arrays have different shapes, are empty or hold NaN/inf.
    """
    diff = _abs_errors(outputs, reference)
    return diff.reshape(diff.shape[0], -1).max(axis=1)


def agreement(outputs: np.ndarray, reference: np.ndarray, decisions: np.ndarray,
              reference_decisions: np.ndarray, listed: int = 10) -> dict[str, Any]:
    """Errors of ``outputs`` against ``reference`` (both (n, out)) and how many 0/1 decisions are equal.

    Over every output slot e = |outputs - reference|:
      max_abs_error = max e, mean_abs_error = mean e,
      bits_min = -log2(max e) (the worst slot), bits_mean = -log2(mean e);
    relative to the reference's output range R = max(reference) - min(reference):
      bits_min_relative = -log2(max e / R), bits_mean_relative = -log2(mean e / R)
    (``None`` when an error is 0, or R = 0 for the relative ones). ``decisions_differ_at`` lists the first
    ``listed`` record indices whose decisions differ.

    Raises:
        ValueError: shapes differ, arrays are empty or not finite, or decisions are not one per record.
    """
    errors = _abs_errors(outputs, reference)
    d = np.asarray(decisions).reshape(-1)
    d_ref = np.asarray(reference_decisions).reshape(-1)
    if d.shape != d_ref.shape or d.size != errors.shape[0]:
        raise ValueError(f"need one decision per record from both engines: {d.size} and {d_ref.size} "
                         f"for {errors.shape[0]} records")
    max_error, mean_error = float(errors.max()), float(errors.mean())
    span = float(np.max(reference) - np.min(reference))
    differ = np.flatnonzero(d != d_ref)

    def relative(error: float) -> float | None:
        return None if span == 0 else precision_bits(error / span)

    return {
        "max_abs_error": max_error,
        "mean_abs_error": mean_error,
        "bits_min": precision_bits(max_error),
        "bits_mean": precision_bits(mean_error),
        "output_range": span,
        "bits_min_relative": relative(max_error),
        "bits_mean_relative": relative(mean_error),
        "decisions_equal": int(d.size - differ.size),
        "decisions_total": int(d.size),
        "decisions_differ_at": [int(i) for i in differ[:listed]],
    }
