"""Keras training and the saved files: reproducibility, HElayers' layout, Keras' own predictions."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("tf_keras")
pytestmark = pytest.mark.tensorflow

from nn.data import Splits, load_xy  # noqa: E402
from nn.model import load_network  # noqa: E402
from nn.train import RECIPES, SquareActivation, balance_ranges, build_model, choose_threshold, train  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "models"


def _small_splits(seed: int = 0) -> Splits:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(1500, 4))
    y = (x[:, 0] + x[:, 1] ** 2 > 1.0).astype(np.float64).reshape(-1, 1)
    return Splits(x={"train": x[:1000], "val": x[1000:1250], "test": x[1250:]},
                  y={"train": y[:1000], "val": y[1000:1250], "test": y[1250:]}, scaling={"method": "minmax"})


def _weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_training_is_reproducible_for_a_seed():
    splits = _small_splits()
    runs = [train(RECIPES["clinical"], splits, seed=seed, epochs=2)[:2] for seed in (5, 5, 6)]
    (first, t1), (second, t2), (other, _) = runs
    for a, b in zip(_weights(first), _weights(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert t1 == t2
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(first), _weights(other), strict=True))


def test_balance_ranges_keeps_the_function():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = build_model(RECIPES["clinical"], 4)
    x = np.random.default_rng(1).uniform(0, 3, size=(300, 4))
    before = model.predict(x, verbose=0).astype(np.float64)
    temperature = balance_ranges(model, x, logit_limit=0.5)
    after = model.predict(x, verbose=0).astype(np.float64)
    np.testing.assert_allclose(after * temperature, before, rtol=1e-4, atol=1e-5)
    hidden = keras.Sequential(model.layers[:3])(x).numpy()  # dense -> square -> dense_1
    assert np.abs(hidden).max() <= 1.0 + 1e-5
    assert np.abs(after).max() <= 0.5 + 1e-5


def test_choose_threshold_by_hand():
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.9])
    y = np.array([0, 1, 0, 1, 1, 1])
    t = choose_threshold(p, y, 0.75)  # 4 positives: one may be missed -> keep 0.35, 0.4, 0.9
    assert 0.2 <= t < 0.35
    assert choose_threshold(p, y, 1.0) < 0.2
    with pytest.raises(ValueError):
        choose_threshold(p, np.zeros(6), 0.9)


def _keras_float64_predict(model_dir: Path, x: np.ndarray) -> np.ndarray:
    """The shipped model rebuilt and run by tf-keras in float64 (same weights): an independent forward."""
    import tf_keras as keras

    spec = json.loads((model_dir / "model.json").read_text())
    for layer in spec["config"]["layers"]:
        layer["config"]["dtype"] = "float64"
    floatx = keras.backend.floatx()
    keras.backend.set_floatx("float64")  # predict casts its input to floatx
    try:
        model = keras.models.model_from_json(json.dumps(spec),
                                             custom_objects={"SquareActivation": SquareActivation})
        model.load_weights(model_dir / "model.h5")
        return model.predict(x, batch_size=4096, verbose=0)
    finally:
        keras.backend.set_floatx(floatx)


@pytest.mark.parametrize("name", ["paper", "clinical"])
def test_forward_equals_keras_predict_on_the_test_batch(name):
    import tf_keras as keras

    directory = MODELS / name
    x, _ = load_xy(directory)
    ours = load_network(directory).forward(x)
    reference = _keras_float64_predict(directory, x)
    assert np.abs(ours - reference).max() <= 1e-9
    float32 = keras.models.model_from_json((directory / "model.json").read_text(),
                                           custom_objects={"SquareActivation": SquareActivation})
    float32.load_weights(directory / "model.h5")
    predicted = float32.predict(x, batch_size=4096, verbose=0)
    assert np.max(np.abs(ours - predicted) / np.maximum(1.0, np.abs(ours))) <= 1e-5  # float32 rounding


@pytest.mark.parametrize("name", ["paper", "clinical"])
def test_shipped_files_have_the_layout_helayers_reads(name):
    spec = json.loads((MODELS / name / "model.json").read_text())
    layers = spec["config"]["layers"]
    assert layers[0]["class_name"] == "InputLayer" and "batch_input_shape" in layers[0]["config"]
    kinds = [layer["class_name"] for layer in layers[1:]]
    expected = ["Dense", "SquareActivation", "Dense", "SquareActivation", "Dense"]
    assert kinds == expected + (["SquareActivation"] if name == "paper" else [])
    dense = [layer for layer in layers if layer["class_name"] == "Dense"]
    assert all(layer["config"]["activation"] == "linear" for layer in dense)
    with h5py.File(MODELS / name / "model.h5") as handle:
        assert "layer_names" in handle.attrs  # Keras 2 weight layout


def test_keras3_files_load(tmp_path):
    keras3 = pytest.importorskip("keras")
    if int(keras3.__version__.split(".")[0]) < 3:
        pytest.skip("Keras 3 not installed")

    class SquareActivation3(keras3.layers.Layer):
        def call(self, inputs):
            return inputs * inputs

    keras3.utils.set_random_seed(2)
    model = keras3.Sequential([keras3.Input(shape=(6,)), keras3.layers.Dense(7), SquareActivation3(),
                               keras3.layers.Dense(2)])
    spec = json.loads(model.to_json())
    spec["config"]["layers"][2]["class_name"] = "SquareActivation"
    (tmp_path / "model.json").write_text(json.dumps(spec))
    model.save_weights(tmp_path / "model.weights.h5")
    (tmp_path / "model.weights.h5").rename(tmp_path / "model.h5")
    x = np.random.default_rng(3).normal(size=(50, 6))
    ours = load_network(tmp_path).forward(x)
    np.testing.assert_allclose(ours, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
