"""A minimal progress display for long work: shown on a terminal, silent when piped or quiet.

Every layer (ckks, nn, reference, validation) uses this one helper so that ``--quiet`` and piping
behave the same everywhere.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Reports ``label: done/total (elapsed)`` on one rewritten line of a terminal.

    ``enabled=None`` means: on when ``stream`` is a terminal. Use as a context manager, call
    ``advance(n)``; ``iterate(items)`` wraps an iterable.
    """

    def __init__(self, label: str, total: int | None = None, *, enabled: bool | None = None,
                 stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units of work as done."""
        self.done += n
        self._draw()

    def iterate(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``, advancing by one after each."""
        for item in items:
            yield item
            self.advance()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        self.stream.write(f"\r{self.label}: {count} ({now - self._start:.1f} s)")
        self.stream.flush()
