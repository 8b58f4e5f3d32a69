"""Randomness of the mutations. A ``Draw`` gives bounded integers and bytes, from a seeded numpy Generator
(the long run: reproducible from ``--seed``) or from hypothesis (the short fuzz in the tests: shrinkable,
replayable). A run replays only if every mutation asks for the same choices in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Draw(Protocol):
    """Where mutations get their choices: a seeded numpy Generator (the script) or hypothesis (the tests)."""

    def int(self, lo: int, hi: int) -> int: ...  # inclusive bounds

    def bytes(self, n: int) -> bytes: ...


class NumpyDraw:
    """Choices from a seeded PCG64 (reproducible long runs)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1)) if hi > lo else lo

    def bytes(self, n: int) -> bytes:
        return self.rng.bytes(n)


class HypothesisDraw:
    """Choices drawn from hypothesis's ``st.data()`` (the short fuzz in the tests; shrinkable, replayable)."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies

        self.data, self.st = data, strategies

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi)) if hi > lo else lo

    def bytes(self, n: int) -> bytes:
        return self.data.draw(self.st.binary(min_size=n, max_size=n))


def choice(draw: Draw, items: Sequence[Any]) -> Any:
    return items[draw.int(0, len(items) - 1)]
