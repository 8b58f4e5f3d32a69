"""The plaintext reference network: a Keras Sequential of Dense and polynomial layers, read with h5py only.

Reads ``model.json`` (``model.to_json()``) and ``model.h5`` (weights, read by ``nn.keras_weights``) as
written by tf-keras 2 (``save_weights`` or a full ``save``) and by Keras 3 (``save_weights``,
``layers/<name>/vars/<i>``), and runs the network in float64 numpy. Supported layers, as HElayers' Keras
parser accepts them: InputLayer, Dense with a linear activation (HElayers silently ignores a Dense layer's
``activation=``, so any other is refused), ``SquareActivation`` (x -> x^2) and ``PolyActivation``
(coefficients in the config key ``coeffs`` or ``coefs``, low to high degree). Anything else is refused with
an error naming the layer.

An optional ``ckkslab.json`` beside the files says how to read the output: ``"output"`` is
``"probability"`` (the network's output is the score) or ``"logit"`` (the client applies the sigmoid after
decryption), and ``"threshold"`` the decision threshold; absent means probability and 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nn.errors import (  # re-exported: from nn.model import ModelFormatError
    DataSchemaError,
    ModelFormatError,
    refuse_complex,
)
from nn.hdf5_sandbox import read_isolated
from nn.jsonfile import parse_json
from nn.keras_weights import MAX_WEIGHTS_PER_ARRAY, read_weights

SQUARE = (0.0, 0.0, 1.0)
METADATA_FILE = "ckkslab.json"
SUPPORTED_LAYERS = ("InputLayer", "Dense", "SquareActivation", "PolyActivation")


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
        """Levels this activation consumes when evaluated encrypted: see :func:`activation_depth`."""
        return activation_depth(self.coeffs)


def activation_depth(coeffs: Sequence[float]) -> int:
    """Levels an element-wise polynomial sum_k coeffs[k] * x^k consumes, as ``nn.encrypted`` evaluates it.

    - degree 1, or degree 2 with a zero x^2 coefficient: 1 (c1 * x + c0: one plaintext product, one rescale);
    - exactly x^2, coefficients (0, 0, 1): 1 (one ciphertext square);
    - any other degree 2: 2 ((c2 * x + c1) at one level, then times x at the next; 2 x^2 too).

    The encrypted evaluation supports degrees 1 and 2 only (``nn.plan`` refuses the others). For the plaintext
    network's report: a constant takes 0 levels, a degree d > 2 ceil(log2(d + 1)), the depth of the usual
    evaluation by powers of x (the same formula gives 1 and 2 for a general degree 1 and 2).
    """
    degree = len(coeffs) - 1
    if degree <= 0:
        return 0
    linear = degree == 1 or (degree == 2 and coeffs[2] == 0.0)
    if linear or tuple(coeffs) == SQUARE:
        return 1
    return math.ceil(math.log2(degree + 1))


@dataclass(frozen=True)
class Decision:
    """How scores become decisions: ``output`` "probability" or "logit", decided 1 when p > threshold."""

    output: str = "probability"
    threshold: float = 0.5


class PlainNetwork:
    """A loaded network: ``layers`` run in order on float64 records (n, input_dim).

    Raises:
        ModelFormatError: a Dense layer's input width is not the previous layer's output width, or a layer's
            weights, bias or polynomial coefficients are complex (the network is real).
    """

    def __init__(self, layers: list[Dense | Polynomial], input_dim: int,
                 decision: Decision | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.layers = list(layers)
        self.input_dim = int(input_dim)
        self.decision = decision if decision is not None else Decision()
        self.metadata = dict(metadata or {})
        self.output_dim = self.input_dim
        for layer in self.layers:
            if isinstance(layer, Polynomial):
                refuse_complex(layer.coeffs, f"the coefficients of layer '{layer.name}'", ModelFormatError)
            if isinstance(layer, Dense):
                for part, values in (("weights", layer.weights), ("bias values", layer.bias)):
                    refuse_complex(values, f"the {part} of layer '{layer.name}'", ModelFormatError)
                if layer.weights.shape[0] != self.output_dim:
                    raise ModelFormatError(f"layer '{layer.name}' expects {layer.weights.shape[0]} inputs "
                                           f"but receives {self.output_dim}")
                self.output_dim = layer.weights.shape[1]

    @property
    def depth(self) -> int:
        """Multiplicative depth: 1 per Dense (plaintext weights) plus each polynomial's depth."""
        return sum(1 if isinstance(layer, Dense) else layer.depth for layer in self.layers)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` as float64, checked to be (n, input_dim) finite real numbers."""
        try:
            x = np.asarray(refuse_complex(x, "the records given to the network", DataSchemaError),
                           dtype=np.float64)
        except DataSchemaError:
            raise
        except (TypeError, ValueError) as exc:
            raise DataSchemaError(f"input must be an array of numbers: {exc}") from None
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise DataSchemaError(f"input must be (n, {self.input_dim}); got shape {x.shape}: give records "
                                  f"of the {self.input_dim} features the model was trained on")
        if not np.all(np.isfinite(x)):
            raise DataSchemaError("input holds NaN or infinite values: remove or repair those records")
        return x

    def forward_trace(self, x: np.ndarray) -> list[np.ndarray]:
        """The input and the output of every layer, in order (for range calibration).

        Raises:
            DataSchemaError: ``x`` is not (n, input_dim) numbers, or complex, or not finite.
        """
        values = [self._check_input(x)]
        for layer in self.layers:
            values.append(layer(values[-1]))
        return values

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's float64 output (n, output_dim).

        Raises:
            DataSchemaError: ``x`` is not (n, input_dim) numbers, or complex, or not finite.
        """
        return self.forward_trace(x)[-1]

    def decide(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and 0/1 decisions (n,) from network outputs (n, 1) or (n,).

        p = sigmoid(s) = 1 / (1 + exp(-s)) when the output is a logit, else p = s; decision = p > threshold.

        Raises:
            ValueError: scores are not one per record, complex, or not finite.
        """
        scores = np.asarray(refuse_complex(scores, "the scores", ValueError), dtype=np.float64)
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


# model.json and ckkslab.json of a real network take kilobytes; a larger file is refused before it is read.
MAX_JSON_BYTES = 1 << 26


def _read_bytes(path: Path) -> bytes:
    """The bytes of ``path`` (at most ``MAX_JSON_BYTES``); a file that cannot be read (permissions, I/O error)
    or is larger is a ModelFormatError."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ModelFormatError(f"{path} holds {path.stat().st_size} bytes, more than the "
                                   f"{MAX_JSON_BYTES} a model description may take; refusing to read it")
        return path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from None


def _positive_int(value: Any, what: str) -> int:
    """``value`` if it is an integer in [1, MAX_WEIGHTS_PER_ARRAY] (JSON true and false are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_WEIGHTS_PER_ARRAY:
        raise ModelFormatError(f"{what} must be a positive integer of at most {MAX_WEIGHTS_PER_ARRAY}, "
                               f"not {value!r:.40}; re-export model.json")
    return value


def _input_width(shape: Any, path: Path, what: str) -> int:
    """The last entry of a Keras input shape such as ``[null, 14]``: a non-empty list ending with a positive
    integer (``what`` names the shape in ``path``)."""
    if not isinstance(shape, list) or not shape:
        raise ModelFormatError(f"{path}: {what} must be a list such as [null, 14], not {shape!r:.40}")
    return _positive_int(shape[-1], f"{path}: the last entry of {what}")


def _check_layer_spec(spec: Any, i: int, path: Path) -> None:
    """A layer entry is an object with a string ``class_name``, an object ``config`` (if any) and a string
    ``name`` in it (if any; a Dense layer must have one: its weights are found by name)."""
    if (not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str)
            or not isinstance(spec.get("config", {}), dict)):
        raise ModelFormatError(f"{path}: layer {i} is not an object with a string 'class_name' and an "
                               "object 'config'; re-export model.json")
    cfg = spec.get("config", {})
    if not isinstance(cfg.get("name", "?"), str) or (spec["class_name"] == "Dense" and "name" not in cfg):
        raise ModelFormatError(f"{path}: layer {i} ({spec['class_name']}) has no string 'name' in its "
                               "config; re-export model.json")


def _layer_specs(model_json: Any, path: Path) -> tuple[list[dict[str, Any]], int | None]:
    """The layer entries of a Sequential ``model.json`` and its input width (None when it gives none).

    Checked: the top level is an object of class Sequential; ``config.layers`` (or ``config`` itself, as old
    Keras writes it) is a non-empty list of layer entries (see ``_check_layer_spec``); the input shape, from
    the first layer that gives one or from ``build_input_shape``, ends with a positive integer.
    """
    if not isinstance(model_json, dict):
        raise ModelFormatError(f"{path} does not describe a Keras model (it is not a JSON object)")
    if model_json.get("class_name") != "Sequential":
        found = model_json.get("class_name")
        raise ModelFormatError(f"only Sequential models are supported, found {found!r:.40}")
    config = model_json.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError(f"{path} holds no layer list")
    input_dim = None
    for i, spec in enumerate(layers):
        _check_layer_spec(spec, i, path)
        cfg = spec.get("config", {})
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape is not None and input_dim is None:
            input_dim = _input_width(shape, path, f"the input shape of layer {i}")
    build = config.get("build_input_shape") if isinstance(config, dict) else None
    if input_dim is None and build:
        input_dim = _input_width(build, path, "build_input_shape")
    return layers, input_dim


def _dense(spec: dict[str, Any], weights: list[np.ndarray]) -> Dense:
    """A Dense layer: linear activation, a positive integer ``units``, a boolean ``use_bias``, and a kernel
    (in, units) and a bias (units,) in model.h5."""
    cfg = spec["config"]
    name = cfg["name"]
    activation = cfg.get("activation", "linear")
    if activation not in (None, "linear"):
        raise ModelFormatError(f"Dense layer '{name}' has activation {activation!r:.40}; only linear Dense "
                               "layers are supported (HElayers ignores it): use a SquareActivation layer")
    units = _positive_int(cfg.get("units"), f"the units of Dense layer '{name}'")
    use_bias = cfg.get("use_bias", True)
    if not isinstance(use_bias, bool):
        raise ModelFormatError(f"Dense layer '{name}': use_bias must be true or false, not {use_bias!r:.40}")
    if len(weights) != (2 if use_bias else 1):
        raise ModelFormatError(f"Dense layer '{name}' has {len(weights)} weight arrays in model.h5")
    kernel = weights[0]
    bias = weights[1] if use_bias else np.zeros(units)
    if kernel.ndim != 2 or kernel.shape[1] != units or bias.shape != (units,):
        raise ModelFormatError(f"Dense layer '{name}' has kernel {kernel.shape} and bias {bias.shape} "
                               f"for {units} units")
    return Dense(weights=kernel, bias=bias, name=name)


def _polynomial(spec: dict[str, Any]) -> Polynomial:
    """x^2, or a PolyActivation whose ``coeffs`` (or ``coefs``) is a non-empty list of numbers."""
    cfg = spec.get("config", {})
    name = cfg.get("name", "?")
    if spec["class_name"] == "SquareActivation":
        return Polynomial(coeffs=SQUARE, name=name)
    coeffs = cfg.get("coeffs", cfg.get("coefs"))
    if (not isinstance(coeffs, list) or not coeffs
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coeffs)):
        raise ModelFormatError(f"PolyActivation layer '{name}' needs a list of numbers 'coeffs' "
                               "in its config")
    return Polynomial(coeffs=tuple(float(c) for c in coeffs), name=name)


def _read_decision(directory: Path) -> tuple[Decision, dict[str, Any]]:
    """ckkslab.json, if present: an object whose ``output`` is "probability" or "logit" and whose
    ``threshold`` is a finite number."""
    path = directory / METADATA_FILE
    if not path.is_file():
        return Decision(), {}
    metadata = parse_json(_read_bytes(path), str(path), ModelFormatError)
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path} must hold a JSON object such as "
                               '{"output": "logit", "threshold": 0.5}')
    output = metadata.get("output", "probability")
    threshold = metadata.get("threshold", 0.5)
    if output not in ("probability", "logit"):
        raise ModelFormatError(f"{path}: output must be 'probability' or 'logit', not {output!r:.40}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ModelFormatError(f"{path}: threshold must be a finite number, not {threshold!r:.40}")
    return Decision(output=output, threshold=float(threshold)), metadata


def load_network(model_dir: str | Path) -> PlainNetwork:
    """Load ``model.json`` + ``model.h5`` (+ optional ``ckkslab.json``) from ``model_dir``.

    model.h5 is read in a child process (``nn.hdf5_sandbox``): a corrupted file that crashes or hangs the
    HDF5 library is refused like any other.

    Raises:
        ModelFormatError: a file is missing or malformed, a layer or activation is unsupported (named), two
            Dense layers share a name, or weight shapes disagree with the architecture.
    """
    directory = Path(model_dir)
    json_path, weights_path = directory / "model.json", directory / "model.h5"
    for path in (json_path, weights_path):
        if not path.is_file():
            raise ModelFormatError(f"{directory} has no {path.name}")
    specs, input_dim = _layer_specs(parse_json(_read_bytes(json_path), str(json_path), ModelFormatError),
                                    json_path)
    dense_names = _dense_names(specs, json_path)
    decision, metadata = _read_decision(directory)  # before model.h5: reading it costs a process
    weights = read_isolated(lambda: read_weights(weights_path, dense_names), str(weights_path),
                            ModelFormatError)
    layers: list[Dense | Polynomial] = []
    for spec in specs:
        if spec["class_name"] == "Dense":
            layers.append(_dense(spec, weights[spec["config"]["name"]]))
        elif spec["class_name"] != "InputLayer":
            layers.append(_polynomial(spec))
    if not layers:
        raise ModelFormatError(f"{json_path} has no Dense or activation layer")
    if input_dim is None:
        first_dense = next((layer for layer in layers if isinstance(layer, Dense)), None)
        if first_dense is None:
            raise ModelFormatError(f"{json_path} gives no input shape")
        input_dim = first_dense.weights.shape[0]
    return PlainNetwork(layers, input_dim, decision, metadata)


def _dense_names(specs: list[dict[str, Any]], path: Path) -> list[str]:
    """The names of the Dense layers, in order. Checked: every layer is of a supported class, and no two
    Dense layers share a name (model.h5 holds one weight set per name: they would silently share it)."""
    for spec in specs:
        if spec["class_name"] not in SUPPORTED_LAYERS:
            name = spec.get("config", {}).get("name", "?")
            raise ModelFormatError(f"unsupported layer {name!r:.40} of type {spec['class_name']!r:.40}: only "
                                   "Dense, SquareActivation and PolyActivation layers are supported")
    names = [spec["config"]["name"] for spec in specs if spec["class_name"] == "Dense"]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ModelFormatError(f"{path}: several Dense layers are named {name!r:.40}; each needs its own "
                                   "name (its weights are found by name in model.h5): re-export model.json")
        seen.add(name)
    return names
