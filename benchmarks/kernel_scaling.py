"""Each parallel kernel's speed-up from 1 to T threads inside one batch's predict: where a second thread is
lost, kernel by kernel, and how much lies outside the kernels.

    .venv/bin/python benchmarks/kernel_scaling.py --model models/clinical [--plain-weights] [--rounds 8]
        [--threads 2] [--top 25] [--json F]

One server and one 4096-record batch (``benchmarks.server_threads.server_and_batch``).
``Server.predict_bytes`` runs ``rounds`` times at 1 thread and at T threads, alternating, after one warm-up
call at each count. Every call of a parallel kernel is timed where its module looks it up
(``benchmarks.kernel_launches.observing``). The calls come in the same order in every predict, so call i
of one round is call i of the others: each call keeps its fastest time over the rounds at each count (the
host's slow spells drop out call by call). The calls are then summed by kernel and operand shapes.
Reported per row: calls per predict, milliseconds at 1 and T threads, the speed-up, the milliseconds
lost, T-thread time minus a perfect split (1-thread time / T), and the operand megabytes: the bytes of
every array the calls receive (inputs, outputs, tables, keys), each counted once, and those bytes over the
1-thread time. That is a rough measure of the memory a kernel touches, not its traffic (an array read and
written, or in several passes, moves more; one read in part, less). A row whose rate nears what
``benchmarks/mac_bandwidth.py`` measures for a plain read spends its time on memory; one far below it, on
arithmetic (or its operands stay in the caches). Also: predict's wall minimum at each count, the time
outside the kernels (the least, over the rounds, of a predict's wall time minus its kernels' time:
Python, numpy, loading and writing the batch), and the baseline of the same rounds
(``benchmarks.machine.ThreadBaseline``), the speed-up the host gave work with nothing serial in it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


def _operand_bytes(args: tuple[Any, ...]) -> int:
    """The bytes of a kernel call's array operands, each array counted once."""
    return sum(a.nbytes for a in {id(a): a for a in args if getattr(a, "ndim", 0) >= 1}.values())


def _shapes(args: tuple[Any, ...]) -> str:
    """The shapes of a kernel call's first three array operands, e.g. "(3, 10, 8, 16384) (10, 6, 16384)"."""
    return " ".join([str(a.shape) for a in args if getattr(a, "ndim", 0) >= 1][:3])


def run(model_dir: Path, rounds: int = 8, threads: int = 2, encrypt_weights: bool = True) -> dict:
    """The per-kernel speed-ups of one warm server's predict (see the module docstring).

    Raises:
        ValueError: ``rounds`` < 1, ``threads`` < 2 or beyond the cores, or kernel calls that differ from
            one predict to the next.
        FileNotFoundError: the model or its test split is missing.
    """
    import ckks
    from benchmarks.kernel_launches import observing, parallel_kernels
    from benchmarks.machine import ThreadBaseline
    from benchmarks.server_threads import check_rounds_and_threads, server_and_batch
    from ckks.warmup import target_cpu

    check_rounds_and_threads(rounds, threads)
    server, data = server_and_batch(model_dir, encrypt_weights)
    kernels = parallel_kernels()
    shapes: list[str] = []  # "kernel operand-shapes" of each call, in order, from one untimed predict
    operand_bytes: list[int] = []  # and the bytes of its operands
    labels: list[str] = []  # the kernel of each call, in order, in the predict being timed
    seconds: list[float] = []

    def record_shapes(label: str, _seconds: float, args: tuple[Any, ...]) -> None:
        shapes.append(f"{label} {_shapes(args)}")
        operand_bytes.append(_operand_bytes(args))

    def record_seconds(label: str, elapsed: float, _args: tuple[Any, ...]) -> None:
        labels.append(label)
        seconds.append(elapsed)

    with observing(kernels, record_shapes):
        server.predict_bytes(data, "the batch")
    expected_labels = [key.partition(" ")[0] for key in shapes]
    baseline = ThreadBaseline()
    best: dict[int, list[float]] = {}
    walls: dict[int, list[float]] = {1: [], threads: []}
    outside: dict[int, list[float]] = {1: [], threads: []}  # each predict's wall minus its kernels' time
    for round_ in range(rounds + 1):
        for count in (1, threads):
            ckks.set_threads(count)
            labels.clear()
            seconds.clear()
            start = time.perf_counter()
            with observing(kernels, record_seconds):
                server.predict_bytes(data, "the batch")
            wall = time.perf_counter() - start
            if labels != expected_labels:
                raise ValueError(f"the kernel calls differ from one predict to the next ({len(shapes)} "
                                 f"calls, then {len(labels)}): per-call minima need the same calls in the "
                                 f"same order")
            if round_:  # round 0 warms the heap up at each count
                walls[count].append(wall)
                outside[count].append(wall - sum(seconds))
                best[count] = list(seconds) if count not in best else list(map(min, best[count], seconds))
                baseline.sample()
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "bytes": 0, "ms": {1: 0.0, threads: 0.0}})
    for i, key in enumerate(shapes):
        rows[key]["calls"] += 1
        rows[key]["bytes"] += operand_bytes[i]
        for count in (1, threads):
            rows[key]["ms"][count] += best[count][i] * 1e3
    table = []
    for key, row in rows.items():
        one, many = row["ms"][1], row["ms"][threads]
        kernel, _, operand_shapes = key.partition(" ")
        table.append({"kernel": kernel, "shapes": operand_shapes, "calls": row["calls"], "ms_1": one,
                      "ms_t": many, "speedup": one / many, "lost_ms": many - one / threads,
                      "operand_mb": row["bytes"] / 1e6, "operand_gb_per_s_1": row["bytes"] / one / 1e6})
    table.sort(key=lambda r: -r["lost_ms"])
    kernels_ms = {count: sum(r["ms_1" if count == 1 else "ms_t"] for r in table) for count in (1, threads)}
    wall_ms = {count: min(w) * 1e3 for count, w in walls.items()}
    return {"benchmark": "kernel-scaling", "model": str(model_dir), "records": 4096, "cpu": target_cpu(),
            "encrypt_weights": encrypt_weights, "rounds": rounds, "threads": threads, "kernels": table,
            "kernels_ms": kernels_ms, "wall_min_ms": wall_ms,
            "outside_kernels_ms": {count: min(o) * 1e3 for count, o in outside.items()},
            "speedup": wall_ms[1] / wall_ms[threads], "baseline": baseline.what,
            "baseline_speedup": baseline.speedup(1, threads)}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.server_threads import add_server_arguments

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser)
    parser.add_argument("--top", type=int, default=25, help="rows printed, most milliseconds lost first")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write every row")
    args = parser.parse_args(argv)
    if args.top < 1:  # a slice [:0] or [:-k] would print no rows or silently drop the last ones
        print(f"error: --top must be a positive integer, got {args.top}", file=sys.stderr)
        return 2
    try:
        result = run(args.model, args.rounds, args.threads, not args.plain_weights)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = result["threads"]
    weights = "encrypted" if result["encrypt_weights"] else "plain"
    print(f"Server.predict_bytes, {args.model}, 4096 records, weights {weights}, {result['cpu']}; per-call "
          f"minima over {args.rounds} rounds alternating 1 and {t} threads")
    print(f"  predict wall minimum {result['wall_min_ms'][1]:.1f} -> {result['wall_min_ms'][t]:.1f} ms "
          f"({result['speedup']:.2f}x); kernels (sum of per-call minima) {result['kernels_ms'][1]:.1f} -> "
          f"{result['kernels_ms'][t]:.1f} ms; outside the kernels {result['outside_kernels_ms'][1]:.1f} -> "
          f"{result['outside_kernels_ms'][t]:.1f} ms; baseline ({result['baseline']}) "
          f"{result['baseline_speedup']:.2f}x at its best")
    print(f"  {'kernel':42} {'calls':>5} {'1 thread ms':>11} {f'{t} threads ms':>12} {'speed-up':>8} "
          f"{'lost ms':>8} {'operand MB':>10} {'GB/s at 1':>9}  operand shapes")
    for row in result["kernels"][: args.top]:
        print(f"  {row['kernel']:42} {row['calls']:5d} {row['ms_1']:11.2f} {row['ms_t']:12.2f} "
              f"{row['speedup']:8.2f} {row['lost_ms']:8.2f} {row['operand_mb']:10.1f} "
              f"{row['operand_gb_per_s_1']:9.2f}  {row['shapes']}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
