"""The command line of the benchmark scripts that time a fixed workload over ``--rounds``
(``benchmarks.mac_bandwidth``, ``benchmarks.signed_compare``): ``--rounds N``, ``--json FILE``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main_over_rounds(argv: list[str] | None, doc: str, default_rounds: int, rounds_help: str,
                     run: Callable[[int], dict[str, Any]],
                     show: Callable[[dict[str, Any], int], None]) -> int:
    """Parse ``--rounds`` (default ``default_rounds``) and ``--json``, then ``result = run(rounds)``,
    ``show(result, rounds)`` and the result written as JSON if asked; the first paragraph of ``doc`` is the
    description. Returns the exit status: 0, or 2 after printing ``error: ...`` for a ValueError of ``run``
    (a bad round count, or a check of the results that failed)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=default_rounds,
                        help=f"timed rounds {rounds_help} (default {default_rounds})")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results")
    args = parser.parse_args(argv)
    try:
        result = run(args.rounds)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    show(result, args.rounds)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
