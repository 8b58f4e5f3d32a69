"""``ckkslab train``: train the paper's or the clinical network and save it in HElayers' Keras layout."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from validation.commands.data import add_data_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train", help="train a network with Keras (needs TensorFlow + tf-keras)",
        description="Train Dense(20) -> x^2 -> Dense(5) -> x^2 -> Dense(1) on the diabetes table and write "
        "model.json + model.h5 (tf-keras 2 layout, as HElayers reads it), x_test.h5 + y_test.h5 (the test "
        "split preprocessed for this model) and ckkslab.json (recipe, output kind, threshold, feature "
        "scaling, training record). Deterministic for a fixed seed.")
    parser.add_argument("--recipe", choices=("paper", "clinical"), required=True,
                        help="paper: L2-normalised records, last x^2, BCE, Adam 0.01, 3 epochs, batch 32 "
                        "(the paper's recipe; may collapse to a constant output); clinical: min-max "
                        "features, linear logit output, L2 penalty, 20 epochs, ranges balanced for "
                        "encryption and a threshold reaching recall 0.87 on the validation split")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    add_data_options(parser)
    parser.add_argument("--data", type=Path, default=None,
                        help="use the files `ckkslab data --recipe <same recipe>` wrote to this directory "
                        "instead of preprocessing --csv")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's number of epochs")
    parser.add_argument("--max-train-rows", type=int, default=None,
                        help="train on the first N training records only (quick checks)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train ``args.recipe`` and save the model directory ``args.out``."""
    from ckks.progress import Progress
    from nn.data import load_splits, prepare
    from nn.metrics import classification_metrics
    from nn.model import load_network
    from validation.cli import UserError

    enabled = False if args.quiet else None
    with Progress("preparing the data", enabled=enabled):
        if args.data is not None:
            splits, record = load_splits(args.data)
            if record.get("recipe") != args.recipe:
                raise UserError(f"{args.data} was preprocessed for recipe '{record.get('recipe')}', "
                                f"not '{args.recipe}'")
        else:
            splits, record = prepare(args.csv, args.recipe, seed=args.seed, test_multiple=args.test_batch)
    try:
        from nn.train import RECIPES, save_model, train  # TensorFlow loads here, only for training
    except ImportError as exc:
        raise UserError(f"training needs TensorFlow and tf-keras ({exc}); install them with "
                        "`pip install -e '.[train]'`") from exc

    recipe = RECIPES[args.recipe]
    epochs = recipe.epochs if args.epochs is None else args.epochs
    rows = len(splits.x["train"]) if args.max_train_rows is None else min(args.max_train_rows,
                                                                            len(splits.x["train"]))
    with Progress(f"training {recipe.name} ({epochs} epochs, batches)",
                  total=epochs * math.ceil(rows / recipe.batch_size), enabled=enabled) as progress:
        model, threshold, training = train(recipe, splits, seed=args.seed, epochs=args.epochs,
                                           max_train_rows=args.max_train_rows, advance=progress.advance)
    save_model(args.out, model, recipe, threshold, splits, record, training)
    net = load_network(args.out)
    probabilities, _ = net.decide(net.forward(splits.x["test"]))
    metrics = classification_metrics(splits.y["test"], probabilities, net.decision.threshold)
    print(f"saved {args.out}: output {net.decision.output}, threshold {threshold:.6g}, "
          f"final loss {training['loss'][-1]:.4f}")
    print(f"test split ({metrics['records']} records): accuracy {metrics['accuracy']:.4f}, "
          f"recall_1 {metrics['recall_1']:.4f}, precision_1 {metrics['precision_1']:.4f}, "
          f"AUC {metrics['auc'] if metrics['auc'] is None else round(metrics['auc'], 4)}")
    print(f"full report: ckkslab evaluate --model {args.out}")
    return 0
