"""The order in which key switching's inner product offers its rows to the threads (its results, at every
order and thread count, are checked by the noise and thread tests)."""

from __future__ import annotations

import pytest

from ckks.rlwe.keyswitch import _row_order


@pytest.mark.parametrize("n_q", range(1, 9))
@pytest.mark.parametrize("n_special", [1, 2, 3])
def test_the_order_holds_every_row_once_the_special_rows_first(n_q, n_special):
    order = [int(r) for r in _row_order(n_q, n_special)]
    assert sorted(order) == list(range(n_q + n_special))
    assert order[:n_special] == list(range(n_q, n_q + n_special))  # the longest jobs first
    assert order[n_special:] == list(range(n_q))  # then the chain rows, in order
