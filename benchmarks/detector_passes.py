"""The detector source's passes (``passes``: scales of its working image), candidate cap
(``max_candidates``), working-image cap (``max_side``) and mirrored view (``flip``), chosen on TRAINING
photos.

Each setting runs the whole pipeline (bundled networks, the default analyzer otherwise) over each
dataset's split and prints one table: AP of faces >= the datasets' ``min_face``, the share of faces
>= 80 px found at the default threshold, the faces found there with their precision, and the detector
source's own time on the speed test image (docs/evaluation.md, "Speed") as a ratio to the single pass
(or the first row when there is none), timed in alternation in the same run. ``--photo-times`` adds
the default call's time over the first dataset's photos (the settings in alternation, photo by
photo), where a cap on candidates costs.

    PHOTOS=...   # the folder ../shared/tools/extract_photos.sh writes
    python benchmarks/detector_passes.py --limit 300 \\
        --data "wider20=wider:$PHOTOS/wider_val?min_face=20" --data "web=voc:$PHOTOS/facemask_web?min_face=20" \\
        --data "masks=voc:../shared/data/masks?classes=with_mask,without_mask,mask_weared_incorrect&min_face=20" \\
        --passes 1 --passes 1,0.25 --passes 1,0.5 --passes 1,0.5,0.25
    python benchmarks/detector_passes.py --speed-only --passes 1 --passes 1,0.25 --passes 1,0.5 --passes 1,0.5,0.25
    python benchmarks/detector_passes.py --limit 300 --data "wider20=wider:$PHOTOS/wider_val?min_face=20" \\
        --max-candidates 100 --max-candidates 300 --max-candidates 1000 --photo-times
    python benchmarks/detector_passes.py --limit 150 --data "wider10=wider:$PHOTOS/wider_val?min_face=10" \\
        --min-face 10 --max-side 1280 --max-side 2560 --photo-times
    python benchmarks/detector_passes.py --limit 300 --data "wider20=wider:$PHOTOS/wider_val?min_face=20" \\
        --flip --photo-times      # each setting without and with the mirrored view
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from hyperface.cli.analyzer_options import parse_scales
from hyperface.data.images import load_image
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs
from hyperface.evaluate.models import AnalyzerModel
from hyperface.evaluate.runner import evaluate_datasets
from hyperface.evaluate.summary import summarize
from hyperface.inference import FaceAnalyzer
from hyperface.inference.proposals import create_proposals
from hyperface.inference.proposals.detector import MAX_CANDIDATES, MAX_WORKING_SIDE, PASSES

from analyze_speed import test_image
from timing import alternating_ms


@dataclass(frozen=True)
class Setting:
    """One setting of the detector source: its passes, candidate cap, working-image cap, mirrored view and
    ``min_face`` (None: the source's)."""

    passes: tuple[float, ...]
    max_candidates: int
    max_side: int
    flip: bool = False
    min_face: float | None = None

    @property
    def options(self) -> dict:
        options = {"passes": self.passes, "max_candidates": self.max_candidates, "max_side": self.max_side,
                   "flip": self.flip}
        return options if self.min_face is None else {**options, "min_face": self.min_face}

    def name(self, with_cap: bool, with_side: bool, with_flip: bool) -> str:
        parts = [", ".join(f"{p:g}" for p in self.passes)]
        parts += [f"{self.max_candidates} candidates"] if with_cap else []
        parts += [f"working side <= {self.max_side}"] if with_side else []
        parts += ["mirrored too" if self.flip else "no mirror"] if with_flip else []
        return "; ".join(parts)


def source_times(settings: list[Setting]) -> list[float]:
    """Median ms of the detector source's call (boxes and their probabilities) on the speed test image,
    per setting, the settings in alternation (:func:`timing.alternating_ms`)."""
    image = test_image()
    sources = {s: create_proposals("detector", **s.options) for s in settings}
    times = alternating_ms({s: (lambda source=source: source.detect(image)) for s, source in sources.items()},
                           rounds=10, per_round=3, warmup=2)
    return [times[s] for s in settings]


def photo_times(settings: list[Setting], dataset: EvalDataset) -> list[tuple[float, float, int]]:
    """(seconds in all, median ms a photo, faces found) of the default analyzer's call over ``dataset``'s
    photos, per setting, the settings in alternation photo by photo (one thread each)."""
    analyzers = {s: FaceAnalyzer(proposal_options=s.options, threads=1) for s in settings}
    times: dict[Setting, list[float]] = {s: [] for s in settings}
    faces = dict.fromkeys(settings, 0)
    for k, record in enumerate(dataset):
        image = load_image(record.image)
        for s, analyzer in analyzers.items():
            if k == 0:
                analyzer(image)  # warm-up
            t = time.perf_counter()
            faces[s] += len(analyzer(image))
            times[s].append(time.perf_counter() - t)
    return [(sum(times[s]), 1000 * statistics.median(times[s]), faces[s]) for s in settings]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", default=[], metavar="[LABEL=]SPEC",
                        help="a dataset with every face boxed (repeatable), as hyperface evaluate takes it")
    parser.add_argument("--speed-only", action="store_true", help="only the detector source's times (no --data)")
    parser.add_argument("--passes", type=parse_scales, action="append", metavar="S[,S...]",
                        help="passes to try (repeatable; default: one pass and the package's default)")
    parser.add_argument("--max-candidates", type=int, action="append", metavar="N",
                        help=f"candidate caps to try (repeatable; default {MAX_CANDIDATES}); each with each --passes")
    parser.add_argument("--max-side", type=int, action="append", metavar="N",
                        help=f"working-image caps to try (repeatable; default {MAX_WORKING_SIDE})")
    parser.add_argument("--flip", action="store_true",
                        help="try each setting without and with the mirrored view (the source's flip)")
    parser.add_argument("--min-face", type=float, default=None, metavar="PX",
                        help="the source's min_face in every setting (default: its own)")
    parser.add_argument("--photo-times", action="store_true",
                        help="also time the default call over the first dataset's photos")
    parser.add_argument("--split", default="train", choices=("train", "val", "all"))
    parser.add_argument("--limit", type=int, default=None, help="at most N photos of each dataset")
    args = parser.parse_args(argv)

    caps = args.max_candidates or [MAX_CANDIDATES]
    varied = args.max_candidates is not None or args.max_side is not None or args.flip
    passes = args.passes or ([PASSES] if varied else [(1.0,), PASSES])
    sides = args.max_side or [MAX_WORKING_SIDE]
    flips = [False, True] if args.flip else [False]
    settings = [Setting(p, c, m, f, args.min_face) for p in passes for c in caps for m in sides for f in flips]
    if not args.data and not args.speed_only:
        parser.error("give --data (repeatable), or --speed-only")
    grouped: dict[str, list[str]] = {}
    for spec in parse_data_specs(args.data):
        grouped.setdefault(spec.label, []).append(spec.spec)
    datasets = [EvalDataset(label, specs, split=args.split, limit=args.limit) for label, specs in grouped.items()]
    ms = source_times(settings)
    one = [s for s in settings if s.passes == (1.0,) and not s.flip]
    base = ms[settings.index(one[0])] if one else ms[0]
    against = "x one pass" if one else "x first row"
    with_cap, with_side = len(caps) > 1, len(sides) > 1

    def name(setting: Setting) -> str:
        return setting.name(with_cap, with_side, args.flip)

    def timing(t: float) -> str:
        return f"{t:.2f} ({t / base:.2f}x)"

    if args.speed_only:
        print(f"| setting | detector source, ms ({against}) |\n|---|---:|")
        for setting, t in zip(settings, ms):
            print(f"| {name(setting)} | {timing(t)} |")
        return 0

    photos = photo_times(settings, datasets[0]) if args.photo_times else None
    print(f"split {args.split}, at most {args.limit or 'all'} photos each; full pipeline, bundled networks\n")
    head = " | ".join(f"{d.label} AP | {d.label} >= 80 px found | {d.label} found (precision)" for d in datasets)
    extra = f" | {datasets[0].label}: default call, s in all (x first); median ms; faces" if photos else ""
    print(f"| setting | {head} | detector source, ms ({against}){extra} |")
    print("|---|" + "---:|---:|---:|" * len(datasets) + "---:|" + ("---:|" if photos else ""))
    for k, (setting, t) in enumerate(zip(settings, ms)):
        model = AnalyzerModel(None, name(setting), proposal_options=setting.options)
        cells = []
        for run in evaluate_datasets([model], datasets, ("full",)):
            det = summarize(run)["detection"]
            found, total = det.get("found_by", {}).get("height", {}).get(">=80", [0, 0])
            tall = f"{found / total:.0%} ({found}/{total})" if total else "-"
            cells.append(f"{det['ap']:.3f} | {tall} | {det['true_positives']} of {det['ground_truth']} "
                         f"({det['precision']:.1%})")
        cells.append(timing(t))
        if photos:
            total_s, median_ms, faces = photos[k]
            cells.append(f"{total_s:.1f} ({total_s / photos[0][0]:.2f}x); {median_ms:.0f}; {faces}")
        print(f"| {name(setting)} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
