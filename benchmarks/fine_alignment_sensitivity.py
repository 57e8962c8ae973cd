"""How much of a stage-two network's landmark error its alignment costs: the same faces aligned by their
true points, by the true alignment perturbed, and by the pipeline's predicted points.

The fine landmark network reads 3.76% (68-point NME) on validation faces aligned by their true five
points and 4.06% in the pipeline, where stage two's points align it. This separates the causes on
annotated faces (validation split by default): rows for the true alignment, the true alignment
perturbed at random (a similarity about the crop's centre with log-normal scale, normal shift and
rotation of the given spreads, times each ``--factor``: by default the spread of stage two's alignment
error on the 300-W validation faces, ``benchmarks/stage_one_alignment_error.py --stage-two --split val``),
stage two's points (the face's box given, as the pipeline aligns it, without the mirrored face) and the
network once more aligned by its own points. The crop is cut the pipeline's way (one warp of the original
image), so the first row is also what training's path (a stored 120-pixel crop, resized) would give.

    python benchmarks/fine_alignment_sensitivity.py pts:../shared/data/300w/lfpw/trainset \\
        pts:../shared/data/300w/helen/trainset
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from hyperface import FaceAnalyzer
from hyperface.alignment import Alignment, five_points
from hyperface.data.images import load_image
from hyperface.evaluate.datasets import EvalDataset
from hyperface.inference.analyzer import FLIP_AVERAGE_WITH_FINE
from hyperface.inference.assets import bundled
from hyperface.inference.stage_two import AlignedNetwork
from hyperface.runtime import RuntimeOptions, load_runtime


def perturbed(al: Alignment, scale: float, shift: np.ndarray, degrees: float) -> Alignment:
    """``al`` moved in its own window: scaled and turned about the crop's centre, shifted by ``shift``
    window sides."""
    c = (al.size - 1) / 2.0
    a = math.radians(degrees)
    turn = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    offset = c - turn @ np.array([c, c]) + np.asarray(shift) * al.size / al.context
    m = np.vstack([al.matrix, [0.0, 0.0, 1.0]])
    return Alignment(np.column_stack([turn, offset]) @ m, al.size, al.context)


def nme(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point error over the outer-eye-corner distance (68 points)."""
    return float(np.linalg.norm(points - truth, axis=1).mean() / np.linalg.norm(truth[36] - truth[45]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="FORMAT:PATH datasets with 68 iBUG points")
    ap.add_argument("--network", default="fine", help="'fine', 'stage_two' (the bundled ones) or a weights file")
    ap.add_argument("--split", choices=("all", "train", "val"), default="val")
    ap.add_argument("--scale-std", type=float, default=0.031, help="log-normal scale spread")
    ap.add_argument("--shift-std", type=float, default=0.0075, help="shift spread, window sides")
    ap.add_argument("--rotate-std", type=float, default=1.24, help="rotation spread, degrees")
    ap.add_argument("--factor", type=float, action="append", default=None,
                    help="perturbation rows at these multiples of the spreads (default 1 and 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    factors = args.factor or [1.0, 2.0]
    options = RuntimeOptions("auto", "cpu", 1)
    runtime = (bundled().runtime(args.network, options) if args.network in ("fine", "stage_two")
               else load_runtime(args.network, options))
    network = AlignedNetwork(runtime)
    if "landmarks" not in network.tasks or network.config.num_points != 68:
        raise SystemExit(f"{args.network}: a network with 68 landmarks is needed")
    stage_two = FaceAnalyzer(stage_two="bundled", fine=None, flip_average=FLIP_AVERAGE_WITH_FINE["stage_two"],
                             threads=1)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[float]] = {"true points": []}
    rows.update({f"true points, perturbed x{f:g}": [] for f in factors})
    rows.update({"stage two's points (the pipeline)": [], "its own points, a second round": []})

    def points(image: np.ndarray, al: Alignment) -> np.ndarray:
        return network.run([image], [al], np.zeros(1, dtype=np.int64), False).landmarks[0]

    for spec in args.sources:
        for record in EvalDataset(spec, [spec], split=args.split):
            faces = [f for f in record.faces if f.landmarks is not None and f.point_set == "ibug68"]
            if not faces:
                continue
            image = load_image(record.image)
            for face in faces:
                truth = np.asarray(face.landmarks, dtype=np.float64)
                true = network.align(five_points(truth[None], "ibug68"))[0]
                rows["true points"].append(nme(points(image, true), truth))
                for f in factors:
                    moved = perturbed(true, math.exp(rng.normal(0, args.scale_std * f)),
                                      rng.normal(0, args.shift_std * f, 2), rng.normal(0, args.rotate_std * f))
                    rows[f"true points, perturbed x{f:g}"].append(nme(points(image, moved), truth))
                found = stage_two(image, boxes=face.box[None])
                if not found:
                    continue
                first = points(image, network.align(five_points(np.asarray(found[0].landmarks)[None], "ibug68"))[0])
                rows["stage two's points (the pipeline)"].append(nme(first, truth))
                again = points(image, network.align(five_points(first[None], "ibug68"))[0])
                rows["its own points, a second round"].append(nme(again, truth))
    print(f"{args.network} network, {args.split} faces of {', '.join(args.sources)}; perturbation spreads: scale "
          f"{args.scale_std}, shift {args.shift_std} window sides, rotation {args.rotate_std} degrees")
    print("| alignment | faces | 68-pt NME | median | failures @0.08 |")
    print("|---|---:|---:|---:|---:|")
    for name, values in rows.items():
        v = np.array(values)
        if len(v):
            print(f"| {name} | {len(v)} | {100 * v.mean():.2f}% | {100 * np.median(v):.2f}% | {100 * (v > 0.08).mean():.1f}% |")


if __name__ == "__main__":
    main()
