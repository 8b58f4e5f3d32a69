"""Single-record packing: the baby-step / giant-step diagonal program, simulated with np.roll, equals W^T x + b,
and the encrypted version agrees with the float64 network."""

import numpy as np
import pytest

import ckks
from nn import encrypted as enc
from nn import single_packing as sp
from nn.model import SQUARE, Dense, PlainNetwork, Polynomial
from nn.plan import plan_inference


@pytest.mark.parametrize("d_in,d_out", [(14, 20), (20, 5), (5, 1), (3, 3)])
def test_bsgs_diagonal_method_equals_matrix_product(d_in, d_out):
    rng = np.random.default_rng(d_in + d_out)
    w_mat = rng.normal(size=(d_in, d_out))
    x = rng.normal(size=d_in)
    w, slots = sp.width([d_in, d_out]), 64
    n1 = sp.baby_steps(w)
    xs = sp.replicate(x, w, slots)
    total = np.zeros(slots)
    for (g, b), diag in sp.giant_step_diagonals(w_mat, w, slots).items():
        total += np.roll(diag * np.roll(xs, -b), -g * n1)  # rot(v, r) = slot i <- slot i + r
    np.testing.assert_allclose(total[:d_out], x @ w_mat, atol=1e-12)
    np.testing.assert_allclose(total[d_out:w], 0.0, atol=1e-12)  # padding stays zero
    np.testing.assert_allclose(total.reshape(-1, w), np.tile(total[:w], (slots // w, 1)))  # still replicated


@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_single_record_encrypted_matches_plaintext(encrypt_weights):
    rng = np.random.default_rng(5)
    layers = [
        Dense(rng.normal(0, 0.5, (6, 5)), rng.normal(0, 0.1, 5), "d1"),
        Polynomial(SQUARE, "s1"),
        Dense(rng.normal(0, 0.5, (5, 1)), rng.normal(0, 0.1, 1), "d2"),
    ]
    net = PlainNetwork(layers, 6)
    x = rng.uniform(-1, 1, (3, 6))
    plan = plan_inference(net, x, batch_size=1, frac_bits=20, security=None, ring_degree=64)
    assert plan.packing == "single" and plan.rotation_steps == (1, 2, 3, 4)
    keys = ckks.KeyGenerator(plan.params, seed=3)
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key, seed=4)
    model = enc.compile_model(net, plan, encoder, encryptor if encrypt_weights else None)
    ev = ckks.Evaluator(
        plan.params, relin_key=keys.relin_key(), galois_keys=keys.galois_keys(plan.rotation_steps)
    )
    decryptor = ckks.Decryptor(plan.params, keys.secret_key)
    for record in x:
        out = enc.predict(model, enc.encrypt_batch(record[None, :], plan, encoder, encryptor), ev)
        got = enc.decrypt_batch(out, 1, plan, 1, encoder, decryptor)
        assert abs(got[0, 0] - net.forward(record[None, :])[0, 0]) < 2.0**-12
