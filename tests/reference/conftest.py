"""A tiny Keras model (Dense(4) -> SquareActivation -> Dense(1)) saved as HElayers reads it, and its
float64 forward pass computed with numpy from the weights read back with h5py (independent of HElayers)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest


def _build_tiny_model(directory: Path) -> None:
    """Save model.json (``to_json``) and model.h5 (``save_weights``) of a fixed-weight tiny network."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as keras

    class SquareActivation(keras.layers.Layer):
        def call(self, inputs):
            return inputs * inputs

    model = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), SquareActivation(),
                              keras.layers.Dense(1)])
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in model.get_weights()])
    (directory / "model.json").write_text(model.to_json())
    model.save_weights(str(directory / "model.h5"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the tiny model's model.json and model.h5 (needs tf-keras)."""
    pytest.importorskip("tf_keras")
    directory = tmp_path_factory.mktemp("tiny_model")
    _build_tiny_model(directory)
    return directory


def _numpy_forward(model_dir: Path, x: np.ndarray) -> np.ndarray:
    """float64 forward pass: Dense (x @ kernel + bias) in model.json order, x*x for SquareActivation."""
    layers = json.loads((model_dir / "model.json").read_text())["config"]["layers"]
    out = np.asarray(x, dtype=np.float64)
    with h5py.File(model_dir / "model.h5", "r") as weights:
        for layer in layers:
            name = layer["config"]["name"]
            if layer["class_name"] == "Dense":
                group = weights[name][name]
                out = out @ group["kernel:0"][()].astype(np.float64) + group["bias:0"][()].astype(np.float64)
            elif layer["class_name"] == "SquareActivation":
                out = out * out
    return out


@pytest.fixture(scope="session")
def numpy_forward():
    """The independent float64 forward pass ``f(model_dir, x)``."""
    return _numpy_forward
