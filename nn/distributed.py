"""Where the server's batches run: in this process one after another (``local``), or on a Dask cluster.

The client streams encrypted batches (bytes) in and gets encrypted predictions (bytes) back, batch by batch
and in completion order, from ``open_scheduler(...).run(batches)``. With ``dask`` the work runs on
dask.distributed workers (an embedded ``LocalCluster`` on 127.0.0.1, or an existing cluster at
``--scheduler-address``); ``nn.dask_scheduler`` holds that code and is imported only then.

What a worker receives is exactly what the server receives in the file workflow: the serialized
``ckks.ServerBundle`` (it cannot hold a secret key), the compiled model, and each batch's ciphertexts. It
sends back the predictions' ciphertexts; decryption stays with the client.

A batch whose input is bad (a corrupted file, data of another client) comes back as that batch's named
error, and the other batches go on; an error loading the bundle or the model stops the whole run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import ckks

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
class Outcome:
    """What came back for one batch: its prediction bytes, or the named error it failed with."""

    index: int
    predictions: bytes | None
    error: Exception | None = None


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

    def __init__(self, server: Server, timer: enc.StageTimer | None = None) -> None:
        self.server, self.timer = server, timer

    def run(self, batches: Iterable[Batch]) -> Iterator[Outcome]:
        """Predict each batch as it is drawn from ``batches`` (lazily: one batch in memory at a time)."""
        for batch in batches:
            try:
                predictions = self.server.predict_bytes(batch.data, batch.name, self.timer)
            except BATCH_ERRORS as exc:
                yield Outcome(batch.index, None, exc)
                continue
            yield Outcome(batch.index, predictions)


@contextmanager
def open_scheduler(options: SchedulerOptions, bundle: bytes, model: bytes, *, bundle_name: str = "the bundle",
                   model_name: str = "the model", timer: enc.StageTimer | None = None) -> Iterator[Scheduler]:
    """A scheduler serving ``bundle`` and ``model`` (serialized), closed (cluster included) on exit.

    ``timer`` collects the per-step times of predict (local scheduler only: a worker's time stays there).

    Raises:
        SchedulerError: the cluster cannot be started or reached.
        ckks.SerializationError, ArtifactError, WorkflowError: the bundle or the model cannot be loaded
            (see ``nn.server.Server``), raised before any batch runs.
    """
    if options.kind == "local":
        yield LocalScheduler(Server(bundle, model, bundle_name, model_name), timer)
        return
    from .dask_scheduler import dask_scheduler

    with dask_scheduler(options, bundle, model, bundle_name, model_name) as scheduler:
        yield scheduler
