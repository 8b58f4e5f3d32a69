"""The HElayers flow on a tiny model: decrypted predictions against an independent numpy forward pass,
model files HElayers cannot parse, bad input, and a server that never holds the secret key."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from reference.helayers_flow import (
    STAGES,
    HelayersInputError,
    HelayersModelError,
    run_helayers,
)

pytestmark = [pytest.mark.helayers, pytest.mark.tensorflow]

TOLERANCE = 1e-4


def _inputs(rows: int, width: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (rows, width))


@pytest.mark.parametrize("encrypt_weights", [True, False])
def test_predictions_match_numpy_forward(tiny_model_dir, numpy_forward, encrypt_weights):
    x = _inputs(32)
    res = run_helayers(tiny_model_dir, x, batch_size=16, backend="SEAL", encrypt_weights=encrypt_weights,
                       threads=1, quiet=True)
    expected = numpy_forward(tiny_model_dir, x)
    assert res.predictions.shape == expected.shape == (32, 1)
    assert res.predictions.dtype == np.float64
    assert np.max(np.abs(res.predictions - expected)) < TOLERANCE
    assert set(res.timings_s) == set(STAGES)
    assert all(t > 0 for t in res.timings_s.values())
    assert set(res.cpu_timings_s) == set(STAGES)
    assert all(res.sizes_bytes[k] > 0 for k in ("context", "model", "data", "predictions"))
    assert res.peak_rss_bytes > 0
    p = res.params
    assert p["backend"] == "SEAL" and p["encrypt_weights"] is encrypt_weights and p["threads"] == 1
    assert p["ring_degree"] == 2 * p["slots"] and p["num_primes"] == len(p["moduli"]) >= 2
    assert p["batch_size"] == 16 and p["batches"] == 2
    assert p["integer_part_bits"] >= 7 and p["fractional_part_bits"] >= 30
    kind = "ciphertexts" if encrypt_weights else "plaintexts"
    assert p["model_weight_tiles"][kind] > 0
    assert p["ciphertexts_data"] > 0 and p["ciphertexts_predictions"] > 0


def test_paper_context_options_fall_back_to_seal(tiny_model_dir, numpy_forward):
    x = _inputs(16, seed=1)
    res = run_helayers(tiny_model_dir, x, batch_size=16, backend="paper", quiet=True)
    assert res.params["backend_not_in_build"] == ["HEaaN_CKKS"]
    assert res.params["backend"] == "SEAL"
    assert np.max(np.abs(res.predictions - numpy_forward(tiny_model_dir, x))) < TOLERANCE


def test_unsupported_layer_names_model_json(tiny_model_dir, tmp_path):
    shutil.copy(tiny_model_dir / "model.h5", tmp_path / "model.h5")
    text = (tiny_model_dir / "model.json").read_text().replace("SquareActivation", "CubeActivation")
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(HelayersModelError, match=r"model\.json.*CubeActivation"):
        run_helayers(tmp_path, _inputs(16), batch_size=16, quiet=True)


def test_unreadable_weights_name_model_h5(tiny_model_dir, tmp_path):
    shutil.copy(tiny_model_dir / "model.json", tmp_path / "model.json")
    (tmp_path / "model.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(HelayersModelError, match=r"model\.h5"):
        run_helayers(tmp_path, _inputs(16), batch_size=16, quiet=True)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json"):
        run_helayers(tmp_path, _inputs(16), batch_size=16, quiet=True)


@pytest.mark.parametrize("x, kwargs", [
    (_inputs(16, width=4), {}),                          # wrong number of features
    (_inputs(20), {}),                                   # rows not a multiple of batch_size
    (np.full((16, 3), np.nan), {}),                      # not finite
    (_inputs(16), {"backend": "HElib"}),                 # unknown backend
    (_inputs(16), {"threads": 0}),                       # no threads
])
def test_bad_input_is_a_named_error(tiny_model_dir, x, kwargs):
    with pytest.raises(HelayersInputError):
        run_helayers(tiny_model_dir, x, batch_size=16, quiet=True, **kwargs)
