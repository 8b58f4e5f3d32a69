"""The order in which key switching's inner product hands rows to the threads (its results, at every order
and thread count, are checked by the noise and thread tests)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from ckks.rlwe.keyswitch import _spread_order


@pytest.mark.parametrize("n_q", range(1, 9))
@pytest.mark.parametrize("n_special", [1, 2, 3])
def test_the_order_holds_every_row_once_and_spreads_the_special_rows(n_q, n_special):
    order = [int(r) for r in _spread_order(n_q, n_special)]
    assert sorted(order) == list(range(n_q + n_special))
    assert [r for r in order if r < n_q] == list(range(n_q))  # the chain rows keep their order
    special = [i for i, r in enumerate(order) if r >= n_q]
    gaps = {b - a for a, b in pairwise(special)} | {n_q + n_special - special[-1] + special[0]}
    assert max(gaps) - min(gaps) <= 1  # evenly spaced, around the end too


def test_each_half_of_the_clinical_model_s_rows_holds_one_special_row():
    """Six chain rows and two special ones (the top level of the shipped model): a two-thread split into
    halves gives each thread one row with a transform more, not both to the second thread."""
    order = [int(r) for r in _spread_order(6, 2)]
    assert sum(r >= 6 for r in order[:4]) == sum(r >= 6 for r in order[4:]) == 1
