"""Shared fixtures of the validation tests: a tiny model written with h5py in tf-keras 2 layout, with test
records."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from nn.data import save_xy

WEIGHTS = {"dense": (np.array([[0.5, -0.3, 0.2, 0.1], [0.4, 0.6, -0.5, 0.3], [-0.2, 0.1, 0.7, -0.6]]),
                     np.array([0.1, -0.2, 0.05, 0.0])),
           "dense_1": (np.array([[0.8], [-0.4], [0.6], [0.3]]), np.array([-0.1]))}


def write_tiny_model(directory: Path, records: int = 64) -> Path:
    """Dense(3 -> 4) -> x^2 -> Dense(4 -> 1), as tf-keras' to_json + save_weights write it, plus test data."""
    directory.mkdir(parents=True, exist_ok=True)

    def dense(name: str, units: int) -> dict:
        return {"class_name": "Dense", "config": {"name": name, "trainable": True, "dtype": "float32",
                                                  "units": units, "activation": "linear", "use_bias": True}}

    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "dtype": "float32",
                                                      "name": "dense_input"}},
              dense("dense", 4), {"class_name": "SquareActivation", "config": {"name": "square_activation"}},
              dense("dense_1", 1)]
    model = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
             "keras_version": "2.21.0", "backend": "tensorflow"}
    (directory / "model.json").write_text(json.dumps(model))
    with h5py.File(directory / "model.h5", "w") as handle:
        handle.attrs["backend"], handle.attrs["keras_version"] = "tensorflow", "2.21.0"
        handle.attrs["layer_names"] = np.array([b"dense", b"square_activation", b"dense_1"])
        handle.create_group("square_activation").attrs["weight_names"] = np.array([], dtype=np.float64)
        for name, (kernel, bias) in WEIGHTS.items():
            group = handle.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            group.create_dataset(f"{name}/kernel:0", data=kernel.astype(np.float32))
            group.create_dataset(f"{name}/bias:0", data=bias.astype(np.float32))
    x = np.random.default_rng(3).uniform(-1.0, 1.0, (records, 3))
    y = (np.arange(records) % 3 == 0).astype(np.float64).reshape(-1, 1)
    save_xy(directory, "test", x, y)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """A maker of tiny model directories (``write_tiny_model``) holding ``records`` test records."""
    return lambda records: write_tiny_model(tmp_path_factory.mktemp("tiny"), records)
