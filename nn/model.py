"""The plaintext reference network: a Keras Sequential of Dense and polynomial layers, read with h5py only.

Reads ``model.json`` (``model.to_json()``) and ``model.h5`` (weights) as written by tf-keras 2
(``save_weights`` or a full ``save``) and by Keras 3 (``save_weights``, ``layers/<name>/vars/<i>``), and
runs the network in float64 numpy. Supported layers, as HElayers' Keras parser accepts them: InputLayer,
Dense with a linear activation (HElayers silently ignores a Dense layer's ``activation=``, so any other is
refused), ``SquareActivation`` (x -> x^2) and ``PolyActivation`` (coefficients in the config key ``coeffs``
or ``coefs``, low to high degree). Anything else is refused with an error naming the layer.

An optional ``ckkslab.json`` beside the files says how to read the output: ``"output"`` is
``"probability"`` (the network's output is the score) or ``"logit"`` (the client applies the sigmoid after
decryption), and ``"threshold"`` the decision threshold; absent means probability and 0.5.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SQUARE = (0.0, 0.0, 1.0)
METADATA_FILE = "ckkslab.json"


class ModelFormatError(ValueError):
    """A model directory is missing a file, or holds a layer, activation or weight this network cannot run."""


@dataclass(frozen=True)
class Dense:
    """A fully connected layer: y = x @ weights + bias, weights (in, out), bias (out,)."""

    weights: np.ndarray
    bias: np.ndarray
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights + self.bias


@dataclass(frozen=True)
class Polynomial:
    """An element-wise polynomial activation: y = sum_k coeffs[k] * x^k (coefficients low to high degree)."""

    coeffs: tuple[float, ...]
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        result = np.zeros_like(x)
        for coeff in reversed(self.coeffs):  # Horner
            result = result * x + coeff
        return result

    @property
    def depth(self) -> int:
        """Multiplicative depth: 1 for x^2; ceil(log2 degree) squarings + 1 scalar product otherwise."""
        degree = len(self.coeffs) - 1
        if self.coeffs == SQUARE:
            return 1
        if degree <= 0:
            return 0
        return math.ceil(math.log2(degree)) + 1


@dataclass(frozen=True)
class Decision:
    """How scores become decisions: ``output`` "probability" or "logit", decided 1 when p > threshold."""

    output: str = "probability"
    threshold: float = 0.5


class PlainNetwork:
    """A loaded network: ``layers`` run in order on float64 records (n, input_dim)."""

    def __init__(self, layers: list[Dense | Polynomial], input_dim: int,
                 decision: Decision | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.layers = list(layers)
        self.input_dim = int(input_dim)
        self.decision = decision if decision is not None else Decision()
        self.metadata = dict(metadata or {})
        self.output_dim = self.input_dim
        for layer in self.layers:
            if isinstance(layer, Dense):
                if layer.weights.shape[0] != self.output_dim:
                    raise ModelFormatError(f"layer '{layer.name}' expects {layer.weights.shape[0]} inputs "
                                           f"but receives {self.output_dim}")
                self.output_dim = layer.weights.shape[1]

    @property
    def depth(self) -> int:
        """Multiplicative depth: 1 per Dense (plaintext weights) plus each polynomial's depth."""
        return sum(1 if isinstance(layer, Dense) else layer.depth for layer in self.layers)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"input must be (n, {self.input_dim}); got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("input holds NaN or infinite values")
        return x

    def forward_trace(self, x: np.ndarray) -> list[np.ndarray]:
        """The input and the output of every layer, in order (for range calibration).

        Raises:
            ValueError: ``x`` is not (n, input_dim) or not finite.
        """
        values = [self._check_input(x)]
        for layer in self.layers:
            values.append(layer(values[-1]))
        return values

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's float64 output (n, output_dim).

        Raises:
            ValueError: ``x`` is not (n, input_dim) or not finite.
        """
        return self.forward_trace(x)[-1]

    def decide(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and 0/1 decisions (n,) from network outputs (n, 1) or (n,).

        p = sigmoid(s) = 1 / (1 + exp(-s)) when the output is a logit, else p = s; decision = p > threshold.

        Raises:
            ValueError: scores are not one per record, or not finite.
        """
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim != 1:
            raise ValueError(f"need one score per record, got shape {scores.shape}")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores hold NaN or infinite values")
        if self.decision.output == "logit":
            probabilities = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the sigmoid without overflow
        else:
            probabilities = scores
        return probabilities, (probabilities > self.decision.threshold).astype(np.int64)


def _layer_specs(model_json: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    if model_json.get("class_name") != "Sequential":
        found = model_json.get("class_name")
        raise ModelFormatError(f"only Sequential models are supported, found '{found}'")
    config = model_json.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError("model.json holds no layer list")
    input_dim = None
    for spec in layers:
        cfg = spec.get("config", {})
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape is not None and input_dim is None:
            input_dim = int(shape[-1])
    build = config.get("build_input_shape") if isinstance(config, dict) else None
    if input_dim is None and build:
        input_dim = int(build[-1])
    return layers, input_dim


# The largest weight array read: far beyond any network this project encrypts (a Dense of 2^11 x 2^11), small
# enough that a file declaring a huge sparse dataset is refused before anything is allocated.
MAX_WEIGHTS_PER_ARRAY = 1 << 22


def _read_array(dataset: h5py.Dataset, layer: str) -> np.ndarray:
    """A weight array as float64, refused by name (before reading) if it declares more than 2^22 values."""
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFormatError(f"model.h5: the weights of layer '{layer}' are not an array")
    if dataset.size > MAX_WEIGHTS_PER_ARRAY:
        raise ModelFormatError(f"model.h5: layer '{layer}' declares a weight array of shape {dataset.shape} "
                               f"(more than {MAX_WEIGHTS_PER_ARRAY} values); refusing to read it")
    return np.asarray(dataset, dtype=np.float64)


def _keras2_weights(root: h5py.Group, name: str) -> list[np.ndarray]:
    if name not in root:
        raise ModelFormatError(f"model.h5 has no weights for layer '{name}'")
    group = root[name]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    return [_read_array(group[n], name) for n in names]


def _keras3_weights(layers_group: h5py.Group, name: str) -> list[np.ndarray]:
    group = layers_group.get(name)
    if group is None:  # fall back on the layer name Keras 3 records on each vars group
        for candidate in layers_group.values():
            vars_group = candidate.get("vars")
            if vars_group is not None and vars_group.attrs.get("name") == name:
                group = candidate
                break
    if group is None or "vars" not in group:
        raise ModelFormatError(f"model.h5 has no weights for layer '{name}'")
    variables = group["vars"]
    return [_read_array(variables[str(i)], name) for i in range(len(variables))]


def _read_weights(path: Path, names: list[str]) -> dict[str, list[np.ndarray]]:
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFormatError(f"{path} is not an HDF5 file: {exc}") from exc
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" in root.attrs:
            return {name: _keras2_weights(root, name) for name in names}
        if "layers" in root:
            return {name: _keras3_weights(root["layers"], name) for name in names}
        raise ModelFormatError(f"{path} is neither a Keras 2 nor a Keras 3 weights file")


def _dense(spec: dict[str, Any], weights: list[np.ndarray]) -> Dense:
    cfg = spec["config"]
    name = cfg.get("name", "?")
    activation = cfg.get("activation", "linear")
    if activation not in (None, "linear"):
        raise ModelFormatError(f"Dense layer '{name}' has activation '{activation}'; only linear Dense "
                               "layers are supported (HElayers ignores it): use a SquareActivation layer")
    units = int(cfg["units"])
    use_bias = cfg.get("use_bias", True)
    if len(weights) != (2 if use_bias else 1):
        raise ModelFormatError(f"Dense layer '{name}' has {len(weights)} weight arrays in model.h5")
    kernel = weights[0]
    bias = weights[1] if use_bias else np.zeros(units)
    if kernel.ndim != 2 or kernel.shape[1] != units or bias.shape != (units,):
        raise ModelFormatError(f"Dense layer '{name}' has kernel {kernel.shape} and bias {bias.shape} "
                               f"for {units} units")
    return Dense(weights=kernel, bias=bias, name=name)


def _polynomial(spec: dict[str, Any]) -> Polynomial:
    cfg = spec.get("config", {})
    name = cfg.get("name", "?")
    if spec["class_name"] == "SquareActivation":
        return Polynomial(coeffs=SQUARE, name=name)
    coeffs = cfg.get("coeffs", cfg.get("coefs"))
    if not isinstance(coeffs, list) or not coeffs or not all(isinstance(c, int | float) for c in coeffs):
        raise ModelFormatError(f"PolyActivation layer '{name}' needs a list of numbers 'coeffs' "
                               "in its config")
    return Polynomial(coeffs=tuple(float(c) for c in coeffs), name=name)


def _read_decision(directory: Path) -> tuple[Decision, dict[str, Any]]:
    path = directory / METADATA_FILE
    if not path.is_file():
        return Decision(), {}
    try:
        metadata = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc}") from exc
    output = metadata.get("output", "probability")
    threshold = metadata.get("threshold", 0.5)
    if output not in ("probability", "logit"):
        raise ModelFormatError(f"{path}: output must be 'probability' or 'logit', not {output!r}")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ModelFormatError(f"{path}: threshold must be a finite number, not {threshold!r}")
    return Decision(output=output, threshold=float(threshold)), metadata


def load_network(model_dir: str | Path) -> PlainNetwork:
    """Load ``model.json`` + ``model.h5`` (+ optional ``ckkslab.json``) from ``model_dir``.

    Raises:
        ModelFormatError: a file is missing or malformed, a layer or activation is unsupported (named),
            or weight shapes disagree with the architecture.
    """
    directory = Path(model_dir)
    json_path, weights_path = directory / "model.json", directory / "model.h5"
    for path in (json_path, weights_path):
        if not path.is_file():
            raise ModelFormatError(f"{directory} has no {path.name}")
    try:
        model_json = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{json_path} is not valid JSON: {exc}") from exc
    if not isinstance(model_json, dict):
        raise ModelFormatError(f"{json_path} does not describe a Keras model")
    specs, input_dim = _layer_specs(model_json)
    kinds = []
    for spec in specs:
        kind = spec.get("class_name")
        if kind not in ("InputLayer", "Dense", "SquareActivation", "PolyActivation"):
            name = spec.get("config", {}).get("name", "?")
            raise ModelFormatError(f"unsupported layer '{name}' of type '{kind}': only Dense, "
                                   "SquareActivation and PolyActivation layers are supported")
        kinds.append(kind)
    dense_names = [spec["config"]["name"] for spec, kind in zip(specs, kinds, strict=True) if kind == "Dense"]
    weights = _read_weights(weights_path, dense_names)
    layers: list[Dense | Polynomial] = []
    for spec, kind in zip(specs, kinds, strict=True):
        if kind == "Dense":
            layers.append(_dense(spec, weights[spec["config"]["name"]]))
        elif kind != "InputLayer":
            layers.append(_polynomial(spec))
    if not layers:
        raise ModelFormatError(f"{json_path} has no Dense or activation layer")
    if input_dim is None:
        first_dense = next((layer for layer in layers if isinstance(layer, Dense)), None)
        if first_dense is None:
            raise ModelFormatError(f"{json_path} gives no input shape")
        input_dim = first_dense.weights.shape[0]
    decision, metadata = _read_decision(directory)
    return PlainNetwork(layers, input_dim, decision, metadata)
