"""How many parallel kernels one batch's predict launches, kernel by kernel.

    .venv/bin/python benchmarks/kernel_launches.py --model models/clinical [--plain-weights] [--json F]

Every call of a parallel Numba kernel (``@njit(parallel=True)``) starts a parallel region that ends in a
barrier: the calling thread waits there until every kernel thread has done its share. On a shared machine a
thread the host has preempted holds the others up at each barrier, so the number of launches is what makes
a two-thread predict sensitive to a busy host, beside the work they do. This script makes a server and one
4096-record batch (``benchmarks.server_threads.server_and_batch``), predicts once to warm up, then counts
the calls of every parallel kernel of ``ckks`` during one more ``Server.predict_bytes``. A kernel with two
``prange`` loops (``_fast_base_convert``) opens two regions per call; the table counts calls.

The counting wraps each kernel where its module looks it up, for that one call only: the kernels are called
from Python (never from other kernels), so every launch goes through the wrapper.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def parallel_kernels() -> list[tuple[Any, str]]:
    """(module, attribute name) of every parallel Numba kernel in the modules of ``ckks``."""
    import numba.core.registry

    import ckks

    found = []
    for info in pkgutil.walk_packages(ckks.__path__, "ckks."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (isinstance(obj, numba.core.registry.CPUDispatcher) and obj.targetoptions.get("parallel")
                    and obj.py_func.__module__ == module.__name__):
                found.append((module, name))
    return found


@contextmanager
def observing(kernels: list[tuple[Any, str]],
              record: Callable[[str, float, tuple[Any, ...]], None]) -> Iterator[None]:
    """Inside the block, each call of one of ``kernels`` is followed by record("module.name", its wall
    seconds, its arguments); the kernels are the originals again after the block."""
    originals = [(module, name, getattr(module, name)) for module, name in kernels]

    def observed(label: str, kernel: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            start = time.perf_counter()
            result = kernel(*args)
            record(label, time.perf_counter() - start, args)
            return result
        return call

    try:
        for module, name, kernel in originals:
            setattr(module, name, observed(f"{module.__name__.removeprefix('ckks.')}.{name}", kernel))
        yield
    finally:
        for module, name, kernel in originals:
            setattr(module, name, kernel)


@contextmanager
def counting(kernels: list[tuple[Any, str]]) -> Iterator[Counter]:
    """Inside the block, each call of one of ``kernels`` adds one to the counter under "module.name"."""
    calls: Counter = Counter()

    def count(label: str, _seconds: float, _args: tuple[Any, ...]) -> None:
        calls[label] += 1

    with observing(kernels, count):
        yield calls


def run(model_dir: Path, encrypt_weights: bool = True) -> dict:
    """The kernel launches of one ``Server.predict_bytes`` of a 4096-record batch of ``model_dir``.

    Raises:
        FileNotFoundError: the model or its test split is missing.
    """
    from benchmarks.server_threads import server_and_batch

    server, data = server_and_batch(model_dir, encrypt_weights)
    server.predict_bytes(data, "the batch")
    with counting(parallel_kernels()) as calls:
        server.predict_bytes(data, "the batch")
    return {"benchmark": "kernel-launches", "model": str(model_dir), "records": 4096,
            "encrypt_weights": encrypt_weights, "launches": sum(calls.values()), "by_kernel": dict(calls)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model directory (models/clinical)")
    parser.add_argument("--plain-weights", action="store_true", help="the server owns the model")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the counts")
    args = parser.parse_args(argv)
    try:
        result = run(args.model, not args.plain_weights)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    weights = "encrypted" if result["encrypt_weights"] else "plain"
    print(f"Server.predict_bytes, {args.model}, 4096 records, weights {weights}: "
          f"{result['launches']} parallel kernel launches")
    for label, count in sorted(result["by_kernel"].items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:5d}  {label}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
