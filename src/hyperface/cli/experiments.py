"""``hyperface experiments run`` trains the study; ``hyperface experiments report`` compares runs.

    hyperface experiments run --scale cpu --seeds 0,1,2 --out runs/study-cpu   # resumable
    hyperface experiments report runs/study-cpu/seed-*/exp* --out docs/study
    hyperface experiments report runs/exp1 runs/exp2a runs/exp2b runs/exp3 runs/exp4 runs/exp5 --out reports/study

Writes one PNG per comparison (per-task training and validation loss per epoch, landmark accuracy
per epoch, cumulative error curves), ``all_runs.png`` and ``report.md`` with a table of the runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experiments_command", metavar="{run,report}")
    from hyperface.train.study import EXPERIMENTS, SCALES

    r = sub.add_parser("run", help="train the study's experiments for one or more seeds (resumable)",
                       description="Train configs/experiments[/SCALE]/EXP.yaml for every seed into OUT/seed-N/EXP; "
                                   "finished runs are skipped and started ones resumed.")
    r.add_argument("--scale", default="cpu", choices=tuple(SCALES),
                   help="cpu: the compact network sized for two CPU cores; paper: the AlexNet originals")
    r.add_argument("--seeds", default="0", metavar="N[,N...]", help="seeds, e.g. 0,1,2 (default 0)")
    r.add_argument("--experiments", default=",".join(EXPERIMENTS), metavar="EXP[,EXP...]",
                   help="which experiments (default: all: " + ", ".join(EXPERIMENTS) + ")")
    r.add_argument("--configs", type=Path, default=Path("configs/experiments"), metavar="DIR",
                   help="the experiments' config folder")
    r.add_argument("--out", type=Path, default=None, metavar="DIR", help="default runs/study-SCALE")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key in every run (repeatable)")
    p = sub.add_parser("report", help="figures and a markdown table from run folders",
                       description="Figures (PNG) and report.md comparing training runs.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders written by 'hyperface train'")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the figures and report.md")


def _run_study(args: argparse.Namespace) -> int:
    from hyperface.train.checkpoint import CheckpointError
    from hyperface.train.config import ConfigError
    from hyperface.train.study import plan_study, run_study

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"hyperface experiments run: --seeds {args.seeds!r}: give whole numbers, e.g. 0,1,2", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / f"study-{args.scale}"
    try:
        runs = plan_study(args.configs, args.scale, seeds, out,
                          [e.strip() for e in args.experiments.split(",") if e.strip()])
        finished = run_study(runs, args.overrides)
    except KeyboardInterrupt:
        print(f"hyperface experiments run: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except (ValueError, ConfigError, FileNotFoundError, FileExistsError, CheckpointError) as exc:
        print(f"hyperface experiments run: {exc}", file=sys.stderr)
        return 2
    print(f"{len(finished)} of {len(runs)} runs finished in {out}")
    return 0 if len(finished) == len(runs) else 1


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "experiments_command", None)
    if command == "run":
        return _run_study(args)
    if command != "report":
        print("hyperface experiments: use 'hyperface experiments run ...' or "
              "'hyperface experiments report RUN_DIR... --out DIR'", file=sys.stderr)
        return 2
    from hyperface.train.report import write_report

    try:
        files = write_report(args.runs, args.out)
    except ValueError as exc:
        print(f"hyperface experiments report: {exc}", file=sys.stderr)
        return 1
    for path in files:
        print(path)
    return 0
