"""``hyperface experiments report RUN_DIR... --out DIR``: the study's comparisons from training runs.

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
    sub = parser.add_subparsers(dest="experiments_command", metavar="{report}")
    p = sub.add_parser("report", help="figures and a markdown table from run folders",
                       description="Figures (PNG) and report.md comparing training runs.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders written by 'hyperface train'")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the figures and report.md")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "experiments_command", None) != "report":
        print("hyperface experiments: use 'hyperface experiments report RUN_DIR... --out DIR'", file=sys.stderr)
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
