"""One server predicting one batch again and again, at 1 thread and at T threads in turn: the speed-up of a
warm server, beside ``ckkslab bench inference``, whose every run starts a fresh server for one batch.

    .venv/bin/python benchmarks/server_threads.py --model models/clinical [--rounds 8] [--threads 2]
        [--plain-weights] [--json F]

The client side (keys, model, one 4096-record batch) is made once. Then ``nn.server.Server.predict_bytes``
(load and check the batch, run the layers, write the predictions) runs ``rounds`` times at 1 thread and
``rounds`` times at T threads, alternating, so that a slow spell of the shared machine falls on both counts.
The first call at each count is a warm-up (the server's heap grows to its working set) and is not counted.
Reported: minimum and median seconds per count and speed-up = minimum(1 thread) / minimum(T threads). The
predictions must be the same bytes at both counts; the run stops with an error if they are not.

The baseline, timed in the same rounds (``benchmarks.machine.ThreadBaseline``): forward NTTs of 32
independent rows, work with nothing serial in it, so its speed-up is what the machine gives T threads at
that moment (on a shared virtual machine, often well below T).

Also reported: how long the idle kernel threads spin, as the CPU they spend in the 0.2 s after a kernel
(``benchmarks.machine.idle_spin_cpu_seconds``), with libgomp's default or the ``GOMP_SPINCOUNT`` set in the
environment (see ``ckks.threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any


def server_and_batch(model_dir: Path, encrypt_weights: bool = True) -> tuple[Any, bytes]:
    """A ``nn.server.Server`` for the model of ``model_dir`` (weights encrypted or not) and one serialized
    batch of its first 4096 test records, made by a client in this process (kernels compiled, the heap set
    to keep freed memory, as the command line does).

    Raises:
        FileNotFoundError: the model or its test split is missing.
    """
    import ckks
    from nn import artifacts
    from nn import encrypted as enc
    from nn.data import load_xy
    from nn.model import load_network
    from nn.plan import plan_inference
    from nn.server import Server, keys_id

    ckks.keep_freed_memory()
    ckks.compile_kernels(quiet=True)
    network = load_network(model_dir)
    x, _ = load_xy(model_dir, split="test")
    plan = plan_inference(network, x, batch_size=4096)
    keys = ckks.KeyGenerator(plan.params)
    bundle = ckks.to_bytes(ckks.ServerBundle(plan.params, keys.public_key(), keys.relin_key(),
                                             keys.galois_keys(plan.rotation_steps)))
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key)
    model = enc.compile_model(network, plan, encoder, encryptor if encrypt_weights else None)
    server = Server(bundle, artifacts.model_to_bytes(replace(model, keys=keys_id(bundle)) if encrypt_weights
                                                     else model))
    data = artifacts.ciphertexts_to_bytes(enc.encrypt_batch(x[:4096], plan, encoder, encryptor),
                                          {"records": 4096, "keys": keys_id(bundle), "batch": 0, "first_record": 0})
    return server, data


def check_rounds_and_threads(rounds: int, threads: int) -> None:
    """Refuse a round count below 1 and a thread count (compared with 1) outside [2, the cores].

    Raises:
        ValueError: naming the bad count.
    """
    import ckks

    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if not 2 <= threads <= ckks.available_threads():
        raise ValueError(f"threads must be in [2, {ckks.available_threads()}] (compared with 1), "
                         f"got {threads}")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --rounds, --threads and --plain-weights: the options of a warm-server benchmark."""
    parser.add_argument("--model", type=Path, required=True, help="model directory (models/clinical)")
    parser.add_argument("--rounds", type=int, default=8, help="timed calls per thread count (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="the count compared with 1 (default 2)")
    parser.add_argument("--plain-weights", action="store_true", help="the server owns the model")


def run(model_dir: Path, rounds: int = 8, threads: int = 2, encrypt_weights: bool = True) -> dict:
    """Time ``Server.predict_bytes`` on one batch, alternating 1 and ``threads`` threads.

    Raises:
        ValueError: ``rounds`` < 1, ``threads`` < 2 or beyond the cores, or predictions that differ between
            the thread counts.
    """
    import ckks
    from benchmarks.machine import ThreadBaseline, idle_spin_cpu_seconds
    from ckks.warmup import target_cpu

    check_rounds_and_threads(rounds, threads)
    server, data = server_and_batch(model_dir, encrypt_weights)
    baseline = ThreadBaseline()
    seconds: dict[int, list[float]] = {1: [], threads: []}
    answers: dict[int, bytes] = {}
    for round_ in range(rounds + 1):
        for count in (1, threads):
            ckks.set_threads(count)
            start = time.perf_counter()
            answers[count] = server.predict_bytes(data, "the batch")
            if round_:  # round 0 warms the heap up
                seconds[count].append(time.perf_counter() - start)
                baseline.sample()
    if answers[1] != answers[threads]:
        raise ValueError(f"the predictions differ between 1 and {threads} threads")
    summary = {count: {"min_s": min(s), "median_s": statistics.median(s), "runs_s": s}
               for count, s in seconds.items()}
    return {"benchmark": "server-threads", "model": str(model_dir), "records": 4096, "cpu": target_cpu(),
            "encrypt_weights": encrypt_weights, "rounds": rounds, "threads": summary,
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "unset (libgomp's default, 300000)"),
            "idle_spin_cpu_s": min(idle_spin_cpu_seconds(threads) for _ in range(3)),
            "speedup": summary[1]["min_s"] / summary[threads]["min_s"],
            "speedup_median": summary[1]["median_s"] / summary[threads]["median_s"],
            "baseline": baseline.what, "baseline_speedup": baseline.speedup(1, threads),
            "baseline_speedup_median": baseline.speedup(1, threads, statistics.median)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results")
    args = parser.parse_args(argv)
    try:
        result = run(args.model, args.rounds, args.threads, not args.plain_weights)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    weights = "encrypted" if result["encrypt_weights"] else "plain"
    print(f"Server.predict_bytes, {args.model}, 4096 records, weights {weights}, {result['cpu']}, "
          f"{args.rounds} rounds (after one warm-up) alternating thread counts; GOMP_SPINCOUNT "
          f"{result['gomp_spincount']}, idle kernel threads spend {result['idle_spin_cpu_s'] * 1e3:.2f} ms "
          f"of CPU in the 0.2 s after a kernel")
    for count, row in result["threads"].items():
        print(f"  {count} thread(s): min {row['min_s']:.4f} s, median {row['median_s']:.4f} s")
    print(f"  speed-up {result['speedup']:.2f}x (minima), {result['speedup_median']:.2f}x (medians); "
          f"baseline in the same rounds, {result['baseline']}: {result['baseline_speedup']:.2f}x (minima), "
          f"{result['baseline_speedup_median']:.2f}x (medians)")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
