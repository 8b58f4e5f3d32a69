"""Every engine on exactly the same batches: plaintext float64, ckkslab and HElayers, side by side.

The records are the first ``batches x batch_size`` rows of ``x_test.h5`` in the data directory (every full
batch with ``batches=None``, ``--batches all``). Each engine runs on all of them in batches of
``batch_size`` (keys and model made once, one batch of ciphertexts in memory at a time), its outputs are
turned into decisions by the model's ``ckkslab.json`` rule (``PlainNetwork.decide``), and every pair of
engines is compared output by output (``validation.metrics.agreement``), over all records and per batch.
ckkslab's parallel kernels and HElayers' OpenMP both run on ``threads`` threads, so timing ratios compare
the same number of cores. ckkslab's kernels are compiled (or loaded from Numba's cache) before the first
engine runs (``ckks.compile_kernels``), so no stage time includes compilation; Numba is watched while the
engines run, and the report says so if a kernel was compiled or loaded inside a stage after all.
ckkslab's server side can run on a Dask cluster instead (``scheduler``, see ``nn.distributed``); the
client's side (keys, encryption, decryption) stays here.

Every engine runs batch by batch and each finished batch (decrypted outputs, record ids, its stage times and
sizes) is written at once under ``out/batches/<engine>/`` (``validation.checkpoint``). A rerun with the same
inputs and options loads those batches instead of computing them again (it resumes after Ctrl-C); a
checkpoint of other inputs is refused by name, and ``fresh`` discards it. The merged run sums the stage times
and sizes of every batch, the loaded ones as the run that computed them measured them; keygen and
encrypt_model are this run's (the checkpoint holds no key, so a run that computes a batch makes its keys and
encrypts the model again), and so are the process CPU time and the peak memory. An engine whose checkpoint
already holds every batch and the record of the run that completed it (``run.json``) does not run at all:
its figures are that record's (``EngineRun.replayed``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nn.distributed import SchedulerOptions
from nn.model import PlainNetwork
from nn.streaming import add_costs
from validation.checkpoint import BatchStore, RunRecord, checkpoint_dir, discard, engine_key, sha256_rows

if TYPE_CHECKING:
    from ckks.instrument import NumbaActivity
    from ckks.warmup import KernelCompilation

ENGINES = ("plain", "ckkslab", "helayers")
STAGES = ("keygen", "encrypt_model", "encrypt_data", "predict", "decrypt")
PAIRS = (("ckkslab", "plain"), ("helayers", "plain"), ("ckkslab", "helayers"))


class CompareError(ValueError):
    """The comparison cannot run on these inputs; the message says which one and what to change."""


@dataclass(frozen=True)
class CompareOptions:
    """What to compare: model and data directories, batching (``batches=None``: every full batch), engines,
    how HElayers runs and where ckkslab's server side runs; ``fresh``: discard the checkpoint in ``out``
    first (else its batches made with the same inputs are loaded, not computed)."""

    model_dir: Path
    data_dir: Path
    out: Path
    batch_size: int = 4096
    batches: int | None = 1
    engines: tuple[str, ...] = ENGINES
    encrypt_weights: bool = True
    backend: str = "SEAL"
    threads: int = 1
    frac_bits: int = 30
    quiet: bool = False
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    fresh: bool = False


@dataclass
class Inputs:
    """The loaded network, the compared records and labels, and the records ckkslab calibrates on."""

    network: PlainNetwork
    x: np.ndarray
    y: np.ndarray
    records_available: int
    calibration_x: np.ndarray
    calibration_source: str


@dataclass
class EngineRun:
    """One engine's outputs (n, out) on the compared records and what producing them cost.

    ``cpu_s``: process CPU seconds of the whole engine call (every stage, planning or compiling and
    serialization included); steadier than wall time when other work shares the machine. Of this run only.
    ``batches_computed`` / ``batches_loaded``: the batch indices computed in this run / loaded from the
    checkpoint (``timings_s`` and ``sizes_bytes`` sum both; see the module's docstring). ``replayed``: the
    checkpoint had every batch and the run's record, so nothing ran and every figure is the record's.
    """

    name: str
    outputs: np.ndarray
    params: dict[str, Any]
    timings_s: dict[str, float]
    sizes_bytes: dict[str, int]
    peak_rss_bytes: int
    details: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    batches_computed: list[int] = field(default_factory=list)
    batches_loaded: list[int] = field(default_factory=list)
    replayed: bool = False

    def record(self) -> RunRecord:
        """What the checkpoint keeps of this run beside its batches (``validation.checkpoint.RunRecord``)."""
        return RunRecord(self.params, self.timings_s, self.sizes_bytes, self.peak_rss_bytes, self.details,
                         self.cpu_s)

    @classmethod
    def replay(cls, name: str, record: RunRecord, store: BatchStore) -> EngineRun:
        """The run that completed ``store``, rebuilt from its record and its batches: nothing computed in
        this run (``replayed``), every batch loaded, every figure the record's."""
        return cls(name, store.outputs(), record.params, record.timings_s, record.sizes_bytes,
                   record.peak_rss_bytes, record.details, record.cpu_s, [], sorted(store.loaded), True)


@dataclass
class Comparison:
    """Every engine that ran, the ones skipped (name -> reason), and the inputs they shared.

    ``kernels``: what compiling ckkslab's kernels before the stages cost (None when ckkslab did not run).
    ``numba_in_stages``: Numba's first calls while the engines ran; ``first_calls == 0`` means no stage
    time includes compiling or loading a kernel. ``checkpoint``: where the finished batches are kept.
    """

    options: CompareOptions
    inputs: Inputs
    runs: dict[str, EngineRun]
    skipped: dict[str, str]
    kernels: KernelCompilation | None = None
    numba_in_stages: NumbaActivity | None = None
    checkpoint: Path | None = None


def parse_engines(text: str) -> tuple[str, ...]:
    """The engine names of a comma-separated list, in the canonical order plain, ckkslab, helayers.

    Raises:
        CompareError: an unknown name, or no name at all.
    """
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        raise CompareError(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    if not names:
        raise CompareError(f"no engine given; choose from {', '.join(ENGINES)}")
    return tuple(name for name in ENGINES if name in names)


def load_inputs(options: CompareOptions) -> Inputs:
    """The network of ``model_dir`` and the first ``batches x batch_size`` test records of ``data_dir``.

    ckkslab plans its value range on the model directory's own ``x_test.h5`` when it has one of the right
    width (the range the model was shipped for), else on the compared records.

    Raises:
        CompareError: a missing or unreadable directory or file, a batch size or count that is not a
            positive integer, fewer records than asked for, or a model without exactly one output.
    """
    from nn.data import load_xy
    from nn.model import load_network

    if options.batch_size < 1 or (options.batches is not None and options.batches < 1):
        raise CompareError(f"--batch-size and --batches must be positive, got {options.batch_size} and "
                           f"{options.batches}")
    for kind, directory in (("model", options.model_dir), ("data", options.data_dir)):
        if not Path(directory).is_dir():
            raise CompareError(f"{kind} directory {directory} does not exist")
    try:
        network = load_network(options.model_dir)
        x_all, y_all = load_xy(options.data_dir, "test")
    except (FileNotFoundError, ValueError) as exc:
        raise CompareError(str(exc)) from exc
    if network.output_dim != 1:
        raise CompareError(f"the model has {network.output_dim} outputs; the comparison reports binary "
                           "classification metrics and needs exactly one")
    if x_all.shape[1] != network.input_dim:
        raise CompareError(f"{options.data_dir}/x_test.h5 has {x_all.shape[1]} features but the model takes "
                           f"{network.input_dim}")
    full = x_all.shape[0] // options.batch_size
    wanted = options.batch_size * (full if options.batches is None else options.batches)
    if x_all.shape[0] < wanted or wanted == 0:
        raise CompareError(f"{options.data_dir}/x_test.h5 holds {x_all.shape[0]} records: not enough for "
                           f"{options.batches or 'one'} batch(es) of {options.batch_size} (at most {full} "
                           "full batch(es))")
    calibration_x, source = x_all, f"{options.data_dir}/x_test.h5 ({x_all.shape[0]} records)"
    own = Path(options.model_dir) / "x_test.h5"
    if own.is_file() and Path(options.model_dir).resolve() != Path(options.data_dir).resolve():
        x_own, _ = load_xy(options.model_dir, "test")
        if x_own.shape[1] == network.input_dim:
            calibration_x, source = x_own, f"{own} ({x_own.shape[0]} records)"
    return Inputs(network, x_all[:wanted], y_all[:wanted], x_all.shape[0], calibration_x, source)


def open_store(name: str, options: CompareOptions, inputs: Inputs) -> BatchStore:
    """Engine ``name``'s checkpoint under ``options.out`` for these inputs, its finished batches loaded.

    Raises:
        CheckpointError: a batch file there is corrupt or was made with other inputs or options.
    """
    key = engine_key(name, options.model_dir, options.batch_size, _output_options(name, options, inputs))
    return BatchStore(checkpoint_dir(options.out) / name, key, inputs.x, options.batch_size)


def _output_options(name: str, options: CompareOptions, inputs: Inputs) -> dict[str, Any]:
    """The options of engine ``name`` that change its outputs (threads and scheduler change only speed)."""
    if name == "ckkslab":
        return {"encrypt_weights": options.encrypt_weights, "frac_bits": options.frac_bits,
                "calibration_sha256": sha256_rows(inputs.calibration_x)}
    if name == "helayers":
        return {"encrypt_weights": options.encrypt_weights, "backend": options.backend}
    return {}


def run_plain(inputs: Inputs, options: CompareOptions, store: BatchStore) -> EngineRun:
    """The float64 numpy forward pass, batch by batch (those not in ``store`` yet, each saved there): the
    reference the encrypted engines are measured against."""
    from reference.runtime import PeakRss

    timings = dict.fromkeys(STAGES, 0.0)
    parts = [np.zeros((0, inputs.network.output_dim))]
    with PeakRss() as peak:
        for index in range(store.batches):
            if index in store.loaded:
                continue
            first = index * options.batch_size
            start = time.perf_counter()
            outputs = inputs.network.forward(inputs.x[first : first + options.batch_size])
            costs = {"timings_s": {"predict": time.perf_counter() - start}}
            add_costs({"timings_s": timings}, costs)
            store.save(index, outputs, first + np.arange(options.batch_size), costs)
            parts.append(outputs)
    params = {"backend": "numpy float64 (no encryption)", "depth": inputs.network.depth,
              "input_dim": inputs.network.input_dim, "output_dim": inputs.network.output_dim}
    return EngineRun("plain", np.concatenate(parts), params, timings, {}, peak.peak_bytes)


def run_ckkslab_engine(inputs: Inputs, options: CompareOptions, store: BatchStore) -> EngineRun:
    """ckkslab's client/server flow (``nn.pipeline.run_ckkslab``) on the compared records not in ``store``
    yet, each batch saved there as it is decrypted.

    With ``--scheduler dask``, ``predict`` is the client's wait for the workers (batches in flight in
    parallel), not their compute time, and the peak RSS is this client process's only: ``params`` says so.

    Raises:
        CompareError: no parameters fit, or values leave the planned range (message from ckkslab).
    """
    import ckks
    from ckks.errors import CkksError
    from nn.pipeline import run_ckkslab
    from reference.runtime import PeakRss

    try:
        ckks.set_threads(options.threads)
        with PeakRss() as peak:
            result = run_ckkslab(inputs.network, inputs.x, batch_size=options.batch_size,
                                 encrypt_weights=options.encrypt_weights, frac_bits=options.frac_bits,
                                 calibration_x=inputs.calibration_x, quiet=options.quiet,
                                 scheduler=options.scheduler, skip=store.loaded.keys(), on_batch=store.save)
    except (CkksError, ValueError) as exc:
        raise CompareError(f"ckkslab engine: {exc}") from exc
    on_dask = options.scheduler.kind == "dask"
    params = dict(result.params, calibration=inputs.calibration_source, scheduler=result.extra["scheduler"],
                  peak_rss_scope=peak.scope + (", this client process only (not the Dask workers)"
                                               if on_dask else ""),
                  predict_scope="the client's wall time waiting for the Dask workers, not their compute time"
                  if on_dask else "the server's work, in this process")
    details = {"stage_seconds": dict(result.stage_seconds), "plan_text": result.plan_text,
               "server_s": dict(result.extra["server_s"]), "servers": result.extra["servers"]}
    return EngineRun("ckkslab", np.asarray(result.predictions, dtype=np.float64), params,
                     dict(result.timings_s), dict(result.sizes_bytes), peak.peak_bytes, details)


def run_helayers_engine(inputs: Inputs, options: CompareOptions, store: BatchStore) -> EngineRun:
    """The paper's HElayers flow (``reference.helayers_flow.run_helayers``) on the compared records not in
    ``store`` yet, each batch saved there as it is decrypted.

    Raises:
        HelayersUnavailable: pyhelayers or the requested backend is missing (the caller skips the engine).
        CompareError: HElayers cannot parse or compile the model, or rejects the input or backend name.
    """
    from reference.errors import HelayersFlowError, HelayersInputError, HelayersModelError
    from reference.helayers_flow import run_helayers

    try:
        result = run_helayers(options.model_dir, inputs.x, batch_size=options.batch_size,
                              backend=options.backend, encrypt_weights=options.encrypt_weights,
                              threads=options.threads, quiet=options.quiet, skip=store.loaded.keys(),
                              on_batch=store.save)
    except (HelayersModelError, HelayersInputError, HelayersFlowError, FileNotFoundError) as exc:
        raise CompareError(f"helayers engine: {exc} (leave it out with --engines plain,ckkslab)") from exc
    details = {"extra_timings_s": dict(result.extra_timings_s), "cpu_timings_s": dict(result.cpu_timings_s)}
    return EngineRun("helayers", np.asarray(result.predictions, dtype=np.float64), dict(result.params),
                     dict(result.timings_s), dict(result.sizes_bytes), int(result.peak_rss_bytes), details)


def add_loaded_batches(run: EngineRun, store: BatchStore) -> None:
    """``run`` (what this run computed) made whole with the batches ``store`` loaded from the checkpoint:
    the outputs of every batch in record order, the loaded batches' costs added to the totals of the same
    name (``timings_s``, ``sizes_bytes``, and a detail such as HElayers' ``cpu_timings_s``), and which
    batches were computed and which loaded.

    Raises:
        WorkflowError: the batches do not hold each record once.
    """
    run.outputs = store.outputs()
    run.batches_computed, run.batches_loaded = sorted(store.computed), sorted(store.loaded)
    costs = store.loaded_costs()
    totals = {"timings_s": run.timings_s, "sizes_bytes": run.sizes_bytes}
    totals.update({group: run.details.setdefault(group, {}) for group in costs if group not in totals})
    add_costs(totals, costs)


def _say(message: str, quiet: bool) -> None:
    """One line on stderr for a person watching a terminal; nothing when quiet or piped."""
    if not quiet and sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


def compare(options: CompareOptions) -> Comparison:
    """Load the inputs once and run every requested engine on them, in the order plain, ckkslab, helayers.

    Every engine's checkpoint is read first (``fresh``: discarded first), so that a corrupt or stale one stops
    the comparison before any engine runs. ckkslab's kernels are made ready next (``ckks.compile_kernels``:
    a progress line on a terminal when it compiles), outside every stage, unless its checkpoint is complete.
    A missing pyhelayers (or HElayers backend) skips the helayers engine with its reason; everything else
    that goes wrong stops the comparison, the batches finished so far staying on disk.

    Raises:
        CompareError: see :func:`load_inputs`, :func:`run_ckkslab_engine`, :func:`run_helayers_engine`.
        CheckpointError: see :func:`open_store`.
        WorkflowError: an engine's batches do not hold each record once.
    """
    from ckks import compile_kernels
    from ckks.instrument import numba_activity

    inputs = load_inputs(options)
    if options.fresh:
        _say(f"--fresh: {discard(options.out)} checkpoint file(s) removed from {checkpoint_dir(options.out)}",
             options.quiet)
    stores = {name: open_store(name, options, inputs) for name in options.engines}
    ckkslab_runs = "ckkslab" in stores and stores["ckkslab"].finished_run() is None
    kernels = compile_kernels(quiet=options.quiet) if ckkslab_runs else None
    with numba_activity() as in_stages:
        runs, skipped = _run_engines(options, inputs, stores)
    return Comparison(options, inputs, runs, skipped, kernels, in_stages, checkpoint_dir(options.out))


ENGINE_RUNNERS = {"plain": run_plain, "ckkslab": run_ckkslab_engine, "helayers": run_helayers_engine}


def _run_engines(options: CompareOptions, inputs: Inputs,
                 stores: dict[str, BatchStore]) -> tuple[dict[str, EngineRun], dict[str, str]]:
    """Every requested engine's run over every batch, in order, and the skipped ones (a missing HElayers)
    with the reason; a line on stderr for each engine that resumes."""
    from reference.errors import HelayersUnavailable

    runs: dict[str, EngineRun] = {}
    skipped: dict[str, str] = {}
    records = f"{inputs.x.shape[0] // options.batch_size} batch(es) of {options.batch_size} records"
    for name in options.engines:
        store = stores[name]
        _say(f"[{name}] {records}", options.quiet)
        record = store.finished_run()
        if record is not None:
            print(f"{name}: every batch and the run's costs loaded from {store.directory}, nothing to "
                  "compute (--fresh computes them again)", file=sys.stderr)
            runs[name] = EngineRun.replay(name, record, store)
            continue
        if store.loaded:
            print(f"{name}: resuming, {len(store.loaded)} of {store.batches} batch(es) loaded from "
                  f"{store.directory}", file=sys.stderr)
        cpu_start = time.process_time()
        try:
            run = ENGINE_RUNNERS[name](inputs, options, store)
        except HelayersUnavailable as exc:
            skipped[name] = str(exc)
            print(f"{name} engine skipped: {exc}", file=sys.stderr)
            continue
        run.cpu_s = time.process_time() - cpu_start
        add_loaded_batches(run, store)
        store.save_run(run.record())
        runs[name] = run
    return runs, skipped
