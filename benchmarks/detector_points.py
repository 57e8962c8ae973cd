"""The detector's own five points (eye centres, nose tip, mouth corners) against annotated ones.

The direct pipeline aligns stage two by these points, so their error is what its first round starts
from. For each annotated face of the validation split the detector's best-scoring face whose box
holds the centre of the true points is taken (none: not found); NME is the mean point error over
the distance between the true eye centres (``hyperface.evaluate.metrics.nme_5``, evaluation.md).
Prints a markdown table: one row per detector.

    python benchmarks/detector_points.py "mtfl:../shared/data/mtfl?split=training"
    python benchmarks/detector_points.py "mtfl:../shared/data/mtfl?split=training" \
        --detector detector --detector detector:runs/detwide
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.data.images import load_image
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs
from hyperface.evaluate.metrics import nme_5
from hyperface.evaluate.references import convert_prediction
from hyperface.inference.proposals import create_proposals


def detector_nmes(detector: str, records: list) -> tuple[list[float], int]:
    """Per found face, the NME of the detector's five points; and the number of faces."""
    source = create_proposals(detector)
    if not getattr(source, "gives_points", False):
        raise SystemExit(f"{detector}: this detector has no five-point head (train-detector --points)")
    nmes, faces = [], 0
    for record in records:
        image = load_image(record.image)
        found = source.faces(image)
        for face in record.faces:
            if face.landmarks is None:
                continue
            truth = convert_prediction(np.asarray(face.landmarks, dtype=np.float64), face.point_set, "five")
            if not np.isfinite(truth).all():
                continue
            faces += 1
            cx, cy = truth.mean(axis=0)
            b = found.boxes
            inside = np.flatnonzero((b[:, 0] <= cx) & (cx <= b[:, 2]) & (b[:, 1] <= cy) & (cy <= b[:, 3]))
            if len(inside):  # faces come best first
                nmes.append(nme_5(found.points[inside[0]], truth))
    return nmes, faces


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", help="[LABEL=]FORMAT:PATH datasets with five or 68 points")
    parser.add_argument("--detector", action="append", help="candidate source spec (default: detector, the "
                                                             "bundled one); repeat to compare")
    parser.add_argument("--split", default="val", choices=("val", "train", "all"))
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=None, help="at most N images per dataset")
    args = parser.parse_args()
    records = [r for spec in parse_data_specs(args.data)
               for r in EvalDataset(spec.label, [spec.spec], split=args.split, val_fraction=args.val_fraction,
                                    limit=args.limit)]
    print(f"\nThe detector's five points, {len(records)} images ({', '.join(args.data)}, split {args.split}); "
          "NME over the true eye-centre distance:\n")
    print("| detector | faces found | NME mean | NME median | failures > 0.10 |")
    print("|---|---:|---:|---:|---:|")
    for detector in args.detector or ["detector"]:
        nmes, faces = detector_nmes(detector, records)
        e = np.asarray(nmes)
        print(f"| {detector} | {len(e)}/{faces} | {100 * e.mean():.2f}% | {100 * np.median(e):.2f}% | "
              f"{100 * (e > 0.10).mean():.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
