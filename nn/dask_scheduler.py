"""The server's batches on dask.distributed: an embedded LocalCluster on 127.0.0.1, or an existing cluster.

Only ``nn.distributed.open_scheduler`` imports this module (it imports dask). What travels to the workers:

- once per worker, a ``ServerPlugin`` holding the bundle bytes and the model bytes (Dask sends a registered
  worker plugin to every worker, including one that the nanny restarts after a crash); each worker loads
  them into a ``nn.server.Server`` before the first batch (a worker that joins later, at its first batch)
  and keeps it for the next ones;
- per batch, a task ``predict_on_worker(plugin name, batch bytes, batch name)`` that returns the prediction
  bytes and what they cost the worker (``nn.distributed.ServerCosts``).

A worker that dies mid-batch is Dask's to handle: the scheduler gives the task to another worker, up to
``distributed.scheduler.allowed-failures`` times (3 by default), then reports ``KilledWorker``, which this
module turns into that batch's ``SchedulerError``. A named error of a batch (a corrupted file) is final and
not retried: it would fail the same way again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

import dask
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

import ckks
from ckks.threads import SHARED_CORES_SPIN_COUNT

from .distributed import (
    BATCH_ERRORS,
    Batch,
    Outcome,
    SchedulerError,
    SchedulerOptions,
    ServerCosts,
    predict_measured,
)
from .server import Server, digest

CONNECT_TIMEOUT_S = 30
#: Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536. Setting it at all turns off glibc's
#: dynamic mmap threshold, so every large array of a batch becomes a fresh mmap of zeroed pages: measured on
#: the clinical model, 0.85-0.97 s of CPU per batch on such a worker against 0.40-0.48 s without it. The
#: embedded cluster's nannies leave it unset (None unsets it, see Dask's nanny); README says how to do the
#: same on a real cluster. (A nanny also writes its variables into its own process's os.environ, which
#: later workers inherit: a process that started a default-config LocalCluster before passes it on anyway.)
WORKER_MALLOC_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
#: The embedded workers share this machine's cores with each other and with the client, which encrypts the
#: next batches meanwhile. An idle OpenMP kernel thread spins GOMP_SPINCOUNT times before it sleeps (see
#: ckks.threads): libgomp's default, about 7.5 ms here, then takes a core that another process needs. Set in
#: each worker process before it imports ckks (``distributed.nanny.environ``, unlike pre-spawn-environ, is
#: not written into this process's os.environ); a GOMP_SPINCOUNT in this process's environment wins. The
#: ``ckkslab`` command does the same for the client (``ckks.threads.spin_briefly_before_sleeping``).
WORKER_SPIN_SETTING = "distributed.nanny.environ.GOMP_SPINCOUNT"


class ServerPlugin(WorkerPlugin):
    """The server's bundle and model on a worker, loaded into a ``Server`` by the first batch that needs it.

    Loading happens in the task (a worker thread), not in ``setup`` (the worker's event loop, which must keep
    answering the scheduler). ``kernel_threads``: the threads of ckkslab's kernels on each worker (None: all
    of the worker's cores), set in the task's thread (Numba's count belongs to the calling thread).
    """

    def __init__(self, name: str, bundle: bytes, model: bytes, bundle_name: str, model_name: str,
                 kernel_threads: int | None = None) -> None:
        self.name = name
        self.bundle, self.model = bundle, model
        self.bundle_name, self.model_name = bundle_name, model_name
        self.kernel_threads = kernel_threads
        self._server: Server | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """What is pickled to the workers: the bytes and names (a lock and a loaded server do not travel)."""
        return {k: v for k, v in vars(self).items() if k not in ("_server", "_lock")}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state, _server=None, _lock=threading.Lock())

    def server(self) -> Server:
        """The loaded server, made at the first call on this worker (which also tunes the allocator,
        ``ckks.keep_freed_memory``, and compiles or loads the kernels, ``ckks.compile_kernels``, before any
        batch is timed), with the kernels' threads set for the calling thread."""
        with self._lock:
            ckks.set_threads(min(self.kernel_threads or ckks.available_threads(), ckks.available_threads()))
            if self._server is None:
                ckks.keep_freed_memory()
                ckks.compile_kernels(quiet=True)
                self._server = Server(self.bundle, self.model, self.bundle_name, self.model_name)
            return self._server

    def teardown(self, worker: object) -> None:
        self._server = None


def load_on_worker(plugin: str) -> int:
    """Load the server on the worker that runs this task; returns its model's output width (a check)."""
    return get_worker().plugins[plugin].server().model.output_dim


def predict_on_worker(plugin: str, data: bytes, name: str) -> tuple[bytes, ServerCosts]:
    """The encrypted predictions of one batch, computed by the worker's server, and what they cost it."""
    worker = get_worker()
    return predict_measured(worker.plugins[plugin].server(), data, name, worker.address)


class DaskScheduler:
    """Batches as Dask tasks, at most two per worker thread in flight, results in completion order."""

    def __init__(self, client: Client, plugin: str, where: str, kernel_threads: int | None = None) -> None:
        self.client, self.plugin = client, plugin
        self.run_id = uuid.uuid4().hex[:8]  # task keys of two runs on one cluster never collide
        self.workers = max(1, sum(client.nthreads().values()))
        kernels = "all its cores" if kernel_threads is None else f"{kernel_threads} thread(s)"
        self.description = f"dask: {self.workers} worker thread(s), kernels on {kernels} per worker, {where}"

    def run(self, batches: Iterable[Batch]) -> Iterator[Outcome]:
        """Submit batches as they are drawn, keeping 2 per worker thread in flight, and yield each outcome.

        Batches are drawn lazily, so that the client holds at most the in-flight batches' bytes.
        """
        pending = as_completed(loop=self.client.loop)
        names: dict[str, Batch] = {}
        for batch in batches:
            if pending.count() >= 2 * self.workers:
                yield self._outcome(next(pending), names)
            # The batch's bytes travel inside its task on purpose (Dask warns about such "large graphs"):
            # the scheduler keeps them until the task is done, so a retry after a worker's death has them,
            # which a scattered copy on the dead worker would not.
            with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1TiB"}):
                future = self.client.submit(predict_on_worker, self.plugin, batch.data, batch.name,
                                            pure=False, key=f"ckkslab-predict-{self.run_id}-{batch.index}")
            names[future.key] = batch
            pending.add(future)
        for future in pending:
            yield self._outcome(future, names)

    @staticmethod
    def _outcome(future: Future, names: dict[str, Batch]) -> Outcome:
        batch = names.pop(future.key)
        try:
            predictions, costs = future.result()
            return Outcome(batch.index, predictions, costs=costs)
        except KilledWorker as exc:
            return Outcome(batch.index, None, SchedulerError(
                f"{batch.name}: every worker that ran it died ({exc}); see the workers' logs"))
        except BATCH_ERRORS as exc:
            return Outcome(batch.index, None, exc)
        finally:
            future.release()


@contextmanager
def dask_scheduler(options: SchedulerOptions, bundle: bytes, model: bytes, bundle_name: str,
                   model_name: str) -> Iterator[DaskScheduler]:
    """A Dask client (on an embedded LocalCluster unless ``options.address``) with the server plugin
    registered and loaded once; the plugin is removed and an embedded cluster closed on exit.

    Raises:
        SchedulerError: the cluster cannot be started, the scheduler at ``options.address`` reached, or its
            workers cannot import ckkslab.
        The server's load errors (see ``nn.server.Server``), from the first worker that loads it.
    """
    target = options.address or "embedded LocalCluster"
    with ExitStack() as stack:
        try:
            if options.address is None:
                stack.enter_context(dask.config.set({WORKER_MALLOC_SETTING: None,
                                                     WORKER_SPIN_SETTING: str(SHARED_CORES_SPIN_COUNT)}))
                cluster = stack.enter_context(LocalCluster(
                    n_workers=options.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL))
                target = f"embedded LocalCluster at {cluster.scheduler_address}"
                # the machine's cores shared between the embedded workers, at most --threads each
                kernel_threads = min(ckks.get_threads(),
                                     max(1, ckks.available_threads() // len(cluster.workers)))
                client = stack.enter_context(Client(cluster, set_as_default=False))
            else:
                client = stack.enter_context(Client(options.address, timeout=CONNECT_TIMEOUT_S,
                                                    set_as_default=False))
                kernel_threads = None  # each worker of a real cluster uses its own machine's cores
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(f"cannot start or reach the Dask scheduler ({target}): {exc}") from None
        name = f"ckkslab-server-{digest(bundle)[:8]}{digest(model)[:8]}-{uuid.uuid4().hex[:8]}"  # one per run
        try:
            client.register_plugin(ServerPlugin(name, bundle, model, bundle_name, model_name, kernel_threads),
                                   name=name)
        except Exception as exc:  # a worker that cannot unpickle the plugin answers with a bare Exception
            raise SchedulerError(f"the workers of {target} cannot take ckkslab's server ({exc}): install "
                                 "ckkslab, the same version as here, on every worker") from None
        stack.callback(client.unregister_worker_plugin, name)
        # Every worker loads the server now, as the local scheduler does before its first batch (a worker
        # that joins later loads it at its first batch).
        client.gather([client.submit(load_on_worker, name, workers=[worker], allow_other_workers=True,
                                     pure=False, key=f"ckkslab-load-{name}-{index}")
                       for index, worker in enumerate(client.scheduler_info()["workers"])])
        yield DaskScheduler(client, name, target, kernel_threads)
