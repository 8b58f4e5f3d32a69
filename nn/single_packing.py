"""Single-record packing: one record's features in the slots, a Dense layer by the diagonal method with
baby-step / giant-step rotations (Halevi-Shoup, CRYPTO 2014 and 2018).

The record x (padded to w = a power of two >= every layer width) is replicated through all N/2 slots with
period w, so a rotation of the whole slot vector by r rotates every copy of x by r (mod w). With M = W^T
padded to w x w and diag_i[t] = M[t, (t + i) mod w],

    M x = sum_{i < w} diag_i * rot(x, i)
        = sum_{g} rot( sum_{b < n1} rot(diag_{g n1 + b}, -g n1) * rot(x, b),  g n1 ),     i = g n1 + b,

which needs n1 - 1 baby-step rotations of x (shared by all giant steps) and w / n1 - 1 giant-step rotations,
n1 ~ sqrt(w), instead of w - 1.
"""

from __future__ import annotations

import math

import numpy as np


def width(dims: list[int]) -> int:
    """w: the smallest power of two holding every layer's input and output."""
    return 1 << math.ceil(math.log2(max(dims)))


def baby_steps(w: int) -> int:
    """n1 = 2^ceil(log2(w) / 2): the number of baby steps."""
    return 1 << math.ceil(math.log2(w) / 2)


def replicate(vector: np.ndarray, w: int, slots: int) -> np.ndarray:
    """``vector`` (length <= w) zero-padded to w and repeated to fill ``slots``."""
    period = np.zeros(w)
    period[: vector.size] = vector
    return np.tile(period, slots // w)


def diagonal(weights: np.ndarray, i: int, w: int) -> np.ndarray:
    """diag_i[t] = M[t, (t + i) mod w] with M = W^T zero-padded to w x w (length w)."""
    d_in, d_out = weights.shape
    m = np.zeros((w, w))
    m[:d_out, :d_in] = weights.T
    t = np.arange(w)
    return m[t, (t + i) % w]


def giant_step_diagonals(weights: np.ndarray, w: int, slots: int) -> dict[tuple[int, int], np.ndarray]:
    """The slot vectors rot(diag_{g n1 + b}, -g n1), keyed (g, b), replicated, skipping all-zero ones (all
    but diagonal 0 for an all-zero matrix: its product is the ciphertext the bias is added to)."""
    n1 = baby_steps(w)
    out = {}
    for i in range(w):
        g, b = divmod(i, n1)
        d = diagonal(weights, i, w)
        if np.any(d) or (i == 0 and not np.any(weights)):
            out[(g, b)] = replicate(np.roll(d, g * n1), w, slots)  # rot(., -g n1) = roll right by g n1
    return out
