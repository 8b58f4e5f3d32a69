"""``ckkslab data``: the diabetes CSV -> preprocessed train/validation/test HDF5 files."""

from __future__ import annotations

import argparse
from pathlib import Path

SHIPPED_CSV = Path(__file__).resolve().parents[2] / "data" / "diabetes_dataset.csv.zip"


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``data`` and ``train``: source table, seed and batch multiples."""
    parser.add_argument("--csv", type=Path, default=SHIPPED_CSV,
                        help="the diabetes table: the 17-column comprehensive table (CSV or zip, the "
                        "paper's) or the 9-column diabetes_prediction_dataset.csv; default: the shipped copy "
                        f"({SHIPPED_CSV.name})")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the 67/33 splits and of the minority-class shuffle (default 1)")
    parser.add_argument("--test-batch", type=int, default=4096,
                        help="the test split is truncated to a multiple of this many records, the "
                        "encrypted batch size (default 4096)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` sub-command."""
    parser = subparsers.add_parser(
        "data", help="preprocess the diabetes table into x/y HDF5 files",
        description="Read the diabetes table, code it as the paper does (location and clinical notes "
        "dropped, gender Female=0/Male=1/Other=2, smoking never=0/No Info=1/not current,ever,former=2/"
        "current=3), split 67/33 train/test then 67/33 train/validation, replicate the minority class in "
        "train, scale per the recipe and write x_{train,val,test}.h5 / y_{train,val,test}.h5 (datasets "
        "x_<split>, y_<split>, the layout HElayers' examples read) plus preprocessing.json. Equal inputs "
        "give byte-identical files.")
    add_data_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="directory to write the files to")
    parser.add_argument("--recipe", choices=("paper", "clinical"), default="paper",
                        help="paper: each record divided by its L2 norm (sklearn normalize), as the paper; "
                        "clinical: each feature min-max scaled to [0, 1] on the training split "
                        "(default paper)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Preprocess ``args.csv`` and write the split files to ``args.out``."""
    from ckks.progress import Progress
    from nn.data import prepare, save_splits

    with Progress("reading and splitting the table", enabled=False if args.quiet else None):
        splits, record = prepare(args.csv, args.recipe, seed=args.seed, test_multiple=args.test_batch)
    save_splits(args.out, splits, record)
    features = len(record["feature_names"])
    print(f"{record['schema']} table {record['source']} -> {args.out} ({features} features, "
          f"{record['feature_scaling']['method']} scaling)")
    for split in ("train", "val", "test"):
        print(f"  {split:5s}: {splits.info['rows'][split]:6d} records, {splits.info['positives'][split]:6d} "
              "diabetic")
    return 0
