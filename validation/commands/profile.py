"""``ckkslab profile``: where the time of one encrypted inference goes (hotspot and per-stage tables)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``profile`` sub-command."""
    parser = subparsers.add_parser(
        "profile", help="hotspot profile of one encrypted inference (per primitive and per layer)",
        description="Run one encrypted inference (plan, keygen, encrypt model and batch, predict, decrypt) "
        "with the engine's instrumentation on, and print the hotspot table (calls, inclusive and self "
        "time, share of the wall time, time per call) and the per-stage / per-layer table. Self times "
        "plus the untracked rest add up to the wall time; the instrumentation overhead is measured and "
        "printed. The Numba kernels are compiled (or loaded from the cache) before the recording starts, "
        "and that time is printed on its own line; any later first call is its own entry, numba.compile.")
    parser.add_argument("--model", type=Path, required=True, help="model directory (model.json, model.h5)")
    parser.add_argument("--data", type=Path, default=None,
                        help="directory holding x_test.h5 (default: the model directory)")
    parser.add_argument("--batch-size", type=int, default=4096, help="records in the batch (default 4096)")
    parser.add_argument("--plain-weights", action="store_true",
                        help="server-owned model: weights as plaintexts (default: encrypted weights)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip re-running predict without instrumentation (the overhead check)")
    parser.add_argument("--top", type=int, default=None, metavar="N", help="show only the N largest rows")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the tables as JSON")
    export = parser.add_mutually_exclusive_group()
    export.add_argument("--speedscope", type=Path, default=None, metavar="FILE",
                        help="write the call tree as a speedscope profile (open at speedscope.app)")
    export.add_argument("--pstats", type=Path, default=None, metavar="FILE",
                        help="write the call tree in pstats format (python -m pstats FILE, snakeviz FILE)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Profile one encrypted inference and print the tables."""
    from validation import profile_exports, profiling
    from validation.cli import UserError

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    data_dir = args.model if args.data is None else args.data
    result = profiling.run_profile(args.model, data_dir, batch_size=args.batch_size,
                                   encrypt_weights=not args.plain_weights, baseline=not args.no_baseline,
                                   quiet=args.quiet)
    rec = result.recorder
    weights = "plaintext" if args.plain_weights else "encrypted"
    print(f"ckkslab profile: {args.model}, {result.records} records of {data_dir}/x_test.h5, {weights} "
          f"weights, {args.threads} thread(s)")
    print(result.plan_text)
    print(f"compile kernels (once, before the recording): {result.kernels.describe()}")
    numba = result.numba
    compile_stats = rec.primitives.get("numba.compile")
    seconds = compile_stats.self_seconds if compile_stats else 0.0
    first_calls = compile_stats.calls if compile_stats else 0
    print(f"numba: {first_calls} first kernel calls spent {seconds:.3f} s compiling or loading from cache "
          f"(entry numba.compile, taken out of the primitives' times); {numba['compiled']} signatures "
          f"compiled, {numba['loaded_from_cache']} loaded from the on-disk cache in this process (compile "
          "kernels included; callees included)")
    print()
    print("hotspots of predict, the server's encrypted inference (self time = time in the entry minus the "
          "timed entries it calls; share of predict's wall time)")
    print(profiling.format_hotspots(rec, ("predict",), args.top))
    print()
    print("hotspots of the whole run (client keygen, model and batch encryption, server predict, decrypt)")
    print(profiling.format_hotspots(rec, (), args.top))
    print()
    print("stages (layers are the stages of nn.encrypted.predict)")
    print(profiling.format_stages(rec))
    print()
    print(profiling.margin_text(result))
    p = result.precision
    print(f"precision vs float64: max abs error {p['max_abs_error']:.3g} ({p['bits_min']:.1f} bits; "
          f"{p['bits_min_relative']:.1f} bits relative to the output range)")
    if args.json is not None:
        profiling.write_json(profiling.to_json(result), args.json)
    if args.speedscope is not None:
        args.speedscope.write_text(json.dumps(profile_exports.to_speedscope(rec)) + "\n")
    if args.pstats is not None:
        profile_exports.write_pstats(rec, args.pstats)
    return 0
