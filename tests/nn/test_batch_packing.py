"""Batch packing: the block-diagonal program, simulated in numpy with cyclic rotations, equals x @ W + b.

The simulation uses only ``np.roll`` (the definition of a left rotation of the slot vector) and slot-wise
products, so it checks the packing formulas independently of any encryption.
"""

import numpy as np
import pytest

from nn import batch_packing as bp


def simulate_dense(x, weights, bias, block, per_ct, slots):
    packed = bp.pack(x, block, per_ct, slots)
    n_out = bp.ciphertext_count(weights.shape[1], per_ct)
    out = np.zeros((n_out, slots))
    for k, m, j in bp.diagonals_to_multiply(weights, block, per_ct, slots):
        rotated = np.roll(packed[k], -j * block)  # rotate left by j*block: slot i <- slot i + j*block
        out[m] += rotated * bp.block_diagonal(weights, k, m, j, block, per_ct, slots)
    for m in range(n_out):
        out[m] += bp.bias_vector(bias, m, block, per_ct, slots)
    return bp.unpack(out, x.shape[0], weights.shape[1], block, per_ct)


@pytest.mark.parametrize(
    "d_in,d_out,per_ct,n", [(14, 20, 2, 16), (20, 5, 2, 16), (5, 1, 4, 8), (3, 7, 8, 4), (8, 8, 1, 16)]
)
def test_block_diagonal_dense_equals_matrix_product(d_in, d_out, per_ct, n):
    rng = np.random.default_rng(d_in * 100 + d_out)
    block = 16
    slots = block * per_ct
    x = rng.normal(size=(n, d_in))
    w = rng.normal(size=(d_in, d_out))
    b = rng.normal(size=d_out)
    np.testing.assert_allclose(
        simulate_dense(x, w, b, block, per_ct, slots), x @ w + b, rtol=1e-12, atol=1e-12
    )


def test_pack_unpack_round_trip_and_layout():
    x = np.arange(12.0).reshape(4, 3)  # 4 records, 3 features
    packed = bp.pack(x, block=8, per_ct=2, slots=16)
    assert packed.shape == (2, 16)
    # feature 1 of record 2 lives in ciphertext 0, block 1, slot 8 + 2
    assert packed[0, 10] == x[2, 1]
    assert packed[1, 3] == x[3, 2]
    assert np.all(packed[1, 8:] == 0)  # feature 3 does not exist
    np.testing.assert_array_equal(bp.unpack(packed, 4, 3, 8, 2), x)


def test_zero_diagonals_are_skipped_but_every_output_keeps_one():
    w = np.zeros((4, 4))
    w[0, 0] = 1.0  # only feature 0 -> neuron 0: block 0 of input 0 to block 0 of output 0, shift 0
    # output ciphertext 1 (neurons 2, 3) has no nonzero weight: it keeps the zero diagonal (0, 1, 0)
    assert bp.diagonals_to_multiply(w, 8, 2, 16) == [(0, 0, 0), (0, 1, 0)]
    assert not np.any(bp.block_diagonal(w, 0, 1, 0, 8, 2, 16))


def test_rotating_outputs_equals_rotating_inputs():
    """out_m = sum_j rot(S_mj, j*block) with pre-rotated diagonals gives the same x @ W + b."""
    rng = np.random.default_rng(9)
    block, per_ct, n = 16, 4, 16
    slots = block * per_ct
    x, w, b = rng.normal(size=(n, 12)), rng.normal(size=(12, 3)), rng.normal(size=3)
    packed = bp.pack(x, block, per_ct, slots)
    out = np.zeros((1, slots))
    for k, m, j in bp.diagonals_to_multiply(w, block, per_ct, slots):
        pre = np.roll(bp.block_diagonal(w, k, m, j, block, per_ct, slots), j * block)
        out[m] += np.roll(packed[k] * pre, -j * block)
    out[0] += bp.bias_vector(b, 0, block, per_ct, slots)
    assert bp.rotate_outputs(bp.ciphertext_count(12, per_ct), bp.ciphertext_count(3, per_ct))
    np.testing.assert_allclose(bp.unpack(out, n, 3, block, per_ct), x @ w + b, atol=1e-12)
