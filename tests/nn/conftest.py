"""Shared fixtures of the nn tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from nn.model import SQUARE, Dense, PlainNetwork, Polynomial


@pytest.fixture(scope="session")
def toy_network() -> Callable[[int, int, int], PlainNetwork]:
    """A maker of Dense(inputs -> hidden) -> x^2 -> Dense(hidden -> 1) with random weights of a seed."""

    def make(inputs: int, hidden: int, seed: int) -> PlainNetwork:
        rng = np.random.default_rng(seed)
        first = Dense(rng.normal(0, 0.5, (inputs, hidden)), rng.normal(0, 0.1, hidden), "d1")
        last = Dense(rng.normal(0, 0.5, (hidden, 1)), rng.normal(0, 0.1, 1), "d2")
        return PlainNetwork([first, Polynomial(SQUARE, "sq"), last], inputs)

    return make
