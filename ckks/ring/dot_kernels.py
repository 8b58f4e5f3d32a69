"""Multiply-accumulate with fixed operands: out[r] = sum over the terms (i, j) of output r of x[i] * w[j],
for size-2 ciphertexts x and fixed plaintexts or size-2 ciphertexts w, in RNS / NTT form.

Every output of a Dense layer is computed in one kernel call. Its jobs (``schedule``) are blocks of
``_JOB_SLOTS`` slots of one limb; for each chunk of ``_CHUNK`` slots of a block, an accumulator per output
stays in the L1 cache while the terms stream by: each weight is read once and no partial sum goes back to
memory. Products are Harvey's lazy Shoup products in [0, 2q), reduced once per chunk. An output's bias (a
plaintext or size-2 ciphertext) is added as its sums are written, so adding it costs no pass of its own
over memory. ``ckks.scheme.dot_products`` checks the operands and calls these.

Which operand carries the Shoup companions floor(v * 2^64 / q) (``rns.shoup_companions``) is chosen by what
the kernel streams from memory. The weights are read once per batch and the inputs x, a few ciphertexts,
stay in the cache for every output, so each companion should be read as few times as possible from memory:
- a plaintext weight w multiplies x0 and x1 with one companion: w carries it (made once, by ``prepare``);
- a ciphertext weight (w0, w1) meets (x0, x1) in four products, w0 x0, w1 x0, w0 x1, w1 x1, with two
  companions on either side: x carries them (made per call, from the cache; x must be in [0, q), as every
  ciphertext is), so only the weights themselves stream from memory. With the companions on the weights the
  kernel read twice the bytes and was bound by memory bandwidth at two threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..instrument import timed
from . import rns
from .modarith import conditional_subtract, shoup_mul_lazy
from .rns import RnsBasis
from .schedule import job_counter, next_job

_CHUNK = 1024  # slots accumulated at a time in ``_dot_*``: the accumulators stay in the L1 cache
_JOB_SLOTS = 4096  # slots of one limb per job (``schedule``): 4 jobs per limb at N = 16384


@njit(cache=True)
def _job_slots(job, blocks, n):
    """Job ``job``'s limb i and its slots first .. stop - 1: block job % blocks, of ``_JOB_SLOTS`` slots (the
    limb's last block may be shorter), of limb job // blocks."""
    i, block = job // blocks, job % blocks
    return i, block * _JOB_SLOTS, min(n, (block + 1) * _JOB_SLOTS)


@njit(cache=True)
def _store_sums(acc, bias, bias_row, out_r, i, start, width, q):
    """out_r[c, i, start + k] = ((acc[c, k] mod q) + bias[bias_row, c, i, start + k]) mod q, the bias 0
    beyond its components or for bias_row < 0 (no bias): an output's sums, kept in [0, 2q), written in
    [0, q) with its bias (added here, as the sums are written, where its read costs least)."""
    given = bias.shape[1] if bias_row >= 0 else 0
    for c in range(acc.shape[0]):
        if c < given:
            row = bias[bias_row, c, i, start:]
            for k in range(width):
                v = acc[c, k]
                v = conditional_subtract(v, q) + row[k]
                out_r[c, i, start + k] = conditional_subtract(v, q)
        else:
            for k in range(width):
                v = acc[c, k]
                out_r[c, i, start + k] = conditional_subtract(v, q)


@njit(cache=True, parallel=True)
def _dot_plain_shoup(x, w, w_shoup, term_x, term_w, starts, bias, bias_index, q, out):
    """out[r, c, i] = bias[bias_index[r], c, i] + sum_t x[term_x[t], c, i] * w[term_w[t], i] mod q_i over
    the terms t of output r (starts[r] <= t < starts[r + 1]), for c = 0, 1 (the bias 0 where it has no
    component c or bias_index[r] < 0). A job is one limb i and ``_JOB_SLOTS`` of its slots (``schedule``)."""
    n = x.shape[3]
    blocks = -(-n // _JOB_SLOTS)
    jobs = job_counter()
    for _ in prange(x.shape[2] * blocks):
        acc = np.empty((2, _CHUNK), dtype=np.uint64)
        acc0, acc1 = acc[0], acc[1]
        job = next_job(jobs)
        while job < x.shape[2] * blocks:
            i, first, stop = _job_slots(job, blocks, n)
            qi = q[i]
            two_q = qi + qi
            for start in range(first, stop, _CHUNK):
                width = min(_CHUNK, stop - start)
                for r in range(starts.shape[0] - 1):
                    acc[:, :width] = 0
                    for t in range(starts[r], starts[r + 1]):
                        x0, x1 = x[term_x[t], 0, i, start:], x[term_x[t], 1, i, start:]
                        wt, st = w[term_w[t], i, start:], w_shoup[term_w[t], i, start:]
                        for k in range(width):
                            v0 = acc0[k] + shoup_mul_lazy(x0[k], wt[k], st[k], qi)
                            v1 = acc1[k] + shoup_mul_lazy(x1[k], wt[k], st[k], qi)
                            acc0[k] = conditional_subtract(v0, two_q)
                            acc1[k] = conditional_subtract(v1, two_q)
                    _store_sums(acc, bias, bias_index[r], out[r], i, start, width, qi)
            job = next_job(jobs)


@njit(cache=True, parallel=True)
def _dot_tensor_shoup(x, x_shoup, w, term_x, term_w, starts, bias, bias_index, q, out):
    """out[r] = bias[bias_index[r]] + sum_t (x0 w0, x0 w1 + x1 w0, x1 w1) mod q_i, x = x[term_x[t]] (with its
    companions x_shoup), w = w[term_w[t]] (size-2 ciphertexts), over the terms t of output r (the bias as in
    ``_dot_plain_shoup``); the jobs as there."""
    n = x.shape[3]
    blocks = -(-n // _JOB_SLOTS)
    jobs = job_counter()
    for _ in prange(x.shape[2] * blocks):
        acc = np.empty((3, _CHUNK), dtype=np.uint64)
        a0, a1, a2 = acc[0], acc[1], acc[2]
        job = next_job(jobs)
        while job < x.shape[2] * blocks:
            i, first, stop = _job_slots(job, blocks, n)
            qi = q[i]
            two_q = qi + qi
            for start in range(first, stop, _CHUNK):
                width = min(_CHUNK, stop - start)
                for r in range(starts.shape[0] - 1):
                    acc[:, :width] = 0
                    for t in range(starts[r], starts[r + 1]):
                        x0, x1 = x[term_x[t], 0, i, start:], x[term_x[t], 1, i, start:]
                        s0, s1 = x_shoup[term_x[t], 0, i, start:], x_shoup[term_x[t], 1, i, start:]
                        w0, w1 = w[term_w[t], 0, i, start:], w[term_w[t], 1, i, start:]
                        for k in range(width):
                            v = a0[k] + shoup_mul_lazy(w0[k], x0[k], s0[k], qi)
                            a0[k] = conditional_subtract(v, two_q)
                            v = a1[k] + shoup_mul_lazy(w1[k], x0[k], s0[k], qi)
                            v = conditional_subtract(v, two_q)
                            v = v + shoup_mul_lazy(w0[k], x1[k], s1[k], qi)
                            a1[k] = conditional_subtract(v, two_q)
                            v = a2[k] + shoup_mul_lazy(w1[k], x1[k], s1[k], qi)
                            a2[k] = conditional_subtract(v, two_q)
                    _store_sums(acc, bias, bias_index[r], out[r], i, start, width, qi)
            job = next_job(jobs)


def _terms_csr(terms: list[list[tuple[int, int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (input, weight) pairs of every output, flattened: term_x, term_w and each output's start."""
    starts = np.cumsum([0] + [len(row) for row in terms]).astype(np.int64)
    flat = [pair for row in terms for pair in row]
    return (np.array([x for x, _ in flat], dtype=np.int64), np.array([w for _, w in flat], dtype=np.int64),
            starts)


def _bias_arrays(bias: np.ndarray | None, bias_index: list[int] | None, outputs: int, components: int,
                 x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernels' bias operands: ``bias`` (B, C, L, N), C <= ``components``, L and N those of ``x``, and
    each of the ``outputs``' row of it (-1: none); without a bias, an array of no component and -1
    everywhere.

    Raises:
        ValueError: one of bias and bias_index without the other, a bias of another shape or dtype or not
            C-contiguous (the kernel would read past it or convert it), or an index outside [-1, B).
    """
    if bias is None and bias_index is None:
        return np.zeros((1, 0, 1, 1), dtype=np.uint64), np.full(outputs, -1, dtype=np.int64)
    if bias is None or bias_index is None:
        raise ValueError("dot kernels: give bias and bias_index together, or neither")
    if (bias.dtype != np.uint64 or bias.ndim != 4 or not bias.flags.c_contiguous
            or not 1 <= bias.shape[1] <= components or bias.shape[2:] != x.shape[2:]):
        raise ValueError(f"dot kernels: the bias must be a C-contiguous uint64 array (B, 1..{components}, "
                         f"{x.shape[2]}, {x.shape[3]}), got {bias.dtype} {bias.shape}")
    index = np.array(bias_index, dtype=np.int64)
    if index.shape != (outputs,) or np.any(index < -1) or np.any(index >= bias.shape[0]):
        raise ValueError(f"dot kernels: bias_index must hold one row in [-1, {bias.shape[0]}) per output "
                         f"({outputs}), got {list(bias_index)}")
    return bias, index


@timed("mac_shoup")
def dot_plain_shoup(x: np.ndarray, w: np.ndarray, w_shoup: np.ndarray, terms: list[list[tuple[int, int]]],
                    basis: RnsBasis, bias: np.ndarray | None = None,
                    bias_index: list[int] | None = None) -> np.ndarray:
    """out[r]_c = bias[bias_index[r]]_c + sum over (i, j) in terms[r] of x[i]_c * w[j] mod q: size-2
    ciphertexts x (T, 2, L, N) times fixed plaintexts w (W, L, N) with their Shoup companions w_shoup;
    (len(terms), 2, L, N) in [0, q). The optional bias (B, C, L, N), C <= 2 components in [0, q), adds 0
    where it has no component c, and to the outputs whose bias_index is -1.

    One pass over memory: a chunk of slots of every output's two sums stays in a cache-resident accumulator
    while the terms stream by, so each weight is read once and no partial sum goes back to memory."""
    out = np.empty((len(terms),) + x.shape[1:], dtype=np.uint64)
    _dot_plain_shoup(x, w, w_shoup, *_terms_csr(terms), *_bias_arrays(bias, bias_index, len(terms), 2, x),
                     basis.q[: x.shape[2]], out)
    return out


@timed("mac_shoup")
def dot_tensor_shoup(x: np.ndarray, w: np.ndarray, terms: list[list[tuple[int, int]]],
                     basis: RnsBasis, bias: np.ndarray | None = None,
                     bias_index: list[int] | None = None) -> np.ndarray:
    """The same sums of tensor products with fixed size-2 ciphertexts w (W, 2, L, N): out[r] (3, L, N) =
    bias[bias_index[r]] + sum (x0 w0, x0 w1 + x1 w0, x1 w1) over (i, j) in terms[r], in [0, q), in one pass
    over w (the bias, C <= 3 components, as in ``dot_plain_shoup``).

    The companions are those of x (computed here, once for all the outputs), so w needs none."""
    out = np.empty((len(terms), 3) + x.shape[2:], dtype=np.uint64)
    _dot_tensor_shoup(x, rns.shoup_companions(x, basis), w, *_terms_csr(terms),
                      *_bias_arrays(bias, bias_index, len(terms), 3, x), basis.q[: x.shape[2]], out)
    return out
