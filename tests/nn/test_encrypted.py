"""The encrypted forward pass against the float64 plaintext network (an independent computation)."""

import json

import numpy as np
import pytest

import ckks
from nn import artifacts
from nn import encrypted as enc
from nn.container import ArtifactError
from nn.errors import DataSchemaError, ModelFormatError
from nn.model import SQUARE, Dense, PlainNetwork, Polynomial
from nn.plan import PlanError, plan_inference


def small_network(rng, d_in=6, hidden=(5, 3), poly=SQUARE):
    layers, width = [], d_in
    for i, h in enumerate(hidden):
        layers += [
            Dense(rng.normal(0, 0.5, (width, h)), rng.normal(0, 0.1, h), f"dense{i}"),
            Polynomial(poly, f"act{i}"),
        ]
        width = h
    layers.append(Dense(rng.normal(0, 0.5, (width, 1)), rng.normal(0, 0.1, 1), "out"))
    return PlainNetwork(layers, d_in)


def run(net, x, plan, encrypt_weights):
    keys = ckks.KeyGenerator(plan.params, seed=7)
    encoder = ckks.Encoder(plan.params)
    encryptor = ckks.Encryptor(plan.params, keys.secret_key, seed=8)
    model = enc.compile_model(net, plan, encoder, encryptor if encrypt_weights else None)
    ev = ckks.Evaluator(
        plan.params, relin_key=keys.relin_key(), galois_keys=keys.galois_keys(plan.rotation_steps)
    )
    outputs = enc.predict(model, enc.encrypt_batch(x, plan, encoder, encryptor), ev)
    return enc.decrypt_batch(
        outputs, x.shape[0], plan, net.output_dim, encoder, ckks.Decryptor(plan.params, keys.secret_key)
    )


@pytest.mark.parametrize("encrypt_weights", [False, True])
@pytest.mark.parametrize("poly", [SQUARE, (0.1, -0.5, 0.25),
                                  # the levels planned for these two must be those encrypted_layers.activation
                                  # uses: 2x^2 is not x^2 (two levels), c0 + c1 x + 0 x^2 is linear (one)
                                  (0.0, 0.0, 2.0), (0.1, -0.5, 0.0)])
def test_toy_size_matches_plaintext(encrypt_weights, poly):
    rng = np.random.default_rng(1)
    net = small_network(rng, poly=poly)
    x = rng.uniform(-1, 1, (8, 6))
    plan = plan_inference(net, x, batch_size=8, frac_bits=20, security=None, ring_degree=64)
    assert plan.params.security is None and plan.features_per_ciphertext == 4
    got = run(net, x, plan, encrypt_weights)
    want = net.forward(x)
    assert np.max(np.abs(got - want)) < 2.0**-12 * max(1.0, np.ptp(want))


@pytest.mark.slow
@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_secure_size_matches_plaintext(encrypt_weights):
    """128-bit-secure parameters (N = 16384, the smallest that fits depth 5) on 64 records of a 4096 batch."""
    rng = np.random.default_rng(2)
    net = small_network(rng, d_in=14, hidden=(20, 5))
    calibration = rng.uniform(0, 1, (4096, 14))
    plan = plan_inference(net, calibration, batch_size=4096)
    assert plan.params.security == 128 and plan.params.ring_degree == 16384
    x = calibration[:64]
    got = run(net, x, plan, encrypt_weights)
    want = net.forward(x)
    err = np.max(np.abs(got - want))
    assert err <= 2.0**-30 * np.ptp(want), (
        f"max error {err} is above 2^-30 of the output range {np.ptp(want)}"
    )
    assert np.array_equal(got > np.median(want), want > np.median(want))


def test_plan_explains_itself_and_refuses_what_does_not_fit():
    rng = np.random.default_rng(3)
    net = small_network(rng, d_in=14, hidden=(20, 5))
    x = rng.uniform(0, 1, (16, 14))
    plan = plan_inference(net, x, batch_size=4096)
    text = plan.describe(net)
    assert "log2(QP)" in text and "<= 438" in text and "depth 5" in text
    assert plan.params.log_qp <= 438
    with pytest.raises(PlanError, match="fractional"):
        plan_inference(net, x, batch_size=4096, frac_bits=50)
    with pytest.raises(PlanError, match="int_bits"):
        plan_inference(net, x * 1000, batch_size=4096, int_bits=2)


def toy_batch(seed: int):
    """A small network, 8 records of 6 features, its toy plan (N = 64), an encoder, a secret-key encryptor."""
    rng = np.random.default_rng(seed)
    net = small_network(rng)
    x = rng.uniform(-1, 1, (8, 6))
    plan = plan_inference(net, x, batch_size=8, frac_bits=20, security=None, ring_degree=64)
    keys = ckks.KeyGenerator(plan.params, seed=1)
    return net, x, plan, ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key)


def test_out_of_range_inputs_and_bad_batches_are_refused():
    _, x, plan, encoder, encryptor = toy_batch(4)
    with pytest.raises(ckks.ValueRangeError, match="planned range"):
        enc.encrypt_batch(x * 1000, plan, encoder, encryptor)
    with pytest.raises(ckks.ValueRangeError, match="NaN"):
        enc.encrypt_batch(np.full((2, 6), np.nan), plan, encoder, encryptor)
    with pytest.raises(ckks.ValueRangeError, match="exceed"):
        enc.encrypt_batch(np.zeros((9, 6)), plan, encoder, encryptor)
    with pytest.raises(ckks.ValueRangeError, match="non-empty"):
        enc.encrypt_batch(np.zeros((0, 6)), plan, encoder, encryptor)


def test_complex_records_and_weights_are_refused_by_name():
    """The network is real (its values travel in the real parts of the complex slots): complex records,
    weights or files are refused by name, never converted to their real parts."""
    net, x, plan, encoder, encryptor = toy_batch(14)
    for records in (x + 0.5j, x.astype(np.complex128), [[1 + 2j] * 6]):
        with pytest.raises(ckks.ValueRangeError, match=r"encrypt_batch: the records are complex numbers "
                                                       r"\(dtype complex128\): the network computes on real"):
            enc.encrypt_batch(records, plan, encoder, encryptor)
    with pytest.raises(DataSchemaError, match="records given to the network are complex"):
        plan_inference(net, x + 1j, batch_size=8, frac_bits=20, security=None, ring_degree=64)
    with pytest.raises(ModelFormatError, match="the weights of layer 'bad' are complex"):
        PlainNetwork([Dense(np.ones((6, 1)) * (1 + 1j), np.zeros(1), "bad")], 6)
    with pytest.raises(ModelFormatError, match="the bias values of layer 'bad' are complex"):
        PlainNetwork([Dense(np.ones((6, 1)), np.zeros(1, dtype=complex), "bad")], 6)
    with pytest.raises(ModelFormatError, match="the coefficients of layer 'act' are complex"):
        PlainNetwork([Polynomial((0.0, 1j), "act")], 6)
    # a file of complex ciphertexts (not something ckkslab writes) is refused when read back
    real = enc.encrypt_batch(x, plan, encoder, encryptor)
    assert not any(ct.complex_slots for ct in real)
    forged = [encryptor.encrypt(encoder.encode(np.full(plan.params.slots, 0.5j)))] * len(real)
    with pytest.raises(ArtifactError, match="holds a Ciphertext of complex slots"):
        artifacts.ciphertexts_from_bytes(artifacts.ciphertexts_to_bytes(forged), plan.params)
    loaded = artifacts.ciphertexts_from_bytes(artifacts.ciphertexts_to_bytes(real), plan.params)
    assert len(loaded) == len(real)


def test_few_features_in_a_large_ring_still_wrap_around():
    """p * block must tile all N/2 slots: with 4 features per ciphertext and 8 records at N = 256 (128 slots),
    the blocks grow to 32 slots so that rotating by j blocks wraps from the last block to the first."""
    rng = np.random.default_rng(6)
    net = small_network(rng, d_in=4, hidden=(3,))
    x = rng.uniform(-1, 1, (8, 4))
    plan = plan_inference(net, x, batch_size=8, frac_bits=20, security=None, ring_degree=256)
    assert plan.features_per_ciphertext * plan.block == plan.params.slots
    got = run(net, x, plan, encrypt_weights=False)
    assert np.max(np.abs(got - net.forward(x))) < 2.0**-12


def test_large_values_take_two_base_primes_not_a_smaller_scale():
    """12 integer bits: the base (scale + 13 bits) exceeds 60 bits and is split into two primes, so the scale
    stays as large as the security bound allows instead of shrinking to 60 - 13."""
    rng = np.random.default_rng(12)
    net = small_network(rng, d_in=14, hidden=(20, 5))
    plan = plan_inference(net, rng.uniform(0, 1, (64, 14)), batch_size=4096, int_bits=12)
    base = len(plan.params.moduli_bits) - plan.depth
    assert plan.depth == 5 and base == 2 and plan.output_level == 1
    assert sum(plan.params.moduli_bits[:base]) == plan.params.scale_bits + 13 and plan.params.scale_bits > 47
    assert plan.params.log_qp <= 438


@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_client_sent_rotations_replace_the_first_layers_key_switches(encrypt_weights):
    """Two feature blocks per ciphertext: the client also encrypts its inputs rotated by one block, the first
    layer uses those instead of rotating, and the result still matches the plaintext network."""
    rng = np.random.default_rng(13)
    net = small_network(rng, d_in=6, hidden=(5,))
    x = rng.uniform(-1, 1, (16, 6))
    plan = plan_inference(net, x, batch_size=16, frac_bits=20, security=None, ring_degree=64)
    assert plan.features_per_ciphertext == 2 and plan.client_rotations == (plan.block,)
    keys = ckks.KeyGenerator(plan.params, seed=3)
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key, seed=4)
    inputs = enc.encrypt_batch(x, plan, encoder, encryptor)
    assert len(inputs) == 2 * 3
    model = enc.compile_model(net, plan, encoder, encryptor if encrypt_weights else None)
    ev = ckks.Evaluator(plan.params, relin_key=keys.relin_key(), galois_keys=keys.galois_keys(plan.rotation_steps))
    timer = enc.StageTimer()
    outputs = enc.predict(model, inputs, ev, timer=timer)
    got = enc.decrypt_batch(outputs, 16, plan, 1, encoder, ckks.Decryptor(plan.params, keys.secret_key))
    assert np.max(np.abs(got - net.forward(x))) < 2.0**-12
    with pytest.raises(ValueError, match="expects 3 or 6 input ciphertexts"):
        enc.predict(model, inputs[:4], ev)


def test_a_dense_output_block_of_zero_weights_is_its_bias():
    """Dense 3 -> 8 with 4 features per ciphertext and weights of outputs 4..7 all zero: the second output
    ciphertext has no diagonal to multiply, only its bias."""
    rng = np.random.default_rng(14)
    weights = rng.uniform(-1, 1, (3, 8))
    weights[:, 4:] = 0.0
    net = PlainNetwork([Dense(weights, rng.uniform(-1, 1, 8), "dense"), Polynomial(SQUARE, "square"),
                        Dense(rng.uniform(-1, 1, (8, 1)), rng.uniform(-1, 1, 1), "out")], 3)
    x = rng.uniform(0, 1, (8, 3))
    plan = plan_inference(net, x, batch_size=8, frac_bits=20, security=None, ring_degree=64)
    assert plan.features_per_ciphertext == 4
    got = run(net, x, plan, encrypt_weights=False)
    assert np.max(np.abs(got - net.forward(x))) < 2.0**-12


@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_single_record_packing_of_an_all_zero_dense_is_its_bias(encrypt_weights):
    """Single-record (BSGS) packing, last Dense all zero: no diagonal is nonzero, the output is the bias."""
    rng = np.random.default_rng(15)
    net = PlainNetwork([Dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 4), "dense"),
                        Polynomial(SQUARE, "square"), Dense(np.zeros((4, 1)), np.array([0.3]), "out")], 3)
    x = rng.uniform(0, 1, (1, 3))
    plan = plan_inference(net, x, batch_size=1, frac_bits=20, security=None, ring_degree=64, packing="single")
    got = run(net, x, plan, encrypt_weights)
    assert np.max(np.abs(got - net.forward(x))) < 2.0**-12


@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_a_bias_reaches_an_output_with_no_unrotated_diagonal(encrypt_weights):
    """The bias of an output goes into the sum that is not rotated afterwards: with every such diagonal
    zero (skipped), it is added after the rotations instead. Batch packing with rotated outputs (Dense
    8 -> 4, 4 features per ciphertext: 2 ciphertexts in, 1 out), and single-record packing (giant step 0)."""
    rng = np.random.default_rng(16)
    rotated = rng.uniform(-1, 1, (8, 4))
    for k in range(2):
        for h in range(4):
            rotated[4 * k + h, h] = 0.0  # block diagonal j = 0 of output ciphertext 0: W[4k + h, h]
    giant = rng.uniform(-1, 1, (4, 4))
    for t in range(4):
        giant[t, t] = giant[(t + 1) % 4, t] = 0.0  # diagonals 0 and 1 of W^T: giant step 0 of n1 = 2
    for packing, weights in (("batch", rotated), ("single", giant)):
        d_in = weights.shape[0]
        net = PlainNetwork([Dense(rng.uniform(-1, 1, (3, d_in)), rng.uniform(-1, 1, d_in), "dense"),
                            Polynomial(SQUARE, "square"), Dense(weights, rng.uniform(-1, 1, 4), "middle"),
                            Polynomial(SQUARE, "square_1"),
                            Dense(rng.uniform(-1, 1, (4, 1)), np.array([0.1]), "out")], 3)
        x = rng.uniform(0, 1, (8 if packing == "batch" else 1, 3))
        plan = plan_inference(net, x, batch_size=x.shape[0], frac_bits=20, security=None, ring_degree=64,
                              packing=packing)
        keys = enc.compile_model(net, plan, ckks.Encoder(plan.params)).layers[2].diagonals
        assert keys and not any(key[-1] == 0 for key in keys if packing == "batch") and (
            packing == "batch" or not any(g == 0 for g, _b in keys)), sorted(keys)
        got = run(net, x, plan, encrypt_weights)
        assert np.max(np.abs(got - net.forward(x))) < 2.0**-12 * max(1.0, np.ptp(net.forward(x)))


def test_base_primes_of_the_scales_size_are_still_base_primes():
    """Values near 2^58 need a base of S + I + 1 = 120 bits: two 60-bit primes, the scale's size. The output
    level is 1 (two base primes), not what counting 60-bit primes would say (-1); the plan reads back from its
    file and the encrypted result matches float64 to the planned precision."""
    from nn import artifacts
    from nn.plan import plan_problem

    rng = np.random.default_rng(1)
    net = PlainNetwork([Dense(rng.uniform(-1, 1, (3, 4)) * 4e8, np.zeros(4), "d"), Polynomial(SQUARE, "s"),
                        Dense(rng.uniform(-1, 1, (4, 1)), np.zeros(1), "o")], 3)
    x = rng.uniform(0, 1, (8, 3))
    plan = plan_inference(net, x, batch_size=8, frac_bits=20, security=None, ring_degree=64)
    assert plan.params.moduli_bits[:2] == (60, 60) and plan.params.scale_bits == 60
    assert sum(plan.params.moduli_bits[:2]) >= plan.params.scale_bits + plan.int_bits + 1
    assert plan.output_level == 1 and plan_problem(plan) == ""
    assert artifacts.plan_from_dict(json.loads(json.dumps(artifacts.plan_to_dict(plan)))) == plan
    got, want = run(net, x, plan, encrypt_weights=False), net.forward(x)
    assert np.max(np.abs(got - want)) < 2.0**-20 * np.max(np.abs(want))


@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_prepared_weights_are_held_once_and_predict_the_same(encrypt_weights):
    """After prepare_weights the layers' diagonals and biases are views into the prepared groups (the loaded
    copies can be freed), with the same values, and a second prediction from them matches the network."""
    rng = np.random.default_rng(15)
    net = small_network(rng)
    x = rng.uniform(-1, 1, (8, 6))
    plan = plan_inference(net, x, batch_size=8, frac_bits=20, security=None, ring_degree=64)
    keys = ckks.KeyGenerator(plan.params, seed=5)
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key, seed=6)
    model = enc.compile_model(net, plan, encoder, encryptor if encrypt_weights else None)
    before = {(i, key): w.data.copy() for i, layer in enumerate(model.layers) if isinstance(layer, enc.CompiledDense)
              for key, w in layer.diagonals.items()}
    biases = {i: {m: b.data.copy() for m, b in layer.biases.items()} for i, layer in enumerate(model.layers)
              if isinstance(layer, enc.CompiledDense)}
    ev = ckks.Evaluator(plan.params, relin_key=keys.relin_key(), galois_keys=keys.galois_keys(plan.rotation_steps))
    prepared = enc.prepare_weights(model, ev)
    for (i, key), data in before.items():
        held, group = model.layers[i].diagonals[key], prepared[(i,) + key].group
        assert np.array_equal(held.data, data) and np.shares_memory(held.data, group.data)
    for i, layer_biases in biases.items():
        for m, data in layer_biases.items():
            held, group = model.layers[i].biases[m], prepared[("bias", i, m)].group
            assert np.array_equal(held.data, data) and np.shares_memory(held.data, group.data)
    outputs = enc.predict(model, enc.encrypt_batch(x, plan, encoder, encryptor), ev, prepared)
    got = enc.decrypt_batch(outputs, 8, plan, 1, encoder, ckks.Decryptor(plan.params, keys.secret_key))
    assert np.max(np.abs(got - net.forward(x))) < 2.0**-12 * max(1.0, np.ptp(net.forward(x)))


@pytest.mark.parametrize("encrypt_weights", [False, True])
def test_the_servers_predictions_are_the_same_bytes_at_every_thread_count(encrypt_weights):
    """Server.predict_bytes (threaded loading and hashing, the *_many operations, the parallel copies and
    kernels) at 1 thread and at every thread: byte-identical predictions, which decrypt to the network."""
    from nn.server import Server, keys_id

    if ckks.available_threads() < 2:
        pytest.skip("this machine has one core: no second thread count to compare with")
    rng = np.random.default_rng(16)
    net = small_network(rng, d_in=6, hidden=(5,))
    x = rng.uniform(-1, 1, (16, 6))
    plan = plan_inference(net, x, batch_size=16, frac_bits=20, security=None, ring_degree=64)
    assert plan.client_rotations  # the first layer takes client-sent rotations, the last rotates
    keys = ckks.KeyGenerator(plan.params, seed=9)
    bundle = ckks.to_bytes(ckks.ServerBundle(plan.params, keys.public_key(), keys.relin_key(),
                                             keys.galois_keys(plan.rotation_steps)))
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key, seed=10)
    model = enc.compile_model(net, plan, encoder, encryptor if encrypt_weights else None)
    model.keys = keys_id(bundle) if encrypt_weights else None
    data = artifacts.ciphertexts_to_bytes(enc.encrypt_batch(x, plan, encoder, encryptor),
                                          {"records": 16, "keys": keys_id(bundle), "batch": 0, "first_record": 0})
    before = ckks.get_threads()
    try:
        answers = {}
        for count in (1, ckks.available_threads()):
            ckks.set_threads(count)
            answers[count] = Server(bundle, artifacts.model_to_bytes(model)).predict_bytes(data, "the batch")
    finally:
        ckks.set_threads(before)
    first, *others = answers.values()
    assert all(other == first for other in others)
    outputs, info = artifacts.ciphertexts_with_info(first, plan.params)
    got = enc.decrypt_batch(outputs, 16, plan, 1, encoder, ckks.Decryptor(plan.params, keys.secret_key))
    assert np.max(np.abs(got - net.forward(x))) < 2.0**-12 and info["records"] == 16
