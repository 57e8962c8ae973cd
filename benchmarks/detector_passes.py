"""The detector source's passes (``passes``: scales of its working image), chosen on TRAINING photos.

Each setting runs the whole pipeline (bundled networks, the default analyzer otherwise) over each
dataset's split and prints one table: AP of faces >= the datasets' ``min_face``, the share of faces
>= 80 px found at the default threshold, and the detector source's own time on the speed test image
(docs/evaluation.md, "Speed") as a ratio to the single pass, timed in alternation in the same run.

    PHOTOS=...   # the folder ../shared/tools/extract_photos.sh writes
    python benchmarks/detector_passes.py --limit 300 \\
        --data "wider20=wider:$PHOTOS/wider_val?min_face=20" --data "web=voc:$PHOTOS/facemask_web?min_face=20" \\
        --data "masks=voc:../shared/data/masks?classes=with_mask,without_mask,mask_weared_incorrect&min_face=20" \\
        --passes 1 --passes 1,0.25 --passes 1,0.5 --passes 1,0.5,0.25
    python benchmarks/detector_passes.py --speed-only --passes 1 --passes 1,0.25 --passes 1,0.5 --passes 1,0.5,0.25
"""

from __future__ import annotations

import argparse
import sys

from hyperface.cli.analyzer_options import parse_scales
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs
from hyperface.evaluate.models import AnalyzerModel
from hyperface.evaluate.runner import evaluate_datasets
from hyperface.evaluate.summary import summarize
from hyperface.inference.proposals import create_proposals
from hyperface.inference.proposals.detector import PASSES

from analyze_speed import test_image
from timing import alternating_ms


def source_times(settings: list[tuple[float, ...]]) -> list[float]:
    """Median ms of the detector source's call (boxes and their probabilities) on the speed test image,
    per setting, the settings in alternation (:func:`timing.alternating_ms`)."""
    image = test_image()
    sources = {setting: create_proposals("detector", passes=setting) for setting in settings}
    times = alternating_ms({setting: (lambda s=source: s.detect(image)) for setting, source in sources.items()},
                           rounds=10, per_round=3, warmup=2)
    return [times[setting] for setting in settings]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", default=[], metavar="[LABEL=]SPEC",
                        help="a dataset with every face boxed (repeatable), as hyperface evaluate takes it")
    parser.add_argument("--speed-only", action="store_true", help="only the detector source's times (no --data)")
    parser.add_argument("--passes", type=parse_scales, action="append", metavar="S[,S...]",
                        help="a setting (repeatable; default: one pass and the package's default)")
    parser.add_argument("--split", default="train", choices=("train", "val", "all"))
    parser.add_argument("--limit", type=int, default=None, help="at most N photos of each dataset")
    args = parser.parse_args(argv)

    settings = args.passes or [(1.0,), PASSES]
    if not args.data and not args.speed_only:
        parser.error("give --data (repeatable), or --speed-only")
    grouped: dict[str, list[str]] = {}
    for spec in parse_data_specs(args.data):
        grouped.setdefault(spec.label, []).append(spec.spec)
    datasets = [EvalDataset(label, specs, split=args.split, limit=args.limit) for label, specs in grouped.items()]
    ms = source_times(settings)
    base = ms[settings.index((1.0,))] if (1.0,) in settings else None

    def name(setting: tuple[float, ...]) -> str:
        return ", ".join(f"{p:g}" for p in setting)

    def timing(t: float) -> str:
        return f"{t:.2f} ({t / base:.2f}x)" if base else f"{t:.2f}"

    if args.speed_only:
        print("| passes | detector source, ms (x one pass) |\n|---|---:|")
        for setting, t in zip(settings, ms):
            print(f"| {name(setting)} | {timing(t)} |")
        return 0

    print(f"split {args.split}, at most {args.limit or 'all'} photos each; full pipeline, bundled networks\n")
    head = " | ".join(f"{d.label} AP | {d.label} >= 80 px found" for d in datasets)
    print(f"| passes | {head} | detector source, ms (x one pass) |")
    print("|---|" + "---:|---:|" * len(datasets) + "---:|")
    for setting, t in zip(settings, ms):
        model = AnalyzerModel(None, name(setting), proposal_options={"passes": setting})
        cells = []
        for run in evaluate_datasets([model], datasets, ("full",)):
            det = summarize(run)["detection"]
            found, total = det.get("found_by", {}).get("height", {}).get(">=80", [0, 0])
            cells.append(f"{det['ap']:.3f} | {found / total:.0%} ({found}/{total})" if total else
                         f"{det['ap']:.3f} | -")
        print(f"| {name(setting)} | {' | '.join(cells)} | {timing(t)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
