"""Encrypted inference, ckkslab against HElayers-SEAL, on the same batch of a model's test records.

Run as ``ckkslab bench inference --model DIR [--batches 1] [--thread-counts 1,2] [--json FILE]`` or
``python benchmarks/inference.py --model DIR``. In one process, at T threads for both engines (ckkslab's
parallel kernels, HElayers' OpenMP; ``--thread-counts`` runs everything at each T, each repeat going through
every T in turn, and adds the speed-ups from the first count), for each model mode
(weights encrypted: the client owns the model, as in the paper; weights plain: the server owns it), the
first ``batches`` x 4096 test records go through ``nn.pipeline.run_ckkslab`` and through
``reference.helayers_flow.run_helayers`` (backend SEAL). Each run is wrapped in
``reference.runtime.PeakRss``, with the resident size on entry beside the peak. The first repeat of each
engine, mode and thread count, whose memory figures are the ones reported, starts after garbage collection
and ``malloc_trim`` (so memory an earlier run freed does not count). The later repeats start with the heap
the process has, as HElayers' start with SEAL's memory pool: after a trim, predict's temporaries take
fresh pages from the OS, which on a virtual machine can cost more than the arithmetic (the README has the
figures), and then in every repeat, not only in the first. Runs made before this rule (runs 1-19 in
``docs/measurements/``) trimmed before every repeat.
ckkslab runs first, both modes: SEAL's memory pool keeps what it allocated until the process ends, so
HElayers' second mode starts with it. Reported: wall seconds per stage (keygen, encrypt model, encrypt
data, predict, decrypt) and the ratio ckkslab / HElayers, artifact sizes, peak resident memory, and the
precision of each engine against the float64 forward pass of the same network: bits = -log2(max abs
error) over all records, also relative to the output range (max |output|), the figure issue 4's target
uses: predict ratio <= 0.5 with encrypted weights at >= 30 bits. ckkslab's Numba kernels are compiled
(or loaded from the cache) before the first run (``ckks.compile_kernels``, reported on a line of its
own), so no stage includes it.

``benchmarks.inference_results`` turns the runs into these figures, ``benchmarks.inference_report`` into
the printed tables.

Module level imports are the standard library only: ``ckkslab --help`` registers this module's options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.inference_results import (
    MODES,
    PRECISION_TARGET_BITS,
    PREDICT_TARGET_RATIO,
    combine_runs,
    compare_engines,
)
from benchmarks.machine import (
    ThreadBaseline,
    current_rss_bytes,
    machine_load,
    one_blas_thread,
    release_free_memory,
)

BATCH_SIZE = 4096


def _ckkslab_runner(network: Any, x: Any, encrypt_weights: bool, calibration_x: Any,
                    frac_bits: int) -> dict[str, Any]:
    from nn.pipeline import run_ckkslab

    result = run_ckkslab(network, x, batch_size=BATCH_SIZE, encrypt_weights=encrypt_weights,
                         frac_bits=frac_bits, calibration_x=calibration_x, quiet=True)
    return {"predictions": result.predictions, "timings_s": dict(result.timings_s),
            "sizes_bytes": dict(result.sizes_bytes), "params": dict(result.params),
            "extra": {"predict_stages_s": dict(result.stage_seconds)}}


def _helayers_runner(model_dir: Path, x: Any, encrypt_weights: bool, frac_bits: int,
                     threads: int) -> dict[str, Any]:
    from reference.helayers_flow import run_helayers
    from reference.runtime import captured_native_output

    with captured_native_output() as native:  # HElayers' C++ prints (blank lines) stay off the report
        result = run_helayers(model_dir, x, batch_size=BATCH_SIZE, backend="SEAL",
                              encrypt_weights=encrypt_weights, threads=threads, quiet=True,
                              fractional_bits=frac_bits)
    return {"predictions": result.predictions, "timings_s": dict(result.timings_s),
            "sizes_bytes": dict(result.sizes_bytes), "params": dict(result.params),
            "extra": {"helayers_timings_s": dict(result.extra_timings_s),
                      "helayers_peak_rss_bytes": result.peak_rss_bytes,
                      "native_output": "".join(native).strip()}}


def _measured(run_engine: Callable[[], dict[str, Any]], *, release: bool) -> dict[str, Any]:
    """``run_engine()`` inside ``PeakRss`` with the load before and after and the RSS on entry; first, with
    ``release``, the C heap's free pages go back to the OS (``release_free_memory``), so that memory an
    earlier run freed does not count in this run's figures."""
    from reference.runtime import PeakRss

    if release:
        release_free_memory()
    load_before, rss_before = machine_load(), current_rss_bytes()
    start = time.perf_counter()
    with PeakRss() as peak:
        result = run_engine()
    result["wall_s"] = time.perf_counter() - start
    result["peak_rss_bytes"] = peak.peak_bytes
    result["peak_rss_scope"] = peak.scope
    result["rss_on_entry_bytes"] = rss_before
    result["load_1min"] = {"before": load_before, "after": machine_load()}
    return result


def run(model_dir: Path, batches: int = 1, modes: tuple[str, ...] = ("encrypted", "plain"),
        frac_bits: int = 30, repeats: int = 1, ckkslab_runner: Callable[..., dict[str, Any]] | None = None,
        helayers_runner: Callable[..., dict[str, Any]] | None = None,
        progress: Callable[[str], None] | None = None, threads: int = 1) -> dict[str, Any]:
    """Both engines on the first ``batches`` x 4096 test records of ``model_dir``, for each weight mode,
    each on ``threads`` threads.

    Each engine and mode runs ``repeats`` times (keys, model, data made anew each time); each stage keeps
    its minimum, the precision its worst run, the memory figures come from the first run (the cleanest: the
    only one started after ``release_free_memory``, see the module docstring).
    ckkslab calibrates its value ranges on the whole test split (a superset of the measured batch).
    When HElayers is unavailable, its columns are empty and ``"helayers_unavailable"`` says why.
    The runners are replaceable (tests): ``ckkslab_runner(network, x, encrypt_weights, calibration_x,
    frac_bits)`` and ``helayers_runner(model_dir, x, encrypt_weights, frac_bits, threads)`` return
    dictionaries with predictions, timings_s, sizes_bytes, params.

    Raises:
        ValueError: ``batches`` or ``repeats`` < 1, more batches than the test split holds, an unknown
            mode.
        FileNotFoundError: the model or its test split is missing.
    """
    return _run_at((threads,), model_dir, batches, modes, frac_bits, repeats, ckkslab_runner, helayers_runner,
                   progress)[threads]


def _run_at(thread_counts: tuple[int, ...], model_dir: Path, batches: int, modes: tuple[str, ...],
            frac_bits: int, repeats: int, ckkslab_runner: Callable[..., dict[str, Any]] | None,
            helayers_runner: Callable[..., dict[str, Any]] | None, progress: Callable[[str], None] | None,
            baseline: ThreadBaseline | None = None) -> dict[int, dict[str, Any]]:
    """``run``'s result at each thread count. Each repeat runs ckkslab at every count, then HElayers at
    every count, so that a slow spell of the (shared) machine falls on every count alike rather than on the
    count whose turn it was; and ckkslab's first runs, whose memory figures are kept, come before any
    HElayers run (SEAL's memory pool keeps what HElayers allocated for the rest of the process, which
    would inflate ckkslab's RSS). ``baseline``, if given, is sampled just before and just after each
    ckkslab run, at that run's thread count."""
    import numpy as np

    import ckks
    from nn.data import load_xy
    from nn.model import load_network
    from reference.errors import HelayersUnavailable

    for name, value in (("batches", batches), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    ckks.keep_freed_memory()
    say = progress or (lambda _msg: None)
    run_ours = ckkslab_runner or _ckkslab_runner
    run_theirs = helayers_runner or _helayers_runner
    network = load_network(model_dir)
    x_all, _ = load_xy(model_dir, split="test")
    records = batches * BATCH_SIZE
    if x_all.shape[0] < records:
        raise ValueError(f"{model_dir} holds {x_all.shape[0]} test records, fewer than {batches} batch(es) "
                         f"of {BATCH_SIZE}")
    x = np.ascontiguousarray(x_all[:records])
    expected = network.forward(x)
    kernels = ckks.compile_kernels(quiet=progress is None)
    load_before = machine_load()
    helayers_unavailable: str | None = None
    Runs = dict[tuple[int, str], list[dict[str, Any]]]  # (threads, mode) -> one engine's runs
    ours: Runs = {(t, mode): [] for t in thread_counts for mode in modes}
    theirs: Runs = {key: [] for key in ours}
    with one_blas_thread():
        for rep in range(repeats):
            for threads in thread_counts:
                ckks.set_threads(threads)
                for mode in modes:
                    say(f"{mode} weights: ckkslab on {records} records, {threads} thread(s) "
                        f"(run {rep + 1}/{repeats})")
                    sample = baseline.sample if baseline is not None else lambda: None
                    sample()
                    ours[threads, mode].append(_measured(
                        lambda ew=MODES[mode]: run_ours(network, x, ew, x_all, frac_bits), release=rep == 0))
                    sample()
            for threads in thread_counts:
                for mode in modes:
                    if helayers_unavailable is not None:
                        break
                    say(f"{mode} weights: HElayers-SEAL on {records} records, {threads} thread(s) "
                        f"(run {rep + 1}/{repeats})")
                    try:
                        theirs[threads, mode].append(_measured(
                            lambda ew=MODES[mode], t=threads: run_theirs(model_dir, x, ew, frac_bits, t),
                            release=rep == 0))
                    except HelayersUnavailable as exc:
                        helayers_unavailable = str(exc)
    machine = {"load_1min_before": load_before, "load_1min_after": machine_load(),
               "cpu_count": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    statistic = ("wall seconds per stage, minimum over the repeats (summed over batches); the first repeat "
                 "starts after malloc_trim, the others with the process's heap") + (
        "; the repeats alternate between the thread counts" if len(thread_counts) > 1 else "")
    return {threads: {
        "benchmark": "inference",
        "model": str(model_dir),
        "records": records,
        "batches": batches,
        "batch_size": BATCH_SIZE,
        "frac_bits_requested": frac_bits,
        "calibration": f"ckkslab value ranges calibrated on the whole test split ({x_all.shape[0]} records)",
        "repeats": repeats,
        "statistic": statistic,
        "threads": {"ckkslab": threads, "helayers": f"OpenMP {threads} (threads={threads})",
                    "blas": "1 (threadpoolctl)"},
        "machine": machine,
        "compile_kernels": kernels.as_json(),
        "helayers_available": helayers_unavailable is None,
        "helayers_unavailable": helayers_unavailable,
        "targets": {"predict_ratio_encrypted_weights": PREDICT_TARGET_RATIO,
                    "precision_relative_bits": PRECISION_TARGET_BITS},
        "modes": {mode: compare_engines(mode, combine_runs(ours[threads, mode], expected, network),
                                        combine_runs(theirs[threads, mode], expected, network)
                                        if theirs[threads, mode] else None)
                  for mode in modes},
    } for threads in thread_counts}


def run_thread_sweep(model_dir: Path, thread_counts: tuple[int, ...], batches: int = 1,
                     modes: tuple[str, ...] = ("encrypted", "plain"), frac_bits: int = 30, repeats: int = 1,
                     ckkslab_runner: Callable[..., dict[str, Any]] | None = None,
                     helayers_runner: Callable[..., dict[str, Any]] | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``run`` at each thread count (same records, same options; the repeats alternate between the
    counts, see ``_run_at``), with each engine's predict speed-up from the first count:
    speedup[engine][mode][T] = predict(first T) / predict(T); and the machine's own, timed beside every
    ckkslab run (``benchmarks.machine.ThreadBaseline``): speedup["machine baseline"][T].

    Raises:
        ValueError: no thread count, a repeated one, or one that is not a positive integer (and as ``run``).
    """
    if (not thread_counts or len(set(thread_counts)) != len(thread_counts)
            or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in thread_counts)):
        raise ValueError(f"thread counts must be distinct positive integers, got {thread_counts!r}")
    baseline = ThreadBaseline()
    runs = _run_at(tuple(thread_counts), model_dir, batches, modes, frac_bits, repeats, ckkslab_runner,
                   helayers_runner, progress, baseline)
    first = runs[thread_counts[0]]

    def predict(result: dict[str, Any], mode: str, engine: str) -> float | None:
        row = next(r for r in result["modes"][mode]["stages"] if r["stage"] == "predict")
        return row[f"{engine}_s"]

    speedup = {engine: {mode: {t: (None if not predict(first, mode, engine) or not predict(r, mode, engine)
                                   else predict(first, mode, engine) / predict(r, mode, engine))
                               for t, r in runs.items()}
                        for mode in first["modes"]}
               for engine in ("ckkslab", "helayers")}
    for name, statistic in (("machine baseline", min), ("machine baseline, medians", statistics.median)):
        speedup[name] = {t: baseline.speedup(thread_counts[0], t, statistic) for t in thread_counts}
    return {"benchmark": "inference-threads", "thread_counts": list(thread_counts), "runs": runs,
            "speedup": speedup, "baseline": {"what": baseline.what, "seconds": baseline.seconds}}


# ----- command line -----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ckkslab bench inference`` and of this script."""
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory: model.json, model.h5, ckkslab.json and x_test.h5/y_test.h5")
    parser.add_argument("--batches", type=int, default=1,
                        help=f"number of {BATCH_SIZE}-record batches of the test split (default 1)")
    parser.add_argument("--modes", nargs="+", choices=tuple(MODES), default=list(MODES),
                        help="weight modes to run (default: encrypted plain)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each engine and mode this many times and keep each stage's minimum "
                        "(default 1)")
    parser.add_argument("--frac-bits", type=int, default=30,
                        help="fractional-part precision asked of both engines (default 30)")
    parser.add_argument("--thread-counts", type=_thread_counts, default=None, metavar="T1,T2,...",
                        help="run everything at each of these thread counts and report the speed-ups "
                        "(default: once, at --threads)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write all results to FILE")


def _thread_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"thread counts must be integers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be at least 1, got {text!r}")
    return counts


def run_from_args(args: argparse.Namespace, quiet: bool = False) -> dict[str, Any]:
    """Run the benchmark the options describe, print the report, write ``--json``; return the result."""
    from benchmarks.inference_report import format_sweep, format_table

    progress = None if quiet or not sys.stderr.isatty() else (lambda msg: print(msg, file=sys.stderr))
    options = {"batches": args.batches, "modes": tuple(args.modes), "frac_bits": args.frac_bits,
               "repeats": args.repeats, "progress": progress}
    if args.thread_counts is None:
        result = run(args.model, threads=getattr(args, "threads", 1) or 1, **options)
        print(format_table(result))
    else:
        result = run_thread_sweep(args.model, args.thread_counts, **options)
        print(format_sweep(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=_jsonable) + "\n")
    return result


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays in params dictionaries, for ``json.dumps``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Script entry point (``python benchmarks/inference.py ...``)."""
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--threads", type=int, default=1, help="threads for both engines (default 1)")
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
