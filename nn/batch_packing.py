"""Batch packing: records in slots (CryptoNets, Gilad-Bachrach et al., ICML 2016), several features per
ciphertext.

The N/2 slots are cut into p blocks of ``block`` slots (block = a power of two >= batch size). Ciphertext k
holds feature p*k + h in block h, record r in slot h*block + r. A Dense layer y = x W + b is computed block-
diagonally: rotating ciphertext k left by j*block moves feature p*k + (h + j) mod p into block h, so

    out_m[block h] = sum_k sum_{j<p} rot(in_k, j*block)[block h] * W[p*k + (h+j) mod p, p*m + h] + b[p*m + h],

a "diagonal method" (Halevi-Shoup, CRYPTO 2014) on p x p blocks: p - 1 rotations per input ciphertext, each
product a plaintext (or ciphertext) that is constant on every block. A layer with fewer outputs than inputs
rotates its partial sums instead (``rotate_outputs``).
"""

from __future__ import annotations

import math

import numpy as np


def rotate_outputs(inputs: int, outputs: int) -> bool:
    """Whether a layer rotates its (fewer) output sums instead of its inputs.

    Equivalently out_m = sum_j rot(S_mj, j*block) with S_mj = sum_k in_k * rot(D_kmj, -j*block): the
    block diagonals are pre-rotated right by j*block, and (p - 1) rotations per OUTPUT ciphertext replace
    (p - 1) per input. Chosen when the layer has fewer output than input ciphertexts.
    """
    return outputs < inputs


def ciphertext_count(width: int, per_ct: int) -> int:
    """How many ciphertexts hold ``width`` features, p per ciphertext."""
    return math.ceil(width / per_ct)


def pack(x: np.ndarray, block: int, per_ct: int, slots: int) -> np.ndarray:
    """Slot vectors (ciphertexts, slots) holding records x (n, d): feature p*k + h of record r at [k, h*block + r]."""
    n, d = x.shape
    out = np.zeros((ciphertext_count(d, per_ct), slots))
    for f in range(d):
        k, h = divmod(f, per_ct)
        out[k, h * block : h * block + n] = x[:, f]
    return out


def unpack(slot_vectors: np.ndarray, n: int, d: int, block: int, per_ct: int) -> np.ndarray:
    """The inverse of ``pack``: records (n, d) from slot vectors."""
    out = np.empty((n, d))
    for f in range(d):
        k, h = divmod(f, per_ct)
        out[:, f] = slot_vectors[k, h * block : h * block + n]
    return out


def block_diagonal(
    weights: np.ndarray, k: int, m: int, j: int, block: int, per_ct: int, slots: int
) -> np.ndarray:
    """The slot vector multiplying rot(in_k, j*block) for output ciphertext m: W[p k + (h+j) mod p, p m + h]
    on block h (0 where the feature or the neuron does not exist)."""
    d_in, d_out = weights.shape
    out = np.zeros(slots)
    for h in range(per_ct):
        f, o = per_ct * k + (h + j) % per_ct, per_ct * m + h
        if f < d_in and o < d_out:
            out[h * block : (h + 1) * block] = weights[f, o]
    return out


def bias_vector(bias: np.ndarray, m: int, block: int, per_ct: int, slots: int) -> np.ndarray:
    """b[p m + h] on block h of output ciphertext m."""
    out = np.zeros(slots)
    for h in range(per_ct):
        o = per_ct * m + h
        if o < bias.size:
            out[h * block : (h + 1) * block] = bias[o]
    return out


def diagonals_to_multiply(weights: np.ndarray, block: int, per_ct: int, slots: int
                          ) -> list[tuple[int, int, int]]:
    """The (k, m, j) whose block diagonal is not all zero: only those cost a product. An output ciphertext m
    whose weights are all zero keeps its (0, m, 0), zeros: the product is the ciphertext its bias is added to."""
    d_in, d_out = weights.shape
    found = []
    for m in range(ciphertext_count(d_out, per_ct)):
        keys = [(k, m, j) for k in range(ciphertext_count(d_in, per_ct)) for j in range(per_ct)
                if np.any(block_diagonal(weights, k, m, j, block, per_ct, slots))]
        found += keys or [(0, m, 0)]
    return found
