"""Client and server of the HElayers flow exchange bytes only; the server's context cannot decrypt."""

from __future__ import annotations

import numpy as np
import pytest

from reference import load_pyhelayers
from reference.parties import HelayersClient, HelayersServer, compile_profile, load_plain_model
from reference.profile import run_requirements

pytestmark = [pytest.mark.helayers, pytest.mark.tensorflow]


def _first_prediction_tile(h, context, prediction_bytes):
    """The first ciphertext of the encrypted predictions, loaded into ``context``.

    Returns every intermediate object too: pyhelayers' accessors return views into their parent, which
    must stay alive while the tile is used.
    """
    data = h.load_encrypted_data(context, prediction_bytes)
    batch = data.get_batch(0)
    tensor = batch.get_item(0)
    return tensor.get_tile_by_flat_index(0), (data, batch, tensor)


def test_server_context_has_no_secret_key(tiny_model_dir, numpy_forward):
    h = load_pyhelayers()
    plain = load_plain_model(h, str(tiny_model_dir / "model.json"), str(tiny_model_dir / "model.h5"))
    profile = compile_profile(h, plain, run_requirements(h, ["SEAL_CKKS"], 16, True, 7, 30), "tiny")
    client = HelayersClient(h, profile)
    context_bytes = client.context_bytes()
    server = HelayersServer(h, context_bytes)
    server.load_model(client.encrypt_model(plain))
    x = np.random.default_rng(3).uniform(-1.0, 1.0, (16, 3))
    prediction_bytes = server.predict(client.encrypt_data(x))

    # The bytes the server got, loaded into a fresh context: no secret key, decryption refused.
    fresh = h.load_he_context(context_bytes)
    assert not fresh.has_secret_key()
    with pytest.raises(RuntimeError, match="secret key"):
        fresh.save_secret_key()
    tile, _keep = _first_prediction_tile(h, fresh, prediction_bytes)
    with pytest.raises(RuntimeError, match="secret key"):
        h.Encoder(fresh).decrypt_decode_double(tile)

    # Control: the client's context decrypts the very same ciphertext, and the flow's result is right.
    assert client.context.has_secret_key()
    tile, _keep = _first_prediction_tile(h, client.context, prediction_bytes)
    slots = h.Encoder(client.context).decrypt_decode_double(tile)
    assert np.all(np.isfinite(slots))
    decrypted = client.decrypt_predictions(prediction_bytes)
    assert np.max(np.abs(decrypted - numpy_forward(tiny_model_dir, x))) < 1e-4
