"""The client/server flow through files: results match the plaintext network, the server's files never hold the
secret key, and files from another context are refused."""

import numpy as np
import pytest

import ckks
from nn import artifacts, workflow
from nn.model import SQUARE, Dense, PlainNetwork, Polynomial


@pytest.fixture
def network():
    rng = np.random.default_rng(11)
    layers = [
        Dense(rng.normal(0, 0.5, (5, 4)), rng.normal(0, 0.1, 4), "d1"),
        Polynomial(SQUARE, "s1"),
        Dense(rng.normal(0, 0.5, (4, 1)), rng.normal(0, 0.1, 1), "d2"),
    ]
    return PlainNetwork(layers, 5)


def toy_keygen(workspace, network, x):
    return workflow.keygen(workspace, network, x, batch_size=8, frac_bits=20, security=None, ring_degree=64)


@pytest.mark.parametrize("encrypt_weights", [True, False])
def test_files_flow_matches_plaintext(tmp_path, network, encrypt_weights):
    x = np.random.default_rng(1).uniform(-1, 1, (8, 5))
    toy_keygen(tmp_path, network, x)
    if encrypt_weights:
        workflow.encrypt_model(tmp_path, network)
    else:
        workflow.encode_model(tmp_path, network)
    workflow.encrypt_data(tmp_path, x)
    workflow.predict(tmp_path)
    scores, path = workflow.decrypt(tmp_path, network)
    assert np.max(np.abs(scores - network.forward(x))) < 2.0**-12
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    assert table.shape == (8, 3)
    np.testing.assert_array_equal(table[:, 2], network.decide(network.forward(x))[1])


def test_flooded_decryption_adds_fresh_noise_of_the_requested_size(tmp_path, network):
    """decrypt(flood_bits=b): each slot moves by about 2^b sqrt(N/2) / scale from the unflooded score, with
    fresh noise at every call; b = scale_bits - 16 makes that about 2^-13.5 here."""
    x = np.random.default_rng(5).uniform(-1, 1, (8, 5))
    plan = toy_keygen(tmp_path, network, x)
    workflow.encode_model(tmp_path, network)
    workflow.encrypt_data(tmp_path, x)
    workflow.predict(tmp_path)
    exact, _ = workflow.decrypt(tmp_path, network)
    bits = plan.params.scale_bits - 16
    first, _ = workflow.decrypt(tmp_path, network, flood_bits=bits)
    second, _ = workflow.decrypt(tmp_path, network, flood_bits=bits)
    assert 2.0**-20 < np.max(np.abs(first - exact)) < 2.0**-8
    assert not np.array_equal(first, second)
    assert np.max(np.abs(first - network.forward(x))) < 2.0**-8


def test_server_files_hold_no_secret_key(tmp_path, network):
    x = np.random.default_rng(2).uniform(-1, 1, (8, 5))
    plan = toy_keygen(tmp_path, network, x)
    workflow.encrypt_model(tmp_path, network)
    workflow.encrypt_data(tmp_path, x)
    secret = ckks.load(tmp_path / "client" / "secret.key", params=plan.params)
    limbs = [row.tobytes()[i : i + 32] for row in secret.ntt for i in range(0, row.nbytes, 256)]
    for name in ("context/bundle.ckks", "context/plan.json", "server/model.ckks", "server/data.ckks"):
        data = (tmp_path / name).read_bytes()
        assert not any(limb in data for limb in limbs), f"{name} contains a piece of the secret key"
    bundle = ckks.load(tmp_path / "context" / "bundle.ckks")
    assert isinstance(bundle, ckks.ServerBundle)
    assert not any(isinstance(v, ckks.SecretKey) for v in vars(bundle).values())
    # Nothing the server holds can act as the key a Decryptor needs.
    for candidate in (bundle.public_key, bundle.relin_key, bundle.galois_keys):
        with pytest.raises(ckks.ParameterError, match="SecretKey"):
            ckks.Decryptor(bundle.params, candidate)


def test_files_from_another_context_are_refused(tmp_path, network):
    x = np.random.default_rng(3).uniform(-1, 1, (8, 5))
    toy_keygen(tmp_path / "a", network, x)
    workflow.encrypt_data(tmp_path / "a", x)
    workflow.keygen(tmp_path / "b", network, x, batch_size=8, frac_bits=20, security=None, ring_degree=128)
    workflow.encrypt_model(tmp_path / "b", network)
    (tmp_path / "b" / "server" / "data.ckks").write_bytes(
        (tmp_path / "a" / "server" / "data.ckks").read_bytes()
    )
    with pytest.raises(artifacts.ArtifactError, match="other parameters|fingerprint"):
        workflow.predict(tmp_path / "b")


def test_an_encrypted_model_of_another_client_is_refused(tmp_path, network):
    """Same parameters (same plan), other keys: the model's key tag differs from the bundle's."""
    x = np.random.default_rng(4).uniform(-1, 1, (8, 5))
    for client in ("a", "b"):
        toy_keygen(tmp_path / client, network, x)
        workflow.encrypt_model(tmp_path / client, network)
    workflow.encrypt_data(tmp_path / "a", x)
    workflow.predict(tmp_path / "a")  # its own model: accepted
    (tmp_path / "a" / "server" / "model.ckks").write_bytes((tmp_path / "b" / "server" / "model.ckks").read_bytes())
    with pytest.raises(workflow.WorkflowError, match="model.ckks was encrypted under another key"):
        workflow.predict(tmp_path / "a")


@pytest.mark.parametrize("edit", [{"records": -1}, {"records": True}, {"records": 2.5}, {"records": 10**6},
                                  {"output_dim": 3}, {"output_dim": 0}, {"records": None}])
def test_predictions_that_misstate_their_shape_are_refused(tmp_path, network, edit):
    x = np.random.default_rng(6).uniform(-1, 1, (8, 5))
    plan = toy_keygen(tmp_path, network, x)
    workflow.encode_model(tmp_path, network)
    workflow.encrypt_data(tmp_path, x)
    workflow.predict(tmp_path)
    path = tmp_path / "server" / "predictions.ckks"
    cts, info = artifacts.ciphertexts_with_info(path.read_bytes(), plan.params)
    path.write_bytes(artifacts.ciphertexts_to_bytes(cts, {**info, **edit}))
    with pytest.raises(workflow.WorkflowError, match="records|outputs|ciphertexts"):
        workflow.decrypt(tmp_path, network)


def test_steps_out_of_order_say_what_to_run(tmp_path, network):
    with pytest.raises(workflow.WorkflowError, match="ckkslab keygen"):
        workflow.predict(tmp_path)
    toy_keygen(tmp_path, network, np.zeros((8, 5)) + 0.5)
    with pytest.raises(workflow.WorkflowError, match="ckkslab encrypt"):
        workflow.predict(tmp_path)
