"""Fuzz every loader of ckkslab: zero crashes other than the named errors, zero buffers accepted that decode
to another object than the bytes say, bounded memory on huge declared lengths.

The command line (``python benchmarks/fuzz_loaders.py``, see there for examples): the loaders ``--loaders``
names (targets.py), each run through ``worker.run_loader``, one row of outcomes (oracle.py) per loader, the
bugs grouped by kind, and ``--json`` for the figures of a long run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .mutators import foreign_samples
from .oracle import BUGS, Result
from .targets import build_loaders
from .worker import peak_rss_mb, run_loader


def table(results: Sequence[Result]) -> str:
    head = (f"{'loader':<22}{'inputs':>9}{'rejected':>10}{'identical':>10}{'faithful':>10}{'ignorable':>10}"
            f"{'different':>10}{'crash':>8}{'seconds':>9}{'max dRSS MB':>12}")
    lines = [head, "-" * len(head)]
    for r in results:
        c = r.counts
        lines.append(f"{r.loader:<22}{r.inputs:>9}{c['rejected']:>10}{c['identical']:>10}{c['faithful']:>10}"
                     f"{c['ignorable']:>10}{c['different']:>10}{c['crash']:>8}{r.seconds:>9.1f}"
                     f"{r.rss_growth_mb:>12.1f}")
    return "\n".join(lines)


def loader_seed(seed: int, name: str) -> int:
    """The mutation seed of one loader: the same whichever loaders a run selects."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-loader", type=int, default=10000, help="inputs per loader (default 10000)")
    parser.add_argument("--loaders", default=None,
                        help="comma-separated loader names or prefixes (default all)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mutation generator (default 1)")
    parser.add_argument("--timeout", type=float, default=8.0,
                        help="seconds per input before it counts as a hang (default 8: above the 5 s after "
                        "which the loaders' HDF5 sandbox refuses a file it cannot finish reading; a normal "
                        "input takes milliseconds)")
    parser.add_argument("--mem-cap-mb", type=int, default=1024, help="address space allowed above the start "
                        "(default 1024; 0 = no cap)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--crash-dir", type=Path, default=None,
                        help="save the first 20 bug inputs per loader")
    parser.add_argument("--list", action="store_true", help="list the loaders and exit")
    args = parser.parse_args(argv)
    names = None if args.loaders is None else [n.strip() for n in args.loaders.split(",") if n.strip()]
    loaders = build_loaders(names)
    if not loaders:
        parser.error(f"--loaders {args.loaders!r} names no loader (see --list)")
    if args.list:
        for ld in loaders:
            print(f"{ld.name:<22} {len(ld.seeds)} seed(s), {len(ld.edge_cases)} edge case(s), named: "
                  + ", ".join(t.__name__ for t in ld.named))
        return 0
    foreign = foreign_samples(loaders)
    results = []
    started = time.time()
    print(f"fuzzing {len(loaders)} loaders x {args.per_loader} inputs, seed {args.seed}, memory cap "
          f"+{args.mem_cap_mb} MB, python {sys.version.split()[0]}", flush=True)
    for loader in loaders:
        result = run_loader(loader, args.per_loader, loader_seed(args.seed, loader.name), foreign,
                            args.timeout, args.crash_dir, progress=True, mem_cap_mb=args.mem_cap_mb)
        results.append(result)
        print(table([result]).splitlines()[-1], flush=True)
        for key, example in result.examples.items():
            print(f"    {example['count']:>6} x {key}  (first: {example['input']}, {example['size']} "
                  "bytes)", flush=True)
    for ld in loaders:
        if ld.cleanup is not None:
            ld.cleanup()
    print()
    print(table(results))
    total = sum(r.inputs for r in results)
    bugs = sum(r.counts[o] for r in results for o in BUGS)
    print(f"\n{total} inputs in {time.time() - started:.0f} s; {bugs} bug outcome(s) "
          f"(crash + different); peak RSS {peak_rss_mb():.0f} MB")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"per_loader": args.per_loader, "seed": args.seed, "mem_cap_mb": args.mem_cap_mb,
                   "results": [r.row() for r in results]}
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 1 if bugs else 0
