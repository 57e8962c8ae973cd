"""``hyperface train-point-refiner``: train the detector's point stage on the detector's own boxes.

    hyperface train-point-refiner --data "mtfl:mtfl?split=training" --data 300w=pts:300w/lfpw/trainset \\
        --data 300w=pts:300w/helen/trainset --out runs/points [--detector detector] [--steps 6000] \\
        [--init FILE|bundled] [--resume] [--time-limit 3000]

The detector (``--detector``, the bundled one by default) runs over each dataset's training split;
each face with five or 68 points it finds becomes a training face, the validation split's faces
measure the NME at every checkpoint. Writes ``OUT/hyperface-point-refiner.safetensors`` when done
(``FaceAnalyzer(proposal_options={"points": PATH})``, or ``hyperface export --points PATH``). See
docs/training.md ("v0.11: the detector's point stage").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hyperface.cli.outputs import UsageError, check_output_folder
from hyperface.cli.train_detector import add_run_arguments, run_step_loop

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", required=True, metavar="SPEC",
                        help="dataset spec [LABEL=]FORMAT:PATH with five or 68 points (repeatable)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder (weights, checkpoints)")
    parser.add_argument("--detector", default="detector", metavar="SPEC",
                        help="the detector whose boxes it learns from (default: the bundled one)")
    parser.add_argument("--steps", type=int, default=6000, help="optimiser steps (default 6000)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--init", metavar="FILE",
                        help="start from these point-stage weights ('bundled': the package's), e.g. to train a "
                             "trained one on relabelled data; the default is fresh weights")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="the hash split's validation share")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from hyperface.inference.proposals import DetectorProposals, create_proposals
    from hyperface.train.point_refiner import PointTrainOptions, collect_faces, train_point_refiner

    if args.steps < 1 or args.batch_size < 1:
        print("hyperface train-point-refiner: --steps and --batch-size must be >= 1", file=sys.stderr)
        return 2
    from hyperface.inference.assets import POINTS_WEIGHTS, resolve_weights

    try:
        init = None if args.init is None else str(resolve_weights(None if args.init == "bundled" else args.init,
                                                                   POINTS_WEIGHTS))
    except FileNotFoundError as exc:
        print(f"hyperface train-point-refiner: --init: {exc}", file=sys.stderr)
        return 2
    opts = PointTrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
                             init=init)
    try:  # before the detector's pass over the data, not after it
        check_output_folder(args.out, "--out")
    except UsageError as exc:
        print(f"hyperface train-point-refiner: {exc}", file=sys.stderr)
        return 2

    def train() -> Path:
        if args.detector.partition(":")[0] != DetectorProposals.name:
            raise ValueError(f"--detector {args.detector}: the point stage learns from a 'detector' source's boxes "
                             f"(detector or detector:PATH)")
        detector = create_proposals(args.detector, points=None)
        faces = collect_faces(args.data, detector, "train", args.val_fraction)
        val = collect_faces(args.data, detector, "val", args.val_fraction) if args.val_fraction > 0 else None
        return train_point_refiner(faces, val, args.out, opts, resume=args.resume, time_limit=args.time_limit,
                                   data=args.data)

    return run_step_loop("train-point-refiner", train)
