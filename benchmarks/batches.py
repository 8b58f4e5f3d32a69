"""Every batch of a model's test split through ckkslab: records/s on each scheduler, and peak memory.

Run as ``ckkslab bench batches --model DIR [--workers 1 2] [--json FILE]``.

1. Throughput, in this process, one run after the other: ``nn.pipeline.run_ckkslab`` on all full batches
   (32,768 records = 8 batches for the shipped models), weights encrypted, on the local scheduler (this
   process, one batch at a time) and on an embedded Dask LocalCluster of each ``--workers`` count (one
   thread per worker process). The client (keys, encryption, decryption) stays in this process in every
   run, so on a 2-core machine it shares the cores with 2 workers. Reported per run: records/s over the
   batch loop (encrypt + predict + decrypt of every batch: ``timings_s`` encrypt_data + predict +
   decrypt), records/s end to end (keygen, model encryption and the cluster's start included), and both
   as ratios to the local run of the same invocation; and per server process (this one, or each Dask
   worker), measured there: its batches, their compute seconds and the process's peak RSS.
2. Memory: ``ckkslab --quiet compare --engines plain,ckkslab`` in a fresh process with ``--batches 1`` and
   with ``--batches all``; the peak resident size of each child (``os.wait4``'s ru_maxrss) and their ratio.
   Streaming keeps one batch's ciphertexts at a time, so the ratio should stay near 1.

The load average (``os.getloadavg``) is printed before and after: on a shared machine it says how much
the figures can be trusted. Module level imports are the standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH_SIZE = 4096


def throughput(model_dir: Path, workers: list[int], quiet: bool = True) -> list[dict[str, Any]]:
    """One ``run_ckkslab`` over every full batch per scheduler: local, then dask with each worker count.

    The kernels are compiled (or loaded) first, so the local baseline does not pay it inside its loop.
    """
    import ckks
    from nn.data import load_xy
    from nn.distributed import SchedulerOptions
    from nn.model import load_network
    from nn.pipeline import run_ckkslab

    ckks.compile_kernels(quiet=True)
    network = load_network(model_dir)
    x_all, _ = load_xy(model_dir, "test")
    x = x_all[: (x_all.shape[0] // BATCH_SIZE) * BATCH_SIZE]
    runs = []
    for name, options in [("local", SchedulerOptions())] + [
            (f"dask, {n} worker(s)", SchedulerOptions("dask", workers=n)) for n in workers]:
        start = time.perf_counter()
        result = run_ckkslab(network, x, batch_size=BATCH_SIZE, calibration_x=x_all, quiet=quiet,
                             scheduler=options)
        total = time.perf_counter() - start
        loop = sum(result.timings_s[stage] for stage in ("encrypt_data", "predict", "decrypt"))
        equal = network.decide(result.predictions)[1] == network.decide(network.forward(x))[1]
        runs.append({"scheduler": name, "where": result.extra["scheduler"], "records": int(x.shape[0]),
                     "batches": int(x.shape[0] // BATCH_SIZE), "loop_s": loop, "total_s": total,
                     "server_load_s": result.extra["server_load_s"], "timings_s": dict(result.timings_s),
                     "records_per_s": x.shape[0] / loop, "records_per_s_end_to_end": x.shape[0] / total,
                     "decisions_equal_to_plain": int(equal.sum()),
                     "server_compute_s": result.extra["server_s"]["compute"],
                     "servers": result.extra["servers"]})
    for run in runs:
        run["ratio_to_local"] = run["records_per_s"] / runs[0]["records_per_s"]
        run["ratio_to_local_end_to_end"] = (run["records_per_s_end_to_end"]
                                            / runs[0]["records_per_s_end_to_end"])
    return runs


def peak_rss(model_dir: Path, batches: str) -> dict[str, Any]:
    """Peak RSS of ``ckkslab --quiet compare --batches BATCHES --engines plain,ckkslab``, a fresh process
    on this process's kernel thread count.

    Raises:
        ValueError: the child failed (its exit code and command are in the message).
    """
    import ckks

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "validation.cli", "--quiet", "--threads", str(ckks.get_threads()),
                   "compare", "--model", str(model_dir), "--batches", batches, "--engines", "plain,ckkslab",
                   "--out", out]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            if child.poll() is None:  # interrupted while waiting: do not leave the child running
                child.kill()
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise ValueError(f"{' '.join(command)} exited {child.returncode}")
        return {"batches": batches, "peak_rss_bytes": usage.ru_maxrss * 1024,
                "wall_s": time.perf_counter() - start, "command": " ".join(command[1:])}


def format_report(result: dict[str, Any]) -> str:
    """The throughput table, the memory figures and the machine's load, for people."""
    lines = [f"model {result['model']}, {result['runs'][0]['records']} records in "
             f"{result['runs'][0]['batches']} batches of {BATCH_SIZE}, weights encrypted; "
             f"{result['cpus']} CPUs ({result['cpu']}); load average before "
             f"{result['load_before']}, after {result['load_after']}",
             "", "| scheduler | records/s (batch loop) | vs local | records/s end to end | vs local | "
             "batch loop s | total s | server load / cluster start s | decisions equal to plain |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in result["runs"]:
        lines.append(f"| {run['scheduler']} | {run['records_per_s']:.0f} | {run['ratio_to_local']:.2f}x | "
                     f"{run['records_per_s_end_to_end']:.0f} | {run['ratio_to_local_end_to_end']:.2f}x | "
                     f"{run['loop_s']:.2f} | {run['total_s']:.2f} | {run['server_load_s']:.2f} | "
                     f"{run['decisions_equal_to_plain']}/{run['records']} |")
    lines += ["", "where: " + "; ".join(f"{r['scheduler']}: {r['where']}" for r in result["runs"])]
    lines += ["", "server processes, measured there (compute = Server.predict_bytes's wall seconds and the "
              "process's CPU seconds meanwhile, summed over its batches; peak RSS = that process's):"]
    lines += [f"  {run['scheduler']}: " + "; ".join(
        f"{where} {e['batches']} batch(es), compute {e['compute_s']:.2f} s ({e['cpu_s']:.2f} s of CPU), "
        f"peak RSS {e['peak_rss_bytes'] / 2**20:.0f} MiB" for where, e in run["servers"].items())
        for run in result["runs"]]
    if result.get("rss"):
        one, every = result["rss"]
        lines += ["", f"peak RSS, fresh process: --batches 1 {one['peak_rss_bytes'] / 2**20:.0f} MiB "
                  f"({one['wall_s']:.1f} s), --batches all {every['peak_rss_bytes'] / 2**20:.0f} MiB "
                  f"({every['wall_s']:.1f} s): ratio {result['rss_ratio']:.3f} (target <= 1.3)",
                  f"  command: {every['command']}"]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ckkslab bench batches``."""
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory: model.json, model.h5, ckkslab.json and x_test.h5/y_test.h5")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts of the embedded Dask LocalCluster to run (default: 1 2)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")


def run_from_args(args: argparse.Namespace, quiet: bool = False) -> dict[str, Any]:
    """Run the benchmark the options describe, print the report, write ``--json``; return the result."""
    from ckks.warmup import target_cpu

    if min(args.workers) < 1:
        raise ValueError(f"--workers must be at least 1, got {min(args.workers)}")
    result: dict[str, Any] = {"model": str(args.model), "cpus": os.cpu_count(), "cpu": target_cpu(),
                              "load_before": [round(v, 2) for v in os.getloadavg()]}
    result["runs"] = throughput(args.model, args.workers, quiet=quiet)
    if not args.no_rss:
        result["rss"] = [peak_rss(args.model, "1"), peak_rss(args.model, "all")]
        result["rss_ratio"] = result["rss"][1]["peak_rss_bytes"] / result["rss"][0]["peak_rss_bytes"]
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result
