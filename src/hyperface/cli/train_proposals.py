"""``hyperface train-proposals``: train the fast candidate cascade (both stages) on prepared data.

    hyperface train-proposals --prepared data/prep_24 --out weights/ --mine negatives:PATH dlib:PATH

Writes ``OUT/hyperface-proposal.safetensors`` and ``OUT/hyperface-proposal-refine.safetensors`` (the
files the ``fast`` candidate source loads) and prints both stages' validation metrics as JSON. See
docs/training.md ("The fast candidate networks").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prepared", nargs="+", required=True, metavar="DIR",
                        help="prepared folder(s) ('hyperface prepare', e.g. crop_size 24, context 1.0)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the two weights files")
    parser.add_argument("--mine", nargs="*", default=[], metavar="SPEC",
                        help="datasets with every face annotated, for hard negatives (e.g. negatives:PATH)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of each stage (default 8)")
    parser.add_argument("--hard-epochs", type=int, default=5,
                        help="further epochs of stage 1 with the mined hard negatives (default 5)")


def run(args: argparse.Namespace) -> int:
    from hyperface.train.proposal import ProposalTrainOptions, train_cascade

    if args.epochs < 1 or args.hard_epochs < 0:
        print("hyperface train-proposals: --epochs must be >= 1 and --hard-epochs >= 0", file=sys.stderr)
        return 2
    options = ProposalTrainOptions(epochs=args.epochs, hard_epochs=args.hard_epochs)
    try:
        metrics = train_cascade(args.prepared, args.out, mine=args.mine, options=options)
    except KeyboardInterrupt:
        print("hyperface train-proposals: interrupted; nothing was saved", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:  # a missing or damaged prepared folder, a bad --mine spec
        print(f"hyperface train-proposals: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=1))
    return 0
