"""A pipeline's defaults chosen on training photos (never validation ones): its score threshold and,
with ``--faces``, stage two's alignment rounds.

Runs one analyzer configuration over the photos of the ``--data`` datasets (their ``--split``,
``train`` by default), pools every detection above ``--floor`` with its match, and prints recall,
precision and F1 at a ladder of thresholds, then the threshold that maximises F1 and the lowest one
whose precision reaches ``--precision``. ``--faces`` datasets (faces with 68 points) are analysed
once per ``--iterations`` value, and their 68-point NME (normalised as ``hyperface evaluate`` does, found faces) is printed for
each:

    python benchmarks/direct_pipeline_choices.py --pipeline direct --proposals detector:runs/det5 \\
        --data "voc:$D/masks?classes=with_mask,without_mask,mask_weared_incorrect&min_face=20" \\
        --data "wider:PHOTOS/wider_val?min_face=20" --limit 300 \\
        --faces pts:$D/300w/lfpw/trainset --iterations 1,2,3

Detections are matched as ``hyperface evaluate`` matches them (IoU 0.5, greedy by score, ignore
regions neither help nor hurt).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from hyperface.evaluate import metrics as M
from hyperface.evaluate.datasets import EvalDataset
from hyperface.evaluate.models import AnalyzerModel
from hyperface.evaluate.runner import evaluate_datasets
from hyperface.inference.analyzer import PIPELINES


def operating_points(matches: list[M.DetectionMatch], thresholds: np.ndarray) -> list[dict]:
    """Recall, precision and F1 of the detections scoring at least each threshold."""
    recall, precision, scores = M.detection_curve(matches)
    rows = []
    for t in thresholds:
        n = int((scores >= t).sum())  # scores are sorted decreasing: the first n detections
        r = float(recall[n - 1]) if n else 0.0
        p = float(precision[n - 1]) if n else 1.0
        rows.append({"threshold": float(t), "detections": n, "recall": r, "precision": p,
                     "f1": 2 * r * p / (r + p) if r + p else 0.0})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="dataset spec (repeatable; pooled)")
    parser.add_argument("--split", default="train", choices=("train", "val", "all"))
    parser.add_argument("--limit", type=int, default=None, help="at most this many photos per dataset")
    parser.add_argument("--weights", default=None, help="the pipeline (default: the bundled one)")
    parser.add_argument("--proposals", default="detector")
    parser.add_argument("--pipeline", default="paper", choices=PIPELINES)
    parser.add_argument("--floor", type=float, default=0.3, help="lowest score kept (the ladder starts here)")
    parser.add_argument("--precision", type=float, default=0.9, help="the precision the threshold must reach")
    parser.add_argument("--faces", action="append", default=[], help="dataset spec with 68 points (repeatable)")
    parser.add_argument("--iterations", default="1,2,3", help="stage two's alignment rounds to compare")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    model = AnalyzerModel(args.weights, "model", proposals=args.proposals, ap_threshold=args.floor,
                          pipeline=args.pipeline)
    datasets = [EvalDataset(f"data{i}", [spec], split=args.split, limit=args.limit)
                for i, spec in enumerate(args.data)]
    runs = evaluate_datasets([model], datasets, ("full",))
    matches = [m for run in runs for m in run.detections]
    faces = sum(m.num_ground_truth for m in matches)
    print(f"{args.pipeline} pipeline, candidates {args.proposals}: {len(matches)} {args.split} photos, "
          f"{faces} faces (pooled over {len(args.data)} dataset(s)); AP {M.detection_summary(matches)['ap']:.3f}\n")
    rows = operating_points(matches, np.round(np.arange(args.floor, 0.951, 0.05), 2))
    print("| threshold | detections | recall | precision | F1 |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['threshold']:.2f} | {r['detections']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['f1']:.3f} |")
    best = max(rows, key=lambda r: r["f1"])
    reaching = [r for r in rows if r["precision"] >= args.precision]
    print(f"\nbest F1: threshold {best['threshold']:.2f} (F1 {best['f1']:.3f}); lowest threshold with precision "
          f">= {args.precision:.2f}: " + (f"{reaching[0]['threshold']:.2f}" if reaching else "none"))
    for k in (int(v) for v in args.iterations.split(",")) if args.faces else ():
        faces_model = AnalyzerModel(args.weights, f"iterations={k}", proposals=args.proposals,
                                    pipeline=args.pipeline, iterations=k)
        sets = [EvalDataset(f"faces{i}", [spec], split=args.split, limit=args.limit)
                for i, spec in enumerate(args.faces)]
        found = [f for run in evaluate_datasets([faces_model], sets, ("full",)) for f in run.faces
                 if f.nme_set == "ibug68"]
        nme = np.array([f.nme for f in found], dtype=float)
        print(f"iterations {k}: 68-point NME {100 * np.nanmean(nme):.2f}% on {np.isfinite(nme).sum()} of "
              f"{len(nme)} {args.split} faces found")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
