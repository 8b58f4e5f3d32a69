"""Where the server's batches run: in this process one after another (``local``), or on a Dask cluster.

The client streams encrypted batches (bytes) in and gets encrypted predictions (bytes) back, batch by batch
and in completion order, from ``open_scheduler(...).run(batches)``. With ``dask`` the work runs on
dask.distributed workers (an embedded ``LocalCluster`` on 127.0.0.1, or an existing cluster at
``--scheduler-address``); ``nn.dask_scheduler`` holds that code and is imported only then.

What a worker receives is exactly what the server receives in the file workflow: the serialized
``ckks.ServerBundle`` (it cannot hold a secret key), the compiled model, and each batch's ciphertexts. It
sends back the predictions' ciphertexts; decryption stays with the client.

A batch whose input is bad (a corrupted file, data of another client) comes back as that batch's named
error, and the other batches go on; an error loading the bundle or the model stops the whole run. A batch
that succeeds comes back with what it cost the process that computed it (``ServerCosts``: its compute
seconds and steps, and that process's peak memory), measured there, on a Dask worker as in this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import ckks
from ckks.memory import peak_rss_bytes

from . import encrypted as enc
from .server import Server

SCHEDULERS = ("local", "dask")
#: The errors of one batch that leave the others running: the project's named errors (all ValueError or
#: CkksError), raised by the server on that batch's bytes.
BATCH_ERRORS = (ckks.CkksError, ValueError)


class SchedulerError(ValueError):
    """Scheduler options that do not fit together, a cluster that cannot be reached, or a batch whose
    workers kept dying."""


@dataclass(frozen=True)
class SchedulerOptions:
    """``kind``: local (this process, sequential) or dask; ``workers``: processes of the embedded
    LocalCluster (one Dask thread each, the cores shared between their kernels; default: one per CPU); ``address``: an existing Dask scheduler instead.

    Raises:
        SchedulerError: an unknown kind, fewer than one worker, or workers / an address without dask, or
            both an address and a worker count (an existing cluster has its own workers).
    """

    kind: str = "local"
    workers: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULERS:
            raise SchedulerError(f"unknown scheduler {self.kind!r}; choose from {', '.join(SCHEDULERS)}")
        if self.kind != "dask" and (self.workers is not None or self.address is not None):
            raise SchedulerError("--workers and --scheduler-address need --scheduler dask")
        if self.workers is not None and self.workers < 1:
            raise SchedulerError(f"--workers must be at least 1, got {self.workers}")
        if self.workers is not None and self.address is not None:
            raise SchedulerError("--workers starts an embedded cluster, --scheduler-address uses an existing "
                                 "one (with its own workers): give one of them")


@dataclass(frozen=True)
class Batch:
    """One encrypted batch for the server: its index, its bytes, and its name in error messages."""

    index: int
    data: bytes
    name: str


@dataclass(frozen=True)
class ServerCosts:
    """What one batch cost the server process that computed it.

    ``where``: that process (this process, or a Dask worker's address). ``compute_s``: the wall seconds of
    its ``Server.predict_bytes``; ``cpu_s``: the CPU seconds of the whole process meanwhile (below twice the
    wall on 2 threads when other processes take turns on the cores). ``stage_seconds``: the steps of that
    call (``nn.encrypted.StageTimer``). ``peak_rss_bytes``: that process's peak resident size
    (``ckks.memory.peak_rss_bytes``: since it started, or since a ``PeakRss`` block of this process began).
    """

    where: str
    compute_s: float
    cpu_s: float
    stage_seconds: dict[str, float]
    peak_rss_bytes: int


def predict_measured(server: Server, data: bytes, name: str, where: str) -> tuple[bytes, ServerCosts]:
    """``server.predict_bytes(data, name)`` and what it cost (``ServerCosts``, measured in this process)."""
    timer = enc.StageTimer()
    start, cpu_start = time.perf_counter(), time.process_time()
    predictions = server.predict_bytes(data, name, timer)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return predictions, ServerCosts(where, seconds, cpu, dict(timer.seconds), peak_rss_bytes())


@dataclass(frozen=True)
class Outcome:
    """What came back for one batch: its prediction bytes and their cost, or the named error it failed
    with."""

    index: int
    predictions: bytes | None
    error: Exception | None = None
    costs: ServerCosts | None = None


class Scheduler(Protocol):
    """What ``open_scheduler`` yields: ``run`` and a description (both schedulers below)."""

    workers: int
    description: str

    def run(self, batches: Iterable[Batch]) -> Iterator[Outcome]: ...


class LocalScheduler:
    """The server in this process: each batch predicted when the previous one is done (its kernels on
    ``ckks.get_threads()`` threads)."""

    workers = 1
    description = "local (in this process, one batch at a time)"

    def __init__(self, server: Server) -> None:
        self.server = server

    def run(self, batches: Iterable[Batch]) -> Iterator[Outcome]:
        """Predict each batch as it is drawn from ``batches`` (lazily: one batch in memory at a time)."""
        for batch in batches:
            try:
                predictions, costs = predict_measured(self.server, batch.data, batch.name, "this process")
            except BATCH_ERRORS as exc:
                yield Outcome(batch.index, None, exc)
                continue
            yield Outcome(batch.index, predictions, costs=costs)


@contextmanager
def open_scheduler(options: SchedulerOptions, bundle: bytes, model: bytes, *, bundle_name: str = "the bundle",
                   model_name: str = "the model") -> Iterator[Scheduler]:
    """A scheduler serving ``bundle`` and ``model`` (serialized), closed (cluster included) on exit.

    Raises:
        SchedulerError: the cluster cannot be started or reached.
        ckks.SerializationError, ArtifactError, WorkflowError: the bundle or the model cannot be loaded
            (see ``nn.server.Server``), raised before any batch runs.
    """
    if options.kind == "local":
        yield LocalScheduler(Server(bundle, model, bundle_name, model_name))
        return
    from .dask_scheduler import dask_scheduler

    with dask_scheduler(options, bundle, model, bundle_name, model_name) as scheduler:
        yield scheduler
