"""``hyperface models``: one row per registered architecture (parameters, MACs per crop, input size)."""

from __future__ import annotations

import argparse
import json

from hyperface.tasks import TASKS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=None, metavar="TASK",
                        help=f"enabled tasks (default: all an architecture supports); from {', '.join(TASKS)}")
    parser.add_argument("--num-points", type=int, default=21, help="landmark points (default 21)")


_SHORT = {"detection": "det", "landmarks": "lmk", "visibility": "vis", "pose": "pose", "gender": "gen"}


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def run(args: argparse.Namespace) -> int:
    from hyperface.models import get_model_entry, list_models, model_info

    if args.num_points < 1:
        print("hyperface models: --num-points must be positive")
        return 2
    rows = []
    for name in list_models():
        kwargs: dict = {"num_points": args.num_points}
        if args.tasks:
            # an architecture with fewer tasks (rcnn-face) shows what it supports of the request
            supported = get_model_entry(name).supported_tasks
            chosen = [t for t in args.tasks if t in supported]
            if chosen:
                kwargs["tasks"] = chosen
        rows.append(model_info(name, **kwargs))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "params", "MACs/crop", "input", "tasks", "description")
    table = [header] + [(r["name"], _human(r["params"]), _human(r["macs"]), f"{r['input_size']}",
                         ",".join(_SHORT[t] for t in r["tasks"]), r["description"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    print(f"\n{args.num_points} landmark points; MACs counted for one crop (convolutions and fully connected layers).")
    return 0
