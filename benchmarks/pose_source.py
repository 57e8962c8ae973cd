"""Which head pose to report: the network's pose branch, or PnP of its own 68 landmarks?

On 68-point validation faces (box given), compares three answers against the PnP of the annotated
68 points (evaluation.md's reference): the pose branch (``Face.pose``), the PnP of the predicted
landmarks, and their mean. Prints the mean absolute error per angle and by bins of the reference's
|yaw|; a row per model.

    python benchmarks/pose_source.py pts:../shared/data/300w/lfpw/trainset pts:../shared/data/300w/helen/trainset \\
        --weights old.safetensors --weights bundled
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.data.images import load_image
from hyperface.evaluate.datasets import DEFAULT_VAL_FRACTION, EvalDataset
from hyperface.evaluate.metrics import pose_errors
from hyperface.inference import FaceAnalyzer
from hyperface.inference.assets import parse_model_spec
from hyperface.pose import pose_from_landmarks

YAW_BINS = ((0, 15), (15, 30), (30, 45), (45, 90))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="FORMAT:PATH datasets with 68 points")
    parser.add_argument("--weights", action="append",
                        help="'bundled', STAGE1 weights alone or STAGE1+STAGE2; repeat (default: bundled)")
    parser.add_argument("--split", choices=("val", "train", "all"), default="val")
    args = parser.parse_args(argv)
    records = list(EvalDataset("68", args.sources, split=args.split, val_fraction=DEFAULT_VAL_FRACTION))
    print(f"{len(records)} images, split {args.split}; MAE in degrees (roll, pitch, yaw; mean of the three)\n")
    print("| model | answer | roll | pitch | yaw | mean | " + " | ".join(f"|yaw| {a}-{b}" for a, b in YAW_BINS) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(YAW_BINS))
    for weights in args.weights or ["bundled"]:
        # the pose branch as Face.pose; the PnP and the mean are computed here from the same faces
        stage_one, stage_two = parse_model_spec(weights)
        analyzer = FaceAnalyzer(stage_one, stage_two=stage_two, pose_from="branch")
        ref, answers = [], {"pose branch": [], "PnP of landmarks": [], "mean of both": []}
        for record in records:
            image = load_image(record.image)
            size = (image.shape[1], image.shape[0])
            for face in record.faces:
                if face.landmarks is None or face.point_set != "ibug68":
                    continue
                found = analyzer(image, boxes=face.box[None])
                if not found or found[0].pose is None:
                    continue
                ref.append(pose_from_landmarks(face.landmarks, size))
                branch, pnp = found[0].pose, pose_from_landmarks(found[0].landmarks, size)
                answers["pose branch"].append(branch)
                answers["PnP of landmarks"].append(pnp)
                answers["mean of both"].append((branch + pnp) / 2)
        ref = np.asarray(ref)
        yaw = np.abs(ref[:, 2])
        for name, values in answers.items():
            err = pose_errors(values, ref)
            bins = [err[(yaw >= a) & (yaw < b)].mean() if ((yaw >= a) & (yaw < b)).any() else float("nan")
                    for a, b in YAW_BINS]
            counts = [int(((yaw >= a) & (yaw < b)).sum()) for a, b in YAW_BINS]
            print(f"| {weights} | {name} | " + " | ".join(f"{v:.2f}" for v in err.mean(0)) + f" | {err.mean():.2f} | "
                  + " | ".join(f"{v:.2f} ({n})" for v, n in zip(bins, counts)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
