"""``ckkslab bench ops|inference|batches``: ckkslab against SEAL / HElayers in one process, and ckkslab on
every batch of a test split, locally and on Dask.

The benchmarks themselves live in ``benchmarks/`` (runnable scripts, also installed as a package so that
the ``ckkslab`` command finds them from any directory).
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType


def _benchmark(name: str) -> ModuleType:
    """``benchmarks.<name>`` (an installed package; it imports only the standard library at module level)."""
    return importlib.import_module(f"benchmarks.{name}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command with its ``ops``, ``inference`` and ``batches`` sub-commands."""
    parser = subparsers.add_parser(
        "bench", help="benchmarks: CKKS primitives vs SEAL, encrypted inference vs HElayers",
        description="Benchmarks run both engines in one process, on --threads threads (default: all cores; "
        "SEAL's primitive ops are single-threaded, so give --threads 1 to compare one core with one), "
        "and print both times "
        "and the ratio ckkslab / reference (below 1: ckkslab is faster). Check the machine load first: "
        "the figures are minima of wall times.")
    commands = parser.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name, help_text, description, run in (
        ("ops", "CKKS primitives, ckkslab vs SEAL (through pyhelayers)",
         "Encode, encrypt, decrypt+decode, add, multiply-plain, multiply, relinearize, "
         "multiply+relinearize, rescale, rotate (ckkslab and SEAL, same N and chain) and the NTT per limb "
         "(ckkslab; SEAL's figure reported beside it), min over repeats on fresh operands, ckkslab on "
         "--threads, SEAL on one thread; "
         "then the first-call (Numba compile) cost in fresh processes, empty and warm cache.", run_ops),
        ("inference", "encrypted inference of a model, ckkslab vs HElayers-SEAL",
         "The same test batch through ckkslab and HElayers-SEAL, weights encrypted and plain: "
         "time per stage and ratio, artifact sizes, peak memory, precision vs the float64 network.",
         run_inference),
        ("batches", "every batch of the test split: records/s locally and on Dask, peak memory",
         "All full batches of the test split through ckkslab (weights encrypted) on the local "
         "scheduler and on an embedded Dask LocalCluster of each --workers count: records/s and the ratio "
         "to local; then the peak RSS of `ckkslab compare` with --batches 1 and --batches all in fresh "
         "processes, and their ratio.", run_batches),
    ):
        command = commands.add_parser(name, help=help_text, description=description)
        _benchmark(name).add_arguments(command)
        command.set_defaults(func=run, starts_dask_clusters=name == "batches")

def run_ops(args: argparse.Namespace) -> int:
    """``ckkslab bench ops``."""
    _check_positive(args, "repeats", "rounds")
    _benchmark("ops").run_from_args(args, quiet=args.quiet)
    return 0


def run_inference(args: argparse.Namespace) -> int:
    """``ckkslab bench inference``."""
    _check_positive(args, "batches", "repeats")
    _benchmark("inference").run_from_args(args, quiet=args.quiet)
    return 0


def run_batches(args: argparse.Namespace) -> int:
    """``ckkslab bench batches``."""
    _benchmark("batches").run_from_args(args, quiet=args.quiet)
    return 0


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    from validation.cli import UserError

    for name in names:
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(args, name)}")
