"""The agreement math on crafted outputs whose errors, bits and decision counts are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from validation.metrics import agreement, per_sample_errors, precision_bits

REFERENCE = np.array([[0.0], [1.0], [2.0], [4.0]])  # output range R = 4
ERRORS = np.array([[0.5], [-0.25], [0.25], [0.0]])  # max 0.5, mean |e| = 1.0 / 4 = 0.25


def test_bits_of_powers_of_two():
    assert precision_bits(0.5) == 1.0
    assert precision_bits(2.0**-30) == 30.0
    assert precision_bits(4.0) == -2.0  # an error larger than 1 gives negative bits
    assert precision_bits(0.0) is None  # exact


@pytest.mark.parametrize("bad", [-1e-3, math.nan, math.inf])
def test_bits_refuse_impossible_errors(bad):
    with pytest.raises(ValueError, match="absolute error"):
        precision_bits(bad)


def test_errors_bits_and_relative_bits_known_by_hand():
    decisions = np.array([0, 1, 1, 1])
    a = agreement(REFERENCE + ERRORS, REFERENCE, decisions, decisions)
    assert a["max_abs_error"] == 0.5 and a["mean_abs_error"] == 0.25
    assert a["bits_min"] == 1.0 and a["bits_mean"] == 2.0  # -log2(0.5), -log2(0.25)
    assert a["output_range"] == 4.0
    assert a["bits_min_relative"] == 3.0 and a["bits_mean_relative"] == 4.0  # -log2(0.5/4), -log2(0.25/4)
    assert (a["decisions_equal"], a["decisions_total"], a["decisions_differ_at"]) == (4, 4, [])


def test_counts_and_lists_differing_decisions():
    a = agreement(REFERENCE, REFERENCE, np.array([0, 1, 0, 0]), np.array([[0], [1], [1], [1]]))
    assert (a["decisions_equal"], a["decisions_total"]) == (2, 4)
    assert a["decisions_differ_at"] == [2, 3]
    listed = agreement(REFERENCE, REFERENCE, np.array([1, 0, 0, 0]), np.array([0, 1, 1, 1]), listed=2)
    assert listed["decisions_differ_at"] == [0, 1] and listed["decisions_equal"] == 0


def test_identical_outputs_are_exact_and_a_constant_reference_has_no_relative_bits():
    same = agreement(REFERENCE, REFERENCE, np.zeros(4), np.zeros(4))
    assert same["max_abs_error"] == 0.0 and same["bits_min"] is None and same["bits_mean"] is None
    constant = np.ones((4, 1))
    flat = agreement(constant + ERRORS, constant, np.zeros(4), np.zeros(4))
    assert flat["bits_min"] == 1.0 and flat["bits_min_relative"] is None


def test_worst_output_of_each_record():
    reference = np.zeros((3, 2))
    outputs = np.array([[0.1, -0.3], [0.0, 0.0], [-2.0, 1.0]])
    assert np.array_equal(per_sample_errors(outputs, reference), [0.3, 0.0, 2.0])
    assert np.array_equal(per_sample_errors(np.array([1.0, -1.0]), np.zeros(2)), [1.0, 1.0])
    a = agreement(outputs, reference, np.zeros(3), np.zeros(3))
    assert a["max_abs_error"] == 2.0 and a["mean_abs_error"] == pytest.approx(3.4 / 6)


@pytest.mark.parametrize("outputs, decisions, message", [
    (np.zeros((3, 1)), np.zeros(4), "shape"),
    (np.array([[0.0], [np.nan], [0.0], [0.0]]), np.zeros(4), "NaN"),
    (np.zeros((4, 1)), np.zeros(3), "one decision per record"),
])
def test_bad_inputs_are_refused(outputs, decisions, message):
    with pytest.raises(ValueError, match=message):
        agreement(outputs, REFERENCE, decisions, np.zeros(4))
