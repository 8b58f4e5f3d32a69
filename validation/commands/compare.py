"""``ckkslab compare``: plaintext, ckkslab and HElayers on the same batches, with a report and plots.

Each engine's finished batches are kept in OUT/batches (``validation.checkpoint``): after Ctrl-C, the same
command resumes; ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nn.distributed import SchedulerOptions


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` after the sub-command too, without overriding ``ckkslab --quiet <command>``."""
    parser.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress display")


def batch_count(text: str) -> int | None:
    """The value of ``--batches``: an integer, or ``all`` (None: every batch the data holds)."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of batches or 'all', got {text!r}") from None


def add_scheduler_options(parser: argparse.ArgumentParser) -> None:
    """``--scheduler local|dask``, ``--workers N`` and ``--scheduler-address tcp://host:port``."""
    parser.add_argument("--scheduler", choices=("local", "dask"), default="local",
                        help="where the server's side runs: local (this process, one batch after another; "
                        "default) or dask (dask.distributed workers: an embedded LocalCluster on 127.0.0.1, "
                        "or the cluster at --scheduler-address). Workers get only the server bundle (no "
                        "secret key), the model and the encrypted batches")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --scheduler dask: worker processes of the embedded LocalCluster, one "
                        "thread each (default: one per CPU)")
    parser.add_argument("--scheduler-address", default=None, metavar="ADDRESS",
                        help="with --scheduler dask: an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                        "(its workers need ckkslab installed)")


def scheduler_options(args: argparse.Namespace) -> SchedulerOptions:
    """The ``nn.distributed.SchedulerOptions`` of the parsed options.

    Raises:
        SchedulerError: options that do not fit together (e.g. --workers without --scheduler dask).
    """
    from nn.distributed import SchedulerOptions

    return SchedulerOptions(args.scheduler, args.workers, args.scheduler_address)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command."""
    parser = subparsers.add_parser(
        "compare", help="run plaintext, ckkslab and HElayers on the same batches and compare them",
        description="Run every engine on exactly the same records (the first BATCHES x BATCH_SIZE rows of "
        "x_test.h5), decide each record with the model's rule (ckkslab.json), and write OUT/report.json, "
        "OUT/report.md, OUT/outputs.npz and PNG plots (error histogram against plaintext, stage timings, "
        "ROC curves): metrics per engine, agreement in bits (-log2 of the worst and of the mean absolute "
        "error) and equal decisions per pair, and ckkslab/HElayers timing ratios from the same run. Without "
        "pyhelayers the helayers engine is skipped with a message and the rest runs. Each engine's finished "
        "batches are written to OUT/batches/ENGINE/ as soon as they are decrypted: after Ctrl-C, rerun the "
        "same command and it computes only the missing batches (a checkpoint of other inputs or options is "
        "refused; --fresh discards it).",
        epilog="example: ckkslab compare --model models/clinical --batches 1 --out out/clinical")
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory: model.json + model.h5 (Dense and x^2 layers, as HElayers "
                        "reads them), optional ckkslab.json (output kind, decision threshold)")
    parser.add_argument("--data", type=Path, default=None,
                        help="directory holding x_test.h5 and y_test.h5 (default: the model directory)")
    parser.add_argument("--batch-size", type=int, default=4096,
                        help="records per encrypted batch, for both encrypted engines (default 4096)")
    parser.add_argument("--batches", type=batch_count, default=1,
                        help="number of batches compared, or 'all' (every full batch of x_test.h5); "
                        "x_test.h5 must hold at least BATCHES x BATCH_SIZE records (default 1)")
    parser.add_argument("--engines", default="plain,ckkslab,helayers",
                        help="comma-separated subset of plain,ckkslab,helayers (default: all three)")
    parser.add_argument("--out", type=Path, default=Path("out/compare"),
                        help="directory for the report and plots (default out/compare)")
    parser.add_argument("--plain-weights", action="store_true",
                        help="the server owns the model and keeps its weights in plaintext (default: the "
                        "client encrypts the weights, as the paper)")
    parser.add_argument("--backend", default="SEAL",
                        help="HElayers backend: SEAL (default), OpenFHE, Lattigo, or 'paper' (HEaaN, then "
                        "SEAL)")
    parser.add_argument("--frac-bits", type=int, default=30,
                        help="fractional precision ckkslab plans for, in bits (default 30, as HElayers)")
    parser.add_argument("--fresh", action="store_true",
                        help="discard the finished batches an earlier run kept in OUT/batches and compute "
                        "every batch (default: load those made with the same model, data, batch size and "
                        "engine options, and compute only the others)")
    add_scheduler_options(parser)
    add_quiet(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare the engines on ``args.model`` / ``args.data`` and print a summary.

    Raises:
        KeyboardInterrupt: Ctrl-C, its message saying where the finished batches are and how to resume.
    """
    from validation.checkpoint import checkpoint_dir
    from validation.cli import UserError
    from validation.compare import CompareError, CompareOptions, compare, parse_engines
    from validation.report import save_comparison
    from validation.report_text import summary_text

    try:
        options = CompareOptions(
            model_dir=args.model, data_dir=args.model if args.data is None else args.data, out=args.out,
            batch_size=args.batch_size, batches=args.batches, engines=parse_engines(args.engines),
            encrypt_weights=not args.plain_weights, backend=args.backend, threads=args.threads,
            frac_bits=args.frac_bits, quiet=args.quiet, scheduler=scheduler_options(args), fresh=args.fresh)
        report = save_comparison(compare(options))
    except CompareError as exc:
        raise UserError(str(exc)) from exc
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the batches finished so far are kept in {checkpoint_dir(args.out)}: rerun "
                                "the same command to resume (add --fresh to start over)") from None
    print(summary_text(report, args.out))
    return 0
