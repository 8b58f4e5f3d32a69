"""``ckkslab trace``: one encrypted neuron at toy size (N = 16), every number printed, checkable by hand."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _numbers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``trace`` sub-command."""
    from validation.trace import DEFAULT_BIAS, DEFAULT_RECORD, DEFAULT_WEIGHTS

    parser = subparsers.add_parser(
        "trace", help="toy-size (N=16, insecure) trace of one encrypted neuron, every number printed",
        description="Encode a 4-feature record at toy size (N = 16, primes of 30/20/20 bits, scale 2^20: "
        "insecure, for reading only), encrypt it, and run one neuron y = (w . x + b)^2 as the network does "
        "(multiply by plaintext weights, rescale, rotate-and-add, add the bias, square, relinearize, "
        "rescale), printing the slots, the polynomial coefficients, the RNS limbs, the NTT form, every "
        "ciphertext, and after each step its level, exact scale, measured noise and precision in bits.")
    parser.add_argument("--record", type=_numbers, default=DEFAULT_RECORD, metavar="X1,X2,X3,X4",
                        help=f"the 4 features (default {','.join(map(str, DEFAULT_RECORD))})")
    parser.add_argument("--weights", type=_numbers, default=DEFAULT_WEIGHTS, metavar="W1,W2,W3,W4",
                        help=f"the 4 weights (default {','.join(map(str, DEFAULT_WEIGHTS))})")
    parser.add_argument("--bias", type=float, default=DEFAULT_BIAS, help=f"the bias (default {DEFAULT_BIAS})")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the toy keys and encryption (default 1: the same output every run)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write every number (exact integers) to FILE as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the toy trace and print it."""
    from validation.cli import UserError
    from validation.trace import TraceError, format_trace, run_trace, to_json

    try:
        trace = run_trace(tuple(args.record), tuple(args.weights), args.bias, seed=args.seed)
    except TraceError as exc:
        raise UserError(str(exc)) from exc
    print(format_trace(trace))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(trace), indent=1) + "\n")
    return 0
