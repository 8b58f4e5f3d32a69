"""The h5py-only network loader: Keras 2 and Keras 3 layouts, refusals, forward, decisions, depth."""

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nn.errors import DataSchemaError
from nn.model import MAX_JSON_BYTES, Dense, ModelFormatError, Polynomial, load_network
from nn.plan import layer_depth

W1 = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -0.5]])
B1 = np.array([0.5, 1.0, 0.0])
W2 = np.array([[1.0], [-2.0], [4.0]])
B2 = np.array([-1.0])
POLY = [1.0, -2.0, 0.5]  # 1 - 2x + x^2/2


def _layers(input_key: str = "batch_input_shape") -> list[dict]:
    return [
        {"class_name": "InputLayer", "config": {input_key: [None, 2], "name": "input_1"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "linear"}},
        {"class_name": "SquareActivation", "config": {"name": "square_activation"}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 1, "activation": "linear",
                                           "use_bias": True}},
        {"class_name": "PolyActivation", "config": {"name": "poly", "coeffs": POLY}},
    ]


def write_keras2(directory, layers=None, weights=None) -> None:
    """The layout tf-keras 2 ``save_weights`` writes: layer_names, weight_names, <layer>/<layer>/kernel:0."""
    directory.mkdir(parents=True, exist_ok=True)
    layers = _layers() if layers is None else layers
    (directory / "model.json").write_text(json.dumps({"class_name": "Sequential", "config": {
        "name": "sequential", "layers": layers}, "keras_version": "2.21.0", "backend": "tensorflow"}))
    weights = {"dense": (W1, B1), "dense_1": (W2, B2)} if weights is None else weights
    names = [spec["config"]["name"] for spec in layers if spec["class_name"] != "InputLayer"]
    with h5py.File(directory / "model.h5", "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            group = handle.create_group(name)
            arrays = weights.get(name, ())
            group.attrs["weight_names"] = np.array([f"{name}/{k}:0".encode() for k in ("kernel", "bias")[
                :len(arrays)]])
            for key, array in zip(("kernel", "bias"), arrays, strict=False):
                group[f"{name}/{key}:0"] = array.astype(np.float32)


def write_keras3(directory) -> None:
    """The layout Keras 3 ``save_weights`` writes: layers/<name>/vars/<i>; JSON with batch_shape."""
    directory.mkdir(parents=True, exist_ok=True)
    layers = _layers("batch_shape")
    (directory / "model.json").write_text(json.dumps({"module": "keras", "class_name": "Sequential",
                                                      "config": {"name": "sequential", "layers": layers}}))
    with h5py.File(directory / "model.h5", "w") as handle:
        for name, arrays in (("dense", (W1, B1)), ("dense_1", (W2, B2)), ("square_activation", ())):
            group = handle.create_group(f"layers/{name}/vars")
            group.attrs["name"] = name
            for i, array in enumerate(arrays):
                group[str(i)] = array.astype(np.float32)


def by_hand(record: list[float]) -> float:
    """The test network written out scalar by scalar."""
    hidden = [B1[j] + sum(record[i] * W1[i, j] for i in range(2)) for j in range(3)]
    squared = [h * h for h in hidden]
    out = B2[0] + sum(squared[j] * W2[j, 0] for j in range(3))
    return POLY[0] + POLY[1] * out + POLY[2] * out * out


@pytest.mark.parametrize("writer", [write_keras2, write_keras3])
def test_forward_matches_hand_computation(tmp_path, writer):
    writer(tmp_path)
    net = load_network(tmp_path)
    assert (net.input_dim, net.output_dim) == (2, 1)
    assert isinstance(net.layers[0], Dense)
    assert net.layers[1] == Polynomial((0.0, 0.0, 1.0), "square_activation")
    assert net.layers[3].coeffs == tuple(POLY)
    records = [[1.0, 2.0], [-0.5, 0.25], [0.0, 0.0]]
    out = net.forward(np.array(records))
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out[:, 0], [by_hand(r) for r in records], rtol=1e-12)
    trace = net.forward_trace(np.array(records))
    assert len(trace) == 5 and trace[2].shape == (3, 3)
    # depth: Dense 1 + square 1 + Dense 1 + degree-2 polynomial 2 ((x/2 - 2) * x + 1: two products in a row)
    assert net.depth == 5


def test_unknown_layer_is_named(tmp_path):
    layers = _layers()
    layers.insert(3, {"class_name": "Dropout", "config": {"name": "dropout_7", "rate": 0.5}})
    write_keras2(tmp_path, layers)
    with pytest.raises(ModelFormatError, match="'dropout_7' of type 'Dropout'"):
        load_network(tmp_path)


def test_dense_activation_refused(tmp_path):
    layers = _layers()
    layers[1]["config"]["activation"] = "relu"
    write_keras2(tmp_path, layers)
    with pytest.raises(ModelFormatError, match="'dense' has activation 'relu'"):
        load_network(tmp_path)


def test_missing_files_and_bad_weights_refused(tmp_path):
    write_keras2(tmp_path)
    (tmp_path / "model.h5").unlink()
    with pytest.raises(ModelFormatError, match="no model.h5"):
        load_network(tmp_path)
    write_keras2(tmp_path, weights={"dense": (W1[:1], B1), "dense_1": (W2, B2)})
    with pytest.raises(ModelFormatError, match="'dense' expects 1 inputs but receives 2"):
        load_network(tmp_path)
    write_keras2(tmp_path, weights={"dense": (W1, B1[:2]), "dense_1": (W2, B2)})
    with pytest.raises(ModelFormatError, match="'dense' has kernel"):
        load_network(tmp_path)
    write_keras2(tmp_path, weights={"dense": (W1, B1)})
    with pytest.raises(ModelFormatError, match="dense_1"):
        load_network(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_network(tmp_path)


def test_bad_poly_config_refused(tmp_path):
    layers = _layers()
    layers[4]["config"] = {"name": "poly"}
    write_keras2(tmp_path, layers)
    with pytest.raises(ModelFormatError, match="PolyActivation layer 'poly'"):
        load_network(tmp_path)


def test_logit_decisions_and_threshold(tmp_path):
    write_keras2(tmp_path)
    (tmp_path / "ckkslab.json").write_text(json.dumps({"output": "logit", "threshold": 0.7}))
    net = load_network(tmp_path)
    scores = np.array([[-800.0], [0.0], [math.log(0.7 / 0.3) + 1e-9], [3.0]])
    probabilities, decisions = net.decide(scores)
    expected = [0.0, 0.5, 0.7, 1 / (1 + math.exp(-3.0))]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-9, atol=1e-300)
    assert decisions.tolist() == [0, 0, 1, 1]
    (tmp_path / "ckkslab.json").write_text(json.dumps({"output": "odds"}))
    with pytest.raises(ModelFormatError, match="output must be"):
        load_network(tmp_path)


def test_probability_default_and_input_checks(tmp_path):
    write_keras2(tmp_path)
    net = load_network(tmp_path)
    assert (net.decision.output, net.decision.threshold) == ("probability", 0.5)
    assert net.decide(np.array([0.5, 0.51]))[1].tolist() == [0, 1]  # strictly greater, as HElayers
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        net.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        net.forward(np.array([[np.nan, 0.0]]))
    for complex_input in (np.array([[1 + 2j, 0.0]]), [[1j, 0.5]]):  # refused, not cut to its real parts
        with pytest.raises(DataSchemaError, match="records given to the network are complex numbers"):
            net.forward(complex_input)
    with pytest.raises(ValueError, match="the scores are complex numbers"):
        net.decide(np.array([0.5 + 0.1j]))


def test_dense_layers_sharing_a_name_refused(tmp_path):
    """model.h5 holds one weight set per layer name: two Dense layers of the same name would both get it."""
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    layers = _layers()[:3]
    layers[1]["config"]["units"] = 2
    write_keras2(tmp_path, layers, weights={"dense": (w, np.zeros(2))})
    layers.append({"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "linear"}})
    model_json = {"class_name": "Sequential", "config": {"layers": layers}}
    (tmp_path / "model.json").write_text(json.dumps(model_json))
    with pytest.raises(ModelFormatError, match="model.json: several Dense layers are named 'dense'"):
        load_network(tmp_path)


def store_outside(handle: h5py.File, name: str, values: np.ndarray, how: str, directory) -> None:
    """Replace dataset ``name`` by one whose ``values`` are stored outside ``handle``'s file: raw data in an
    external file, a virtual dataset over another HDF5 file, or an external link to a dataset of it."""
    del handle[name]
    other = directory / "other.h5"
    with h5py.File(other, "w") as source:
        source["values"] = values
    if how == "external-raw-file":
        raw = directory / "raw.bin"
        values.astype("<f8").tofile(raw)
        handle.create_dataset(name, shape=values.shape, dtype="<f8", external=[(str(raw), 0, values.nbytes)])
    elif how == "virtual-dataset":
        layout = h5py.VirtualLayout(shape=values.shape, dtype="<f8")
        layout[...] = h5py.VirtualSource(str(other), "values", shape=values.shape)
        handle.create_virtual_dataset(name, layout)
    else:
        handle[name] = h5py.ExternalLink(str(other), "values")


@pytest.mark.parametrize(("how", "where"), [
    pytest.param("external-raw-file", r"external files \['.*raw\.bin'\]", id="external-raw-file"),
    pytest.param("virtual-dataset", r"other datasets \(it is a virtual dataset\)", id="virtual-dataset"),
    pytest.param("external-link", r"another HDF5 file \(.*other\.h5, through an external link\)",
                 id="external-link"),
])
def test_weights_stored_outside_model_h5_refused(tmp_path, how, where):
    """Such a kernel would copy another local file into the weights; the network loads without it."""
    model = tmp_path / "model"
    write_keras2(model)
    with h5py.File(model / "model.h5", "a") as handle:
        store_outside(handle, "dense/dense/kernel:0", W1, how, tmp_path)
    message = rf"model\.h5: the weights of layer 'dense' are stored in {where}, not in model\.h5; refusing"
    with pytest.raises(ModelFormatError, match=message):
        load_network(model)


@pytest.mark.parametrize(("coeffs", "levels"), [
    pytest.param((0.0, 0.0, 1.0), 1, id="x^2: one square"),
    pytest.param((0.5, -2.0), 1, id="linear: one product by a constant"),
    pytest.param((0.5, -2.0, 0.0), 1, id="degree 2 with no x^2 term is linear"),
    pytest.param((0.0, 0.0, 2.0), 2, id="2x^2: (2x) * x"),
    pytest.param((0.0, 1.0, 1.0), 2, id="x^2 + x: (x + 1) * x"),
    pytest.param(tuple(POLY), 2, id="x^2/2 - 2x + 1: (x/2 - 2) * x + 1"),
])
def test_polynomial_depth_is_the_levels_its_encrypted_evaluation_takes(coeffs, levels):
    """The levels counted by hand from how nn.encrypted evaluates the activation, and the planner's count."""
    activation = Polynomial(coeffs, "p")
    assert activation.depth == levels
    assert layer_depth(activation) == levels


@pytest.mark.parametrize(("coeffs", "levels"), [
    pytest.param((3.0,), 0, id="a constant: no product"),
    pytest.param((0.0, 0.0, 0.0, 1.0), 2, id="x^3: x^2 * x"),
    pytest.param((1.0, 1.0, 1.0, 1.0), 2, id="degree 3: (x + 1) * x^2 + (x + 1)"),
    pytest.param((0.0,) * 4 + (1.0,), 3, id="x^4: (x^2)^2 then a constant"),
])
def test_polynomial_depth_beyond_the_encrypted_degrees(coeffs, levels):
    """Degrees the encryption does not run still get a depth for the report: that of evaluating by powers."""
    assert Polynomial(coeffs, "p").depth == levels


def test_a_huge_model_json_is_refused_before_it_is_read(tmp_path):
    """A sparse 128 MiB model.json (nothing allocated on disk): refused by its size, not read into memory."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "models" / "clinical", tmp_path / "m",
                    ignore=shutil.ignore_patterns("x_*", "y_*"))
    with open(tmp_path / "m" / "model.json", "r+b") as handle:
        handle.truncate(2 * MAX_JSON_BYTES)
    with pytest.raises(ModelFormatError, match="refusing to read it"):
        load_network(tmp_path / "m")
