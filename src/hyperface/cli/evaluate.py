"""``hyperface evaluate``: the metrics of evaluation.md for one or more models on annotated data.

Prints one table (a row per model and mode) with each dataset's numbers, then the breakdowns;
``--json`` writes every summary, ``--plots`` the cumulative error, precision-recall and
pose-by-yaw curves.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from hyperface.cli.analyzer_options import (
    add_detector_arguments,
    add_stage_two_arguments,
    proposal_options,
    stage_two_inputs,
    stage_two_settings,
)

__all__ = ["add_arguments", "run"]

log = logging.getLogger("hyperface.evaluate")

_MODES = {"full": ("full",), "box": ("box",), "both": ("full", "box")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hyperface.evaluate.datasets import DEFAULT_VAL_FRACTION, SPLIT_CHOICES
    from hyperface.inference.proposals import DEFAULT_PROPOSALS

    parser.description = (
        "Measure models on annotated data with the metrics of evaluation.md: 68- and 5-point NME "
        "(mean, median, AUC, failure rate, by pose where known), head-pose MAE, gender accuracy, "
        "detection recall/precision/AP on whole photos. Crops are analysed by the full pipeline "
        "('full': the model finds the face) and with the ground-truth box given ('box').")
    parser.add_argument("--weights", action="append", metavar="W",
                        help="a model to evaluate: 'bundled' (stage one and two as shipped), a stage-one "
                             "weights file, or STAGE1+STAGE2 (two weights files: the second is the stage-two "
                             "network); repeat for several models (one table row each). Default: the bundled model")
    parser.add_argument("--data", action="append", required=True, metavar="[LABEL=]FORMAT:PATH",
                        help="annotated data, e.g. 300w=pts:../shared/data/300w/lfpw/trainset; repeat; specs "
                             "with the same LABEL are one dataset. Formats: 'hyperface data formats' (voc: "
                             "Annotations/*.xml, pts-photos: photos with one .pts per face, for detection)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="all",
                        help="images to use: the validation or training split of 'hyperface prepare' (hash of "
                             "the image group), or all (default)")
    parser.add_argument("--prepared", metavar="DIR",
                        help="prepared data folder whose manifest gives the validation fraction for --split")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help=f"validation fraction for --split (default: from --prepared, else "
                             f"{DEFAULT_VAL_FRACTION}, prepare's default)")
    parser.add_argument("--mode", choices=tuple(_MODES), default="both",
                        help="full pipeline, ground-truth box given, or both (default)")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N images per dataset (after --split)")
    parser.add_argument("--json", metavar="OUT", help="write the table and every summary as JSON")
    parser.add_argument("--markdown", metavar="OUT", help="also write the printed report to a markdown file")
    parser.add_argument("--plots", metavar="DIR", help="write PNG plots (CED, precision-recall, pose by yaw)")
    parser.add_argument("--per-face", action="store_true", help="include every face's result in --json")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--proposals", default=DEFAULT_PROPOSALS,
                        help=f"candidate source of the full pipeline (default: {DEFAULT_PROPOSALS}): detector, "
                             "detector:PATH (train-detector's weights or their folder), fast, fast:DIR (the networks "
                             "of train-proposals --out DIR), selective-search, boxes:FILE")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="operating point (default: the analyzer's default threshold)")
    parser.add_argument("--irp-rounds", type=int, default=None, metavar="N",
                        help="IRP rounds (default: the analyzer's, by candidate source: "
                             "hyperface.inference.analyzer.IRP_ROUNDS)")
    parser.add_argument("--pipeline", choices=("paper", "direct"), default="paper",
                        help="paper (default) or direct (the detector's five points align stage two; needs a "
                             "detector that finds them, as the bundled one does)")
    parser.add_argument("--min-face", type=float, default=None, metavar="PX",
                        help="smallest face (pixels) the candidate source looks for (default: the source's own; "
                             "lower finds smaller faces at more cost)")
    add_detector_arguments(parser)
    parser.add_argument("--max-side", type=int, default=None, metavar="PX",
                        help="longest side the analysis works at (default: the analyzer's)")
    add_stage_two_arguments(parser)
    parser.add_argument("--ap-threshold", type=float, default=0.0,
                        help="lowest score kept for the detection average precision (default 0: every "
                             "candidate the pipeline reports)")


def _datasets(args: argparse.Namespace) -> list:
    from hyperface.evaluate.datasets import (
        DEFAULT_VAL_FRACTION,
        EvalDataset,
        parse_data_specs,
        val_fraction_from_prepared,
    )

    if args.val_fraction is not None:
        fraction = args.val_fraction
    elif args.prepared:
        fraction = val_fraction_from_prepared(args.prepared)
    else:
        fraction = DEFAULT_VAL_FRACTION
    grouped: dict[str, list[str]] = {}
    for spec in parse_data_specs(args.data):
        grouped.setdefault(spec.label, []).append(spec.spec)
    return [EvalDataset(label, specs, split=args.split, val_fraction=fraction, limit=args.limit)
            for label, specs in grouped.items()]


def _models(args: argparse.Namespace) -> list:
    from hyperface.evaluate.models import AnalyzerModel, model_names
    from hyperface.inference.assets import parse_model_spec

    specs = args.weights or ["bundled"]
    pairs = [parse_model_spec(s) for s in specs]
    names = [n if s2 in (None, "auto") else f"{n}+{Path(s2).stem}"
             for n, (_, s2) in zip(model_names([w or "bundled" for w, _ in pairs]), pairs)]
    options = stage_two_settings(args)
    if args.score_threshold is not None:
        options["score_threshold"] = args.score_threshold
    if args.max_side is not None:
        options["max_side"] = args.max_side
    if args.irp_rounds is not None:
        options["irp_rounds"] = args.irp_rounds
    source_options = proposal_options(args)
    if source_options is not None:
        options["proposal_options"] = source_options
    if args.pipeline != "paper":
        options["pipeline"] = args.pipeline
    return [AnalyzerModel(w, n, device=args.device, proposals=args.proposals, ap_threshold=args.ap_threshold,
                          stage_two=s2, **options) for (w, s2), n in zip(pairs, names)]


def collect_inputs(args: argparse.Namespace):
    """Every path the evaluation reads: the weights files, each dataset's files (its PATH, or every file
    in its folder: images and annotations), the prepared folder and the candidate source's files."""
    from hyperface.cli.outputs import Inputs
    from hyperface.data.readers import parse_spec
    from hyperface.evaluate.datasets import parse_data_specs
    from hyperface.inference.assets import ASSETS

    inputs = Inputs()
    inputs.add_tree(ASSETS, "the bundled models' folder")
    for spec in args.weights or []:
        if spec != "bundled":
            for path in spec.split("+"):
                inputs.add(path, "the --weights file")
    stage_two_inputs(args, inputs)
    for spec in parse_data_specs(args.data):
        path = Path(parse_spec(spec.spec)[1]).expanduser()
        if path.exists():  # a missing dataset is its reader's error, reported with the reader's advice
            inputs.add(path, f"the --data {spec.label} dataset")
    if args.prepared:
        inputs.add(args.prepared, "the --prepared folder")
    name, sep, arg = args.proposals.partition(":")
    if sep and arg:
        inputs.add(arg, f"the --proposals {name} file")
    return inputs


def _check_outputs(args: argparse.Namespace) -> None:
    """Output paths checked before the evaluation (a UsageError, exit 2): no folder for a file, no device,
    nothing the evaluation reads (:func:`collect_inputs`)."""
    from hyperface.cli.outputs import check_output_file, check_output_folder

    inputs = collect_inputs(args)
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None:
            check_output_file(path, option, inputs)
    if args.plots is not None:
        check_output_folder(args.plots, "--plots", inputs)


def run(args: argparse.Namespace) -> int:
    from hyperface import fileio
    from hyperface.evaluate.report import report_dict, to_markdown, write_report_json
    from hyperface.evaluate.runner import evaluate_datasets
    from hyperface.evaluate.summary import summarize

    if args.limit is not None and args.limit < 1:
        print("hyperface evaluate: --limit must be a positive number of images", file=sys.stderr)
        return 2
    try:
        stage_two_settings(args)  # the command line's mistakes first, then the files'
        _check_outputs(args)
        datasets = _datasets(args)
        models = _models(args)
    except (ValueError, OSError) as exc:  # DatasetError is a ValueError; missing files are OSErrors
        print(f"hyperface evaluate: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    runs = evaluate_datasets(models, datasets, _MODES[args.mode])
    summaries = [summarize(r) for r in runs]
    split = args.split if args.split == "all" else f"{args.split} (val fraction {datasets[0].val_fraction:g})"
    markdown = to_markdown(summaries, title=f"hyperface evaluate, split {split}")
    print(markdown, end="")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        fileio.write_text(args.markdown, markdown)
    if args.json:
        context = {
            "command": shlex.join(["hyperface", *getattr(args, "argv", sys.argv[1:])]),
            "split": args.split,
            "val_fraction": datasets[0].val_fraction if datasets else None,
            "mode": args.mode,
            "limit": args.limit,
            "models": [{"name": m.name, "weights": None if m.weights is None else str(m.weights),
                        "point_set": m.point_set, "tasks": list(m.tasks), "score_threshold": m.score_threshold}
                       for m in models],
            "datasets": [{"label": d.label, "specs": d.specs} for d in datasets],
            "seconds": round(time.perf_counter() - start, 1),
        }
        report = report_dict(summaries, **context)
        if args.per_face:
            for entry, run_result in zip(report["results"], runs):
                entry["per_face"] = [f.to_dict() for f in run_result.faces]
        write_report_json(args.json, report)
        print(f"wrote {args.json}")
    if args.plots:
        from hyperface.evaluate.plots import write_plots

        for path in write_plots(runs, args.plots):
            print(f"wrote {path}")
    if all(r.images == 0 for r in runs):
        print("hyperface evaluate: no image was evaluated (check --data and --split)", file=sys.stderr)
        return 1
    return 0
