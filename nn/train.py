"""Keras training of the paper's network; the only module of the project that imports TensorFlow.

Network (CryptoNets-style, Gilad-Bachrach et al. 2016): Dense(20) -> x^2 -> Dense(5) -> x^2 -> Dense(1),
followed by a last x^2 in the paper recipe. Saved with tf-keras 2 (``model.to_json()`` + ``save_weights``),
the format HElayers' Keras parser reads: it needs ``batch_input_shape`` in the JSON and Keras 2 weight
paths, and it recognises the activation by the class name ``SquareActivation`` (a Dense layer's
``activation=`` is ignored by HElayers, so every Dense layer here is linear).

Recipes:
- ``paper``: row-L2-normalised features, last layer squared (output read as a probability), binary
  cross-entropy, Adam lr 0.01, 3 epochs, batch 32, seed 1, threshold 0.5, exactly as the paper.
- ``clinical``: min-max features, linear last layer (a logit; the client applies the sigmoid after
  decryption), binary cross-entropy on logits, L2 weight penalty 1e-4, Adam lr 0.003, 20 epochs, batch
  64; then :func:`balance_ranges` rescales the trained layers so every intermediate value stays near
  [-1, 1] and the output within [-16, 16] (HElayers runs with 7 integer bits), and the decision threshold
  is chosen on the validation split (the largest threshold whose validation recall of class 1 reaches
  ``target_recall`` = 0.87). Both recipes train on the training split whose minority class is replicated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from nn.data import Splits, save_xy  # noqa: E402
from nn.model import METADATA_FILE  # noqa: E402


@dataclass(frozen=True)
class Recipe:
    """Every choice that defines a training run; written to ``ckkslab.json`` beside the model."""

    name: str
    hidden: tuple[int, ...] = (20, 5)
    square_output: bool = False
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 0.01
    l2: float = 0.0
    balance_ranges: bool = False
    logit_limit: float | None = None
    target_recall: float | None = None

    @property
    def output(self) -> str:
        """"probability" when the last layer is squared (paper), "logit" when it is linear."""
        return "probability" if self.square_output else "logit"


RECIPES = {
    "paper": Recipe(name="paper", square_output=True),
    "clinical": Recipe(name="clinical", epochs=20, batch_size=64, learning_rate=0.003, l2=1e-4,
                       balance_ranges=True, logit_limit=16.0, target_recall=0.87),
}


class SquareActivation(keras.layers.Layer):
    """x -> x^2 element-wise; HElayers recognises this layer by its class name."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs * inputs


def build_model(recipe: Recipe, input_dim: int) -> keras.Sequential:
    """The Sequential network of ``recipe`` for ``input_dim`` features (linear Dense layers only)."""
    regularizer = keras.regularizers.L2(recipe.l2) if recipe.l2 > 0 else None
    layers: list[keras.layers.Layer] = [keras.layers.InputLayer(input_shape=(input_dim,))]
    for units in recipe.hidden:
        layers += [keras.layers.Dense(units, kernel_regularizer=regularizer), SquareActivation()]
    layers.append(keras.layers.Dense(1, kernel_regularizer=regularizer))
    if recipe.square_output:
        layers.append(SquareActivation())
    return keras.Sequential(layers)


class _ProgressCallback(keras.callbacks.Callback):
    def __init__(self, advance: Callable[[int], None]) -> None:
        super().__init__()
        self._advance = advance

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._advance(1)


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray, target_recall: float) -> float:
    """The largest threshold t with recall(p > t) >= target_recall on the given (validation) records.

    Raises:
        ValueError: no positive record, or target_recall outside (0, 1].
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    positives = np.sort(p[np.asarray(labels).reshape(-1) == 1])
    if positives.size == 0 or not 0 < target_recall <= 1:
        raise ValueError("need positive records and a target recall in (0, 1]")
    missed = int(np.floor((1.0 - target_recall) * positives.size))  # positives allowed at or below t
    t = positives[missed] if missed < positives.size else positives[-1]
    return float(np.nextafter(t, -np.inf))  # strictly below the kept positive: p > t keeps it


def balance_ranges(model: keras.Sequential, x: np.ndarray, target: float = 1.0,
                   logit_limit: float | None = None) -> float:
    """Rescale the layers so that every value on ``x`` stays small; returns the output's divisor.

    Hidden units (exact): for Dense_i -> x^2 -> Dense_{i+1}, multiplying unit j's column of W_i and b_i[j]
    by c_j multiplies its square by c_j^2; dividing row j of W_{i+1} by c_j^2 leaves Dense_{i+1}'s output,
    and so the network, unchanged. c_j = target / max|a_j| keeps the values before and after each square
    within about [-target, target] (HElayers runs with 7 integer bits).
    Output (a temperature): when the last layer is a linear logit whose largest |value| on ``x`` exceeds
    ``logit_limit``, its weights and bias are divided by T = max / logit_limit. Decisions are unchanged when
    the threshold is chosen afterwards (sigmoid(s / T) is monotone in s); probabilities become
    sigmoid(s / T).
    """
    layers = model.layers
    values = np.asarray(x, dtype=np.float64)
    for i, layer in enumerate(layers):
        weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
        follows = layers[i + 1:i + 3]
        if (isinstance(layer, keras.layers.Dense) and len(follows) == 2
                and isinstance(follows[0], SquareActivation) and isinstance(follows[1], keras.layers.Dense)):
            peak = np.abs(values @ weights[0] + weights[1]).max(axis=0)
            scale = np.where(peak > 0, target / np.where(peak > 0, peak, 1.0), 1.0)
            weights = [weights[0] * scale, weights[1] * scale]
            layer.set_weights(weights)
            following = [np.asarray(w, dtype=np.float64) for w in follows[1].get_weights()]
            follows[1].set_weights([following[0] / scale[:, None] ** 2, following[1]])
        if isinstance(layer, keras.layers.Dense):
            values = values @ weights[0] + weights[1]
        else:
            values = values * values
    last = layers[-1]
    temperature = 1.0
    if logit_limit is not None and isinstance(last, keras.layers.Dense):
        temperature = max(1.0, float(np.abs(values).max()) / logit_limit)
        last.set_weights([np.asarray(w, dtype=np.float64) / temperature for w in last.get_weights()])
    return temperature


def train(recipe: Recipe, splits: Splits, *, seed: int = 1, epochs: int | None = None,
          max_train_rows: int | None = None, advance: Callable[[int], None] | None = None
          ) -> tuple[keras.Sequential, float, dict[str, Any]]:
    """Train ``recipe`` on ``splits``; returns the model, its decision threshold and a training record.

    Deterministic for a fixed seed (``keras.utils.set_random_seed`` and TensorFlow op determinism).
    ``advance(1)`` is called after every batch (progress display).

    Raises:
        ValueError: ``epochs`` or ``max_train_rows`` not positive.
    """
    epochs = recipe.epochs if epochs is None else epochs
    if epochs < 1 or (max_train_rows is not None and max_train_rows < 1):
        raise ValueError("epochs and max_train_rows must be positive")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train = splits.x["train"][:max_train_rows], splits.y["train"][:max_train_rows]
    model = build_model(recipe, x_train.shape[1])
    loss = keras.losses.BinaryCrossentropy(from_logits=not recipe.square_output)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=recipe.learning_rate), loss=loss)
    callbacks = [_ProgressCallback(advance)] if advance is not None else []
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=recipe.batch_size, shuffle=True,
                        validation_data=(splits.x["val"], splits.y["val"]), verbose=0, callbacks=callbacks)
    temperature = 1.0
    if recipe.balance_ranges:
        temperature = balance_ranges(model, x_train, logit_limit=recipe.logit_limit)
    threshold = 0.5
    if recipe.target_recall is not None:
        logits = model.predict(splits.x["val"], batch_size=4096, verbose=0)
        probabilities = 0.5 * (1.0 + np.tanh(0.5 * logits.astype(np.float64)))
        threshold = choose_threshold(probabilities, splits.y["val"], recipe.target_recall)
    record = {**asdict(recipe), "seed": seed, "epochs": epochs, "train_rows": int(len(x_train)),
              "output_temperature": temperature,
              "loss": [float(v) for v in history.history["loss"]],
              "val_loss": [float(v) for v in history.history["val_loss"]],
              "tensorflow": tf.__version__, "keras": keras.__version__}
    return model, threshold, record


def save_model(directory: str | Path, model: keras.Sequential, recipe: Recipe, threshold: float,
               splits: Splits, data_record: dict[str, Any], training: dict[str, Any]) -> None:
    """Write model.json, model.h5, x_test.h5, y_test.h5 and ckkslab.json (metadata) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.json").write_text(model.to_json())
    model.save_weights(directory / "model.h5")
    save_xy(directory, "test", splits.x["test"], splits.y["test"])
    metadata = {
        "recipe": recipe.name, "output": recipe.output, "threshold": threshold,
        "feature_scaling": data_record["feature_scaling"], "feature_names": data_record["feature_names"],
        "data": {k: v for k, v in data_record.items() if k not in ("feature_scaling", "feature_names")},
        "training": training,
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
