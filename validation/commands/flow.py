"""``ckkslab keygen | encrypt | predict | decrypt``: the client/server flow through files in a workspace.

    ckkslab keygen  --model models/clinical --workspace work          (client: plan + keys)
    ckkslab encrypt --model models/clinical --workspace work          (client: model weights + one batch)
    ckkslab predict --workspace work                                  (server: no secret key)
    ckkslab decrypt --model models/clinical --workspace work          (client: scores, decisions)
With ``--plain-weights`` the server owns the model: ``ckkslab predict --model DIR`` encodes it itself.
Each command first makes ckkslab's Numba kernels ready (``ckks.compile_kernels``), so the times it prints
never include compilation; when it had to compile, it says how long that took.
``encrypt --batches all`` writes every batch of the test set as its own file; ``predict`` then runs them all
(``--scheduler dask`` on a Dask cluster), resuming after an interruption, and ``decrypt`` merges them.
"""

from __future__ import annotations

import argparse
import time

from validation.cli import UserError
from validation.commands.compare import add_scheduler_options, batch_count, scheduler_options


def _add_common(p: argparse.ArgumentParser, model: bool = True) -> None:
    p.add_argument(
        "--workspace", default="work", help="directory holding client/, context/ and server/ (default: work)"
    )
    if model:
        p.add_argument("--model", required=True, help="Keras model directory (model.json, model.h5)")


def _kernels_ready(args: argparse.Namespace) -> None:
    """Compile (or load from Numba's cache) the kernels before anything is timed; one line if it compiled."""
    from ckks import compile_kernels

    kernels = compile_kernels(quiet=args.quiet)
    if kernels.compiled:
        print(f"compile kernels (once, not in the times below): {kernels.describe()}")


def _batch(args: argparse.Namespace):
    from nn.data import load_xy

    x, _ = load_xy(args.data or args.model, split="test")
    first = args.batch_index * args.batch_size
    if first >= x.shape[0]:
        raise UserError(
            f"batch {args.batch_index} starts at record {first}, but the data has {x.shape[0]} records"
        )
    return x[first : first + args.batch_size]


def _keygen(args: argparse.Namespace) -> int:
    from nn import workflow
    from nn.data import load_xy
    from nn.model import load_network

    net = load_network(args.model)
    calibration, _ = load_xy(args.calibration or args.model, split=args.calibration_split)
    _kernels_ready(args)
    start = time.perf_counter()
    plan = workflow.keygen(
        args.workspace, net, calibration, args.batch_size, args.frac_bits, quiet=args.quiet
    )
    print(f"planned and generated keys in {time.perf_counter() - start:.2f} s:\n{plan.describe(net)}")
    print(f"secret key -> {args.workspace}/client/secret.key (keep it); context -> {args.workspace}/context/")
    return 0


def _encrypt(args: argparse.Namespace) -> int:
    from nn import workflow
    from nn.model import load_network

    net = load_network(args.model)
    _kernels_ready(args)
    if not args.plain_weights:
        start = time.perf_counter()
        size = workflow.encrypt_model(args.workspace, net)
        print(f"encrypted the model in {time.perf_counter() - start:.2f} s: {size / 2**20:.1f} MiB")
    start = time.perf_counter()
    if "batches" not in vars(args):  # the single-batch files (server/data.ckks)
        size = workflow.encrypt_data(args.workspace, _batch(args))
        print(f"encrypted the batch in {time.perf_counter() - start:.2f} s: {size / 2**20:.1f} MiB")
        return 0
    from nn.data import load_xy

    x, _ = load_xy(args.data or args.model, split="test")
    size = workflow.encrypt_batches(args.workspace, x, args.batch_size, args.batches, quiet=args.quiet)
    print(f"encrypted the batches in {time.perf_counter() - start:.2f} s: {size / 2**20:.1f} MiB in "
          f"{args.workspace}/server/data/, listed in {args.workspace}/client/batches.json")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from nn import workflow
    from nn.encrypted import StageTimer
    from nn.model import load_network

    scheduler = scheduler_options(args)
    batches = workflow.uses_batches(args.workspace)
    if scheduler.kind != "local" and not batches:
        raise UserError("--scheduler dask runs batch files: encrypt them with `ckkslab encrypt --batches N` "
                        "(or all) first")
    _kernels_ready(args)  # after the option checks: a typo costs no compilation
    if args.model:
        workflow.encode_model(args.workspace, load_network(args.model))
    timer = StageTimer()
    start = time.perf_counter()
    if batches:
        try:
            report = workflow.predict_batches(args.workspace, scheduler, timer, quiet=args.quiet)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"the predictions finished so far are kept in {args.workspace}: rerun the "
                                    "same command to resume") from None
        print(f"predicted {len(report.computed)} batch(es) in {time.perf_counter() - start:.2f} s on "
              f"{report.scheduler}; {len(report.skipped)} already done (resumed); encrypted predictions "
              f"{report.bytes_written / 2**20:.2f} MiB")
    else:
        size = workflow.predict(args.workspace, timer)
        print(f"predicted in {time.perf_counter() - start:.2f} s; encrypted predictions "
              f"{size / 2**20:.2f} MiB")
    for stage, seconds in timer.seconds.items():
        print(f"  {stage:<40} {seconds:8.3f} s")
    if batches and report.failed:
        failures = "; ".join(f"{workflow.batch_file(index)}: {type(error).__name__}: {error}"
                             for index, error in sorted(report.failed.items()))
        raise UserError(f"{len(report.failed)} batch(es) failed, the others are written: {failures}")
    return 0


def _decrypt(args: argparse.Namespace) -> int:
    from nn import workflow
    from nn.model import load_network

    network = load_network(args.model) if args.model else None
    _kernels_ready(args)
    if workflow.uses_batches(args.workspace):
        ids, scores, path = workflow.decrypt_batches(args.workspace, network, flood_bits=args.flood_bits,
                                                     quiet=args.quiet)
        print(f"decrypted {scores.shape[0]} scores (record ids 0-{ids.max()}, each once) -> {path}")
        return 0
    scores, path = workflow.decrypt(args.workspace, network, flood_bits=args.flood_bits)
    print(f"decrypted {scores.shape[0]} scores -> {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the keygen, encrypt, predict and decrypt sub-commands."""
    p = subparsers.add_parser(
        "keygen",
        help="client: plan CKKS parameters for a model and generate keys",
        description="Plan parameters from the model's depth and the value ranges on "
        "calibration records, generate the keys, write the secret key (client/) and the "
        "server's context bundle (context/, no secret key).",
    )
    _add_common(p)
    p.add_argument(
        "--calibration", help="directory whose x_<split>.h5 fixes the value range (default: --model)"
    )
    p.add_argument("--calibration-split", default="test", help="which split to calibrate on (default: test)")
    p.add_argument("--batch-size", type=int, default=4096, help="records per encrypted batch (default 4096)")
    p.add_argument(
        "--frac-bits", type=int, default=30, help="requested fractional precision in bits (default 30)"
    )
    p.set_defaults(func=_keygen)

    p = subparsers.add_parser(
        "encrypt",
        help="client: encrypt the model weights and one batch of records",
        description="Encrypt the weights (unless --plain-weights: then the server owns the "
        "model) and one batch of x_test records, for the server.",
    )
    _add_common(p)
    p.add_argument("--data", help="directory with x_test.h5 (default: --model)")
    p.add_argument("--batch-size", type=int, default=4096, help="records per batch (default 4096)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--batch-index", type=int, default=0,
                       help="which batch of the test file, into server/data.ckks (default 0)")
    which.add_argument("--batches", type=batch_count, default=argparse.SUPPRESS, metavar="N|all",
                       help="the first N batches, or all (the last one possibly smaller), each into its own "
                       "server/data/batch_NNNN.ckks, listed in client/batches.json; replaces the data "
                       "encrypted before")
    p.add_argument("--plain-weights", action="store_true", help="do not encrypt the weights")
    p.set_defaults(func=_encrypt)

    p = subparsers.add_parser(
        "predict",
        help="server: run the network on the encrypted batch(es)",
        description="Load the context bundle (no secret key), the model and the encrypted "
        "batch; write encrypted predictions. With --model the server encodes its own "
        "plaintext weights. With batch files (encrypt --batches), every batch is predicted into "
        "server/predictions/batch_NNNN.ckks, each written whole (temporary name, then rename); a rerun "
        "skips the batches already predicted from the same data and model, and a batch that fails "
        "(e.g. a corrupted file) is named while the others are written.",
    )
    _add_common(p, model=False)
    p.add_argument("--model", help="plain Keras model directory, when the server owns the model")
    add_scheduler_options(p)
    p.set_defaults(func=_predict)

    p = subparsers.add_parser(
        "decrypt",
        help="client: decrypt the predictions into scores and decisions",
        description="Decrypt the server's predictions with the secret key; write "
        "client/scores.csv (score, probability, decision). With batch files (encrypt --batches), every "
        "batch client/batches.json lists is merged, with a record_id column, each id exactly once.",
    )
    _add_common(p, model=False)
    p.add_argument("--model", help="model directory (its ckkslab.json says how scores become decisions)")
    p.add_argument("--flood-bits", type=float, default=None, metavar="B",
                   help="noise-flooded decryption: add noise of 2^B at scale 1 before decoding, so that the "
                   "scores can be shared without leaking the key's error (Li-Micciancio); see SECURITY.md for "
                   "B and its measured precision cost")
    p.set_defaults(func=_decrypt)
