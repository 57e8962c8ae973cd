"""How the detector's, the re-scorer's and stage one's face probabilities are best fused, on the
face-mask TRAINING photos (the choice of ``rescore_weight``, ``source_weight`` and the fused default
threshold is made here, never on validation photos).

Each setting runs the whole pipeline once over the split and prints a table: AP, the recall at
precision >= 90% and the score it is reached at, and recall / precision at a row of thresholds.

    python benchmarks/score_fusion.py ../shared/data/masks                     # v0.5's and the default
    python benchmarks/score_fusion.py ../shared/data/masks --setting 0.125,0.75 --limit 200
"""

from __future__ import annotations

import argparse
import sys

from hyperface.evaluate import metrics as M
from hyperface.evaluate.datasets import EvalDataset
from hyperface.evaluate.models import AnalyzerModel
from hyperface.evaluate.runner import evaluate_datasets
from hyperface.inference.analyzer import SOURCE_WEIGHT
from hyperface.inference.proposals.detector import RESCORE_WEIGHT

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7)


def _setting(text: str) -> tuple[float, float]:
    try:
        rescore, source = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a setting is RESCORE_WEIGHT,SOURCE_WEIGHT (e.g. 0.25,0.75), got {text!r}") from None
    return rescore, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("masks", help="the face-mask folder (Pascal VOC: images/ and annotations/)")
    parser.add_argument("--setting", type=_setting, action="append", metavar="R,S",
                        help="rescore_weight,source_weight (repeatable; default: v0.5's 0.5,0.5 and the default)")
    parser.add_argument("--split", default="train", choices=("train", "val", "all"))
    parser.add_argument("--limit", type=int, default=None, help="at most N photos")
    parser.add_argument("--min-face", type=float, default=20.0, help="smaller annotated faces are ignored")
    args = parser.parse_args(argv)

    spec = f"voc:{args.masks}?classes=with_mask,without_mask,mask_weared_incorrect&min_face={args.min_face:g}"
    dataset = EvalDataset("masks", [spec], split=args.split, limit=args.limit)
    settings = args.setting or [(0.5, 0.5), (RESCORE_WEIGHT, SOURCE_WEIGHT)]
    print(f"face-mask photos, split {args.split}, faces >= {args.min_face:g} px; full pipeline, bundled model\n")
    head = " | ".join(f"R / P at {t}" for t in THRESHOLDS)
    print(f"| rescore_weight | source_weight | AP | recall at P >= 90% (score) | {head} |")
    print("|---:|---:|---:|---:|" + "---:|" * len(THRESHOLDS))
    for rescore, source in settings:
        model = AnalyzerModel(None, f"{rescore},{source}", source_weight=source,
                              proposal_options={"rescore_weight": rescore})
        (run,) = evaluate_datasets([model], [dataset], ("full",))
        summary = M.detection_summary(run.detections, threshold=0.0)
        ap, at = summary["ap"], summary["recall_at_precision"]
        at90 = f"{at['recall']:.1%} ({at['score']:.2f})" if at["score"] is not None else "-"
        cells = []
        for t in THRESHOLDS:
            s = M.detection_summary(run.detections, threshold=t)
            cells.append(f"{s['recall']:.1%} / {s['precision']:.1%}")
        print(f"| {rescore:g} | {source:g} | {ap:.3f} | {at90} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
