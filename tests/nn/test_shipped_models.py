"""The two shipped models: files, value ranges for HElayers' 7 integer bits, targets, HElayers' own parse."""

from pathlib import Path

import numpy as np
import pytest

from nn.data import load_xy
from nn.metrics import classification_metrics
from nn.model import load_network

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.parametrize("name", ["paper", "clinical"])
def test_shipped_batches(name):
    net = load_network(MODELS / name)
    x, y = load_xy(MODELS / name)
    assert x.shape == (32768, 14) and y.shape == (32768, 1)  # 8 batches of 4096
    assert set(np.unique(y)) == {0.0, 1.0}
    assert net.input_dim == 14 and net.output_dim == 1
    assert net.depth == (6 if name == "paper" else 5)
    assert net.metadata["recipe"] == name


def test_clinical_ranges_and_targets():
    net = load_network(MODELS / "clinical")
    x, y = load_xy(MODELS / "clinical")
    trace = net.forward_trace(x)
    assert max(float(np.abs(values).max()) for values in trace) < 32  # well inside 2^7
    probabilities, _ = net.decide(trace[-1])
    metrics = classification_metrics(y, probabilities, net.decision.threshold)
    assert metrics["recall_1"] >= 0.85 and metrics["precision_1"] >= 0.5 and metrics["auc"] >= 0.96


def test_paper_hidden_ranges():
    # The paper recipe's squared output reaches about 151 (it collapsed to "diabetic" for everyone with
    # seed 1); that is the recipe's own result and is reported, not tuned away. Hidden values stay small.
    net = load_network(MODELS / "paper")
    x, _ = load_xy(MODELS / "paper")
    assert max(float(np.abs(values).max()) for values in net.forward_trace(x)[:-1]) < 32


@pytest.mark.helayers
@pytest.mark.parametrize("name", ["paper", "clinical"])
def test_helayers_parses_and_agrees(name):
    pyhelayers = pytest.importorskip("pyhelayers")
    plain = pyhelayers.NeuralNetPlain()
    directory = MODELS / name
    plain.init_from_files(pyhelayers.PlainModelHyperParams(),
                          [str(directory / "model.json"), str(directory / "model.h5")])
    x, _ = load_xy(directory)
    theirs = np.asarray(plain.predict([x[:4096]])[0]).reshape(-1, 1)
    ours = load_network(directory).forward(x[:4096])
    np.testing.assert_allclose(theirs, ours, rtol=1e-9, atol=1e-9)
