"""How far stage one's points (or stage two's) put a face from where its true five points would align it.

Stage two is trained on faces aligned by their annotated points, perturbed by the training
augmentation's scale, shift and rotation; at inference the alignment comes from stage one's points.
This measures stage one's alignment error on annotated faces (box given: the tight box of the
points; stage one then runs its IRP round as in the pipeline): for each face the similarity that
takes the true aligned window to the predicted one, as the augmentation's terms (scale factor,
centre shift in window sides, rotation in degrees), and prints their spread beside the config's
ranges, so the augmentation can be set to cover it. ``--stage-two`` measures the points of stage two
(the bundled one, without its fine landmark network and, as when that network follows, without the
mirrored face): the alignment the fine landmark network sees
(``configs/stage2-fine.yaml``). ``--split val`` measures only the validation faces (the hash split
``prepare`` and ``evaluate`` share), the first ``--limit`` of each source.

    python benchmarks/stage_one_alignment_error.py pts:../shared/data/300w/lfpw/trainset --limit 300
    python benchmarks/stage_one_alignment_error.py pts:../shared/data/300w/lfpw/trainset --limit 300 \
        --stage-two --config configs/stage2-fine.yaml
    python benchmarks/stage_one_alignment_error.py pts:../shared/data/300w/lfpw/trainset \
        pts:../shared/data/300w/helen/trainset --stage-two --split val --config configs/stage2-fine.yaml
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from hyperface import FaceAnalyzer
from hyperface.alignment import align, five_points
from hyperface.data.images import load_image
from hyperface.evaluate.datasets import EvalDataset
from hyperface.inference.analyzer import FLIP_AVERAGE_WITH_FINE
from hyperface.train.config import load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="FORMAT:PATH datasets with 68 or 5 points")
    ap.add_argument("--weights", default=None, help="stage-one weights (default: bundled)")
    ap.add_argument("--limit", type=int, default=300, help="faces per source")
    ap.add_argument("--split", choices=("all", "train", "val"), default="all",
                    help="which faces of each source (the hash split prepare and evaluate share)")
    ap.add_argument("--config", default="configs/stage2.yaml", help="config whose augment ranges to show")
    ap.add_argument("--stage-two", action="store_true",
                    help="the points of the bundled stage two (the fine landmark network's alignment)")
    args = ap.parse_args()
    analyzer = (FaceAnalyzer(args.weights, stage_two="bundled", fine=None,
                             flip_average=FLIP_AVERAGE_WITH_FINE["stage_two"]) if args.stage_two
                else FaceAnalyzer(args.weights, stage_two=None))
    terms = []
    for spec in args.sources:
        n = 0
        for record in EvalDataset(spec, [spec], split=args.split):
            face = next((f for f in record.faces if f.landmarks is not None), None)
            if face is None or n >= args.limit:
                continue
            n += 1
            image = load_image(record.image)
            found = analyzer(image, boxes=face.box[None])
            if not found:
                continue
            true = align(five_points(face.landmarks, face.point_set), 100)
            pred = align(five_points(found[0].landmarks, found[0].point_set), 100)
            # the predicted window's centre and corner in the true window's relative coordinates
            centre = true.to_relative(pred.to_image(np.zeros(2)))
            scale = true.scale / pred.scale
            turn = (pred.angle - true.angle + 180.0) % 360.0 - 180.0
            terms.append((scale, centre[0], centre[1], turn))
    t = np.array(terms)
    aug = load_config(args.config).augment
    print(f"{len(t)} faces")
    print("| term | mean | std | 5% | 95% | augmentation range |")
    print("|---|---|---|---|---|---|")
    rows = [("scale", t[:, 0], f"1 +- {aug.scale}"), ("shift x (window sides)", t[:, 1], f"+- {aug.shift}"),
            ("shift y (window sides)", t[:, 2], f"+- {aug.shift}"), ("rotation (degrees)", t[:, 3], f"+- {aug.rotate}")]
    for name, v, rng in rows:
        lo, hi = np.quantile(v, [0.05, 0.95])
        print(f"| {name} | {v.mean():.3f} | {v.std():.3f} | {lo:.3f} | {hi:.3f} | {rng} |")
    assert math.isfinite(float(t.mean()))


if __name__ == "__main__":
    main()
