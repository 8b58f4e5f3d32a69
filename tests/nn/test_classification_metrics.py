"""Classification metrics against values counted by hand."""

import numpy as np
import pytest

from nn.metrics import classification_metrics


def test_small_case_by_hand():
    y = np.array([[0], [0], [1], [1], [1]])
    p = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    m = classification_metrics(y, p, 0.5)
    # decisions 0 1 0 1 1: tn 1, fp 1, fn 1, tp 2
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert (m["precision_1"], m["recall_1"], m["f1_1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert (m["precision_0"], m["recall_0"], m["f1_0"]) == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    # AUC: of the 6 (negative, positive) pairs, 5 rank the positive higher
    assert m["auc"] == pytest.approx(5 / 6)
    assert m["support"] == [2, 3] and m["records"] == 5


def test_threshold_is_strict_and_degenerate_cases():
    m = classification_metrics([0, 1, 1], [0.5, 0.5, 0.7], 0.5)
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]
    only_negatives = classification_metrics([0, 0], [0.9, 0.1], 0.5)
    assert only_negatives["auc"] is None and only_negatives["precision_1"] == 0.0


@pytest.mark.parametrize("y, p, message", [
    ([0, 1], [0.5], "2 labels but 1"),
    ([0, 2], [0.1, 0.2], "labels must be 0 or 1"),
    ([0, 1], [0.1, np.nan], "finite"),
    ([], [], "no records"),
])
def test_bad_input_refused(y, p, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p, 0.5)
