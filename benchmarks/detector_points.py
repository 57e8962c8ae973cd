"""The detector's own five points (eye centres, nose tip, mouth corners) against annotated ones.

The direct pipeline aligns stage two by these points, so their error is what its first round starts
from. For each annotated face of the validation split the detector's best-scoring face whose box
holds the centre of the true points is taken (none: not found); NME is the mean point error over
the distance between the true eye centres (``hyperface.evaluate.metrics.nme_5``, evaluation.md).
Prints a markdown table: one row per detector (its own point head; with ``--points FILE`` also a row
per point stage, ``train-point-refiner``'s network run on the same boxes; the bundled pipeline's
point stage, when it has one, is the ``bundled`` FILE), and with ``--mean-shape`` a row per detector
for a head that learned nothing but the average: the training split's mean five-point shape, in units
of the detector's box, placed in each box it finds (what a point head must beat to have learned faces).

    python benchmarks/detector_points.py "mtfl:../shared/data/mtfl?split=training"
    python benchmarks/detector_points.py "mtfl:../shared/data/mtfl?split=training" \
        --detector detector --detector detector:runs/detwide
    python benchmarks/detector_points.py "mtfl:../shared/data/mtfl?split=training" \
        --points runs/points/hyperface-point-refiner.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.data.images import load_image
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs
from hyperface.evaluate.metrics import nme_5
from hyperface.inference.proposals import SourceContext, create_proposals
from hyperface.inference.proposals.point_stage import PointStage
from hyperface.points import to_five
from hyperface.train.point_refiner import box_of_face


def _matches(source, records: list, stages: list):
    """Each annotated face's true five points and the detector's best face whose box holds their centre:
    yields (truth (5, 2), box (4,) or None, [the detector's points, then each of ``stages``' (5, 2)])."""
    for record in records:
        image = load_image(record.image)
        found = source.faces(image)  # faces come best first
        readers = [found.points] + [stage(image, found.boxes) for stage in stages]
        for face in record.faces:
            truth = to_five(face.landmarks, face.point_set)
            if not np.isfinite(truth).all():
                continue
            k = box_of_face(found.boxes, truth)
            yield (truth, None, None) if k is None else (truth, found.boxes[k], [p[k] for p in readers])


def _source(detector: str):
    source = create_proposals(detector, points=None)  # the detector's own head; point stages come apart
    if not getattr(source, "gives_points", False):
        raise SystemExit(f"{detector}: this detector has no five-point head (train-detector --points)")
    return source


def detector_nmes(matches: list, reader: int = 0) -> list[float]:
    """Per found face of ``matches`` (:func:`_matches`), the NME of the ``reader``-th points (0: the detector's)."""
    return [nme_5(points[reader], truth) for truth, box, points in matches if box is not None]


def signed_offsets(matches: list, reader: int = 0) -> np.ndarray:
    """Per found face of ``matches``, the mean signed error (x, y) in pixels of the ``reader``-th points: a
    label convention a network learned shows as a constant pixel offset (docs/training.md, "Pixel coordinates")."""
    return np.array([(points[reader] - truth).mean(axis=0) for truth, box, points in matches if box is not None])


def _in_box(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    return (points - box[:2]) / np.maximum(box[2:] - box[:2], 1e-6)


def mean_shape_nmes(matches: list, train_matches: list) -> list[float]:
    """Per found face of ``matches``, the NME of the training faces' mean shape (in units of the detector's
    boxes, from ``train_matches``) placed in its box."""
    shape = np.mean([_in_box(truth, box) for truth, box, _ in train_matches if box is not None], axis=0)
    return [nme_5(box[:2] + shape * (box[2:] - box[:2]), truth) for truth, box, _ in matches if box is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", help="[LABEL=]FORMAT:PATH datasets with five or 68 points")
    parser.add_argument("--detector", action="append", help="candidate source spec (default: detector, the "
                                                             "bundled one); repeat to compare")
    parser.add_argument("--split", default="val", choices=("val", "train", "all"))
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=None, help="at most N images per dataset")
    parser.add_argument("--points", action="append", default=[], metavar="FILE",
                        help="a point stage (train-point-refiner's weights or ONNX, or 'bundled'); repeat to compare")
    parser.add_argument("--mean-shape", type=int, metavar="N", default=0,
                        help="also the mean shape's row, the shape taken from N training-split images per dataset")
    args = parser.parse_args()

    def read(split: str, limit: int | None) -> list:
        return [r for spec in parse_data_specs(args.data)
                for r in EvalDataset(spec.label, [spec.spec], split=split, val_fraction=args.val_fraction,
                                     limit=limit)]

    records = read(args.split, args.limit)
    train = read("train", args.mean_shape) if args.mean_shape else []
    print(f"\nThe detector's five points, {len(records)} images ({', '.join(args.data)}, split {args.split}); "
          "NME over the true eye-centre distance:\n")
    print("| detector | faces found | NME mean | NME median | failures > 0.10 | mean offset x, y px |")
    print("|---|---:|---:|---:|---:|---:|")
    context = SourceContext()
    stages = [PointStage(context.network("points", None if p == "bundled" else p)) for p in args.points]
    for detector in args.detector or ["detector"]:
        source = _source(detector)
        matches = list(_matches(source, records, stages))  # each photo through the detector once
        rows = [(detector, detector_nmes(matches), signed_offsets(matches))]
        rows += [(f"{detector}, point stage {p}", detector_nmes(matches, k + 1), signed_offsets(matches, k + 1))
                 for k, p in enumerate(args.points)]
        if train:
            rows.append((f"{detector}, its boxes with the mean shape",
                         mean_shape_nmes(matches, list(_matches(source, train, []))), None))
        for label, nmes, offsets in rows:
            e = np.asarray(nmes)
            shift = "" if offsets is None or not len(offsets) else "{:+.2f}, {:+.2f}".format(*offsets.mean(axis=0))
            print(f"| {label} | {len(e)}/{len(matches)} | {100 * e.mean():.2f}% | {100 * np.median(e):.2f}% | "
                  f"{100 * (e > 0.10).mean():.1f}% | {shift} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
