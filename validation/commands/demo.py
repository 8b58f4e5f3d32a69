"""``ckkslab demo``: the shipped model on real test records, in plaintext, ckkslab and HElayers."""

from __future__ import annotations

import argparse
from pathlib import Path

from validation.commands.compare import add_quiet

SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "models"
RECIPES = {
    "clinical": "the clinical model: min-max features, logit output, threshold tuned for recall",
    "paper": "the paper's recipe: L2-normalised records, x^2 output, threshold 0.5 (it can collapse to one "
             "class)",
}
BATCH = 4096
QUICK_BATCH = 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo", help="compare the three engines on one batch of the shipped model (start here)",
        description=f"On the shipped model (models/<recipe>) and its real test records, run one batch of "
        f"{BATCH} records in plaintext, through ckkslab and through HElayers (--threads each, default all cores), and print "
        "metrics, agreement with plaintext, and timings with ratios. The full report, plots and outputs go "
        "to OUT/<recipe>/. Same as `ckkslab compare --model models/<recipe> --batches 1 --fresh` (every "
        "demo computes its batch anew).")
    parser.add_argument("--recipe", choices=(*RECIPES, "both"), default="clinical",
                        help="which shipped model: clinical (default), paper, or both")
    parser.add_argument("--quick", action="store_true",
                        help=f"less work: one batch of {QUICK_BATCH} records instead of {BATCH}, and the "
                        "server keeps the model weights in plaintext (no model encryption)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"),
                        help="where the reports go, one directory per recipe (default out/demo)")
    add_quiet(parser)
    parser.set_defaults(func=run)


def _from_here(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it (shorter in reports), else as is."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run(args: argparse.Namespace) -> int:
    """Compare the engines on each chosen shipped model and print a short summary of each."""
    from validation.cli import UserError
    from validation.compare import CompareError, CompareOptions, compare
    from validation.report import save_comparison
    from validation.report_text import summary_text

    recipes = list(RECIPES) if args.recipe == "both" else [args.recipe]
    batch = QUICK_BATCH if args.quick else BATCH
    for recipe in recipes:
        model_dir = _from_here(SHIPPED_MODELS / recipe)
        if not (model_dir / "model.json").is_file():
            raise UserError(f"no shipped model in {model_dir}: train it with `ckkslab train --recipe "
                            f"{recipe} --out {model_dir}`")
        out = args.out / recipe
        weights = "plaintext weights on the server" if args.quick else "weights encrypted by the client"
        print(f"== {recipe}: {RECIPES[recipe]}; one batch of {batch} real test records, {weights} ==",
              flush=True)
        options = CompareOptions(model_dir=model_dir, data_dir=model_dir, out=out, batch_size=batch,
                                 batches=1, encrypt_weights=not args.quick, threads=args.threads,
                                 quiet=args.quiet, fresh=True)
        try:
            report = save_comparison(compare(options))
        except CompareError as exc:
            raise UserError(str(exc)) from exc
        print(summary_text(report, out))
        print(f"  details: {out}/report.md; the same with other settings: ckkslab compare --model "
              f"{model_dir} --batch-size {batch}{' --plain-weights' if args.quick else ''} --out {out} "
              "--fresh")
    return 0
