"""The ``ckkslab`` command line: one sub-command per module in ``validation.commands``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``func``.
Heavy imports (TensorFlow, pyhelayers, Numba kernels) happen inside the command functions, so
``ckkslab --help`` is instant and inference never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order of ``ckkslab --help``.
COMMAND_MODULES = (
    "validation.commands.data",
    "validation.commands.train",
    "validation.commands.evaluate",
    "validation.commands.flow",
    "validation.commands.compare",
    "validation.commands.demo",
    "validation.commands.bench",
    "validation.commands.profile",
    "validation.commands.trace",
)


THREADS_HELP = ("threads for the engines' kernels: ckkslab's parallel Numba kernels and HElayers' OpenMP "
                "(default: all cores); recorded in reports")


class UserError(Exception):
    """An error the command line reports as one line, without a traceback, and exits 2."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="ckkslab",
        description="CKKS homomorphic encryption from scratch, running a Keras network on encrypted "
        "diabetes records and validated against IBM HElayers.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--threads", type=int, default=None, metavar="T", help=THREADS_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _add_threads_everywhere(subparsers)
    return parser


def _add_threads_everywhere(subparsers: argparse._SubParsersAction) -> None:
    """``--threads`` after any (sub-)sub-command too, as ``ckkslab bench ops --threads 1``."""
    for command in subparsers.choices.values():
        command.add_argument("--threads", type=int, default=argparse.SUPPRESS, metavar="T", help=THREADS_HELP)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_threads_everywhere(action)


def _starts_dask_workers_here(args: argparse.Namespace) -> bool:
    """Whether the command starts an embedded Dask cluster, whose workers need this machine's cores while
    this process encrypts (``--scheduler dask`` without an address, ``bench batches``)."""
    embedded = getattr(args, "scheduler", None) == "dask" and getattr(args, "scheduler_address", None) is None
    return embedded or getattr(args, "starts_dask_clusters", False)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command, turn known errors into a one-line message and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    import ckks  # after parsing: --help stays quick
    from ckks.errors import CkksError

    ckks.keep_freed_memory()
    if _starts_dask_workers_here(args):
        ckks.threads.spin_briefly_before_sleeping()  # before set_threads loads libgomp
    try:
        args.threads = ckks.set_threads(args.threads)
        result = args.func(args)
    except (UserError, CkksError, FileNotFoundError, ValueError) as exc:
        print(f"ckkslab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a command may say how to resume in the interrupt's message
        print(f"ckkslab {args.command}: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
