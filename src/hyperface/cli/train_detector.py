"""``hyperface train-detector``: train the single-pass face detector on photos with their faces boxed.

    hyperface train-detector --data "voc:masks?min_face=10" --data dlib:dlib_faces/training.xml \\
        --data pts:300w/helen/trainset --out runs/detector [--steps 4000] [--resume] [--time-limit 3000]

Each ``--data`` spec is one source, drawn equally often (give one twice to draw it twice as often);
only each dataset's training split is used (the hash split ``prepare`` and ``evaluate`` share).
Writes ``OUT/hyperface-detector.safetensors`` when done, checkpoints in ``OUT/checkpoints`` meanwhile.
See docs/training.md ("The single-pass detector").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_arguments", "add_run_arguments", "run", "run_step_loop"]


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected six whole numbers separated by commas, got {text!r}") from None
    if len(widths) != 6 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected six positive widths, got {text!r}")
    return widths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", required=True, metavar="SPEC",
                        help="dataset spec FORMAT:PATH (repeatable; each one is drawn equally often)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder (weights, checkpoints)")
    parser.add_argument("--steps", type=int, default=6000, help="optimiser steps (default 6000)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--crop", type=int, default=256, help="training window side, a multiple of 64")
    parser.add_argument("--mask", type=float, default=0.3,
                        help="probability of a synthetic face mask on each face with landmarks")
    parser.add_argument("--init", type=Path, help="start from these detector weights (a five-point head they lack "
                        "starts fresh)")
    parser.add_argument("--widths", type=_widths, metavar="W1,...,W6",
                        help="the network's six stage widths (default 16,24,32,64,96,128); with --init, wider "
                             "than the file's grows it with its answers kept")
    parser.add_argument("--fpn", type=int, metavar="C", help="FPN channels (default 48)")
    parser.add_argument("--points", action="store_true",
                        help="train the five-point head too (on faces with landmarks), for the 'direct' pipeline")
    parser.add_argument("--point-weight", type=float, default=0.5, help="weight of the points' loss (default 0.5)")
    parser.add_argument("--point-head", choices=("shared", "box"), default="shared",
                        help="the five-point head: 'shared' (v0.7's, a layer on the box head's features) or 'box' "
                             "(its own layers, points in units of the predicted box)")
    parser.add_argument("--points-only", action="store_true",
                        help="train the five-point head alone, on an --init detector whose boxes and scores "
                             "stay exactly as they are")
    parser.add_argument("--quality-focal", action="store_true",
                        help="score each positive cell against the IoU of its predicted box (Generalized Focal "
                             "Loss's quality focal loss, as SCRFD), not 1: the face probability then ranks "
                             "well-placed boxes first")
    add_run_arguments(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resume`` and ``--time-limit``, which every step loop with checkpoints in ``--out`` takes."""
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="stop after the first checkpoint past S seconds (resume later with --resume)")


def run(args: argparse.Namespace) -> int:
    from hyperface.train.detector import DetectorTrainOptions, train_detector

    if args.steps < 1 or args.batch_size < 1:
        print("hyperface train-detector: --steps and --batch-size must be >= 1", file=sys.stderr)
        return 2
    opts = DetectorTrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, crop=args.crop,
                                mask=args.mask, points=args.points, point_weight=args.point_weight,
                                point_head=args.point_head, points_only=args.points_only,
                                widths=args.widths, fpn=args.fpn, quality=args.quality_focal)
    return run_step_loop("train-detector", lambda: train_detector(args.data, args.out, opts, resume=args.resume,
                                                                  init=args.init, time_limit=args.time_limit))


def run_step_loop(command: str, train: Callable[[], Path]) -> int:
    """Run ``train`` (a step loop that checkpoints and returns its weights file) as ``hyperface COMMAND``:
    the file printed and 0; Ctrl-C 130 with how to go on; a bad input or checkpoint 2 with its message; a
    run folder that cannot be written 1."""
    from hyperface.train.checkpoint import CheckpointError

    try:
        path = train()
    except KeyboardInterrupt:
        print(f"hyperface {command}: interrupted; resume from the last checkpoint with --resume", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, CheckpointError) as exc:
        print(f"hyperface {command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the run folder: not writable, full, a file in the way
        print(f"hyperface {command}: cannot write the run: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
