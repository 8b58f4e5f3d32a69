"""Running many batches: a progress line with records/s and ETA, and files that are either whole or absent.

``RecordProgress`` reuses ``ckks.progress.Progress`` (shown on a terminal, silent when piped or quiet) and
writes the rate and the time left into its label. ``write_atomic`` writes to a temporary name beside the
target and renames it (POSIX rename is atomic), so that a Ctrl-C or a crash leaves only complete files.
``check_each_once`` is the check on merged results: no record lost, none counted twice. ``BatchSink`` is how
an engine hands each finished batch to a caller that keeps them (``ckkslab compare`` resuming), with that
batch's share of the engine's costs, which ``add_costs`` sums.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ckks.progress import Progress

from .errors import WorkflowError

#: What an engine calls as each batch is done: ``(batch index, outputs (records, outputs), record ids
#: (records,), costs)``. ``costs`` maps a group (``timings_s``, ``sizes_bytes``, ...) to that batch's share of
#: the engine's totals of the same name: summed over the batches with ``add_costs``, the shares give them.
BatchSink = Callable[[int, np.ndarray, np.ndarray, dict[str, dict[str, float]]], None]


def add_costs(totals: dict[str, dict[str, float]], costs: dict[str, dict[str, float]]) -> None:
    """Add one batch's ``costs`` (group -> name -> value) into ``totals``, name by name (a new one from 0)."""
    for group, values in costs.items():
        target = totals.setdefault(group, {})
        for name, value in values.items():
            target[name] = target.get(name, 0) + value


class RecordProgress:
    """``label (R records/s, ETA T s): k/K (elapsed)`` over K batches of records.

    ``enabled``: as ``Progress`` (None: on when stderr is a terminal). Use as a context manager and call
    ``advance(records)`` after each batch; batches found done already (resume) are counted with
    ``skip(records)``, which moves the count but not the rate. The rate's clock starts when the object is
    made: make it when the batches start (once a Dask cluster is up), so that a start-up is not counted as
    time spent on records.
    """

    def __init__(self, label: str, batches: int, records: int, enabled: bool | None = None) -> None:
        self.label, self.records_total = label, records
        self.records_done = self.records_timed = 0
        self._start = time.perf_counter()
        self.bar = Progress(label, batches, enabled=enabled)

    def __enter__(self) -> RecordProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    @property
    def rate(self) -> float | None:
        """Records per second over the batches computed in this run (None before the first one)."""
        elapsed = time.perf_counter() - self._start
        return self.records_timed / elapsed if self.records_timed and elapsed > 0 else None

    def advance(self, records: int) -> None:
        """One more batch of ``records`` computed."""
        self.records_done += records
        self.records_timed += records
        rate = self.rate
        eta = (self.records_total - self.records_done) / rate if rate else 0.0
        self.bar.label = f"{self.label} ({rate:.0f} records/s, ETA {eta:.0f} s)"
        self.bar.advance()

    def skip(self, records: int) -> None:
        """One more batch of ``records`` that was already done (not counted in the rate)."""
        self.records_done += records
        self.bar.advance()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, flushed, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_each_once(record_ids: np.ndarray, what: str) -> None:
    """Every record id 0 .. n - 1 present exactly once among the n merged ``record_ids``.

    Raises:
        WorkflowError: naming ``what`` and the first ids present twice or missing.
    """
    ids = np.asarray(record_ids, dtype=np.int64).reshape(-1)
    if ids.size and ids.min() < 0:
        raise WorkflowError(f"{what}: negative record ids {ids[ids < 0][:5].tolist()}")
    counts = np.bincount(ids, minlength=ids.size)
    twice, absent = np.flatnonzero(counts > 1), np.flatnonzero(counts[: ids.size] == 0)
    extra = np.flatnonzero(counts[ids.size :]) + ids.size
    if twice.size or absent.size or extra.size:
        raise WorkflowError(f"{what} do not hold each record once: ids present twice {twice[:5].tolist()}, "
                            f"missing {absent[:5].tolist()}, beyond the {ids.size} records "
                            f"{extra[:5].tolist()}")
