"""Gender accuracy by age band on UTKFace or FairFace (ground-truth box given): where the errors are.

UTKFace spans ages 0-116, FairFace gives age bins (their middles are used); a child's gender is much
harder to see than an adult's, so the overall accuracy depends on the dataset's age mix. Prints a
table (age band, faces, accuracy, errors) per model: stage one alone (--weights W) and, by
default, the bundled model with its stage two.

    python benchmarks/gender_by_age.py ../shared/data/utkface [--split val] [--weights W]
    python benchmarks/gender_by_age.py fairface:../shared/data/fairface --weights old.safetensors --weights bundled
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.data.images import load_image
from hyperface.data.records import GENDERS
from hyperface.evaluate.datasets import DEFAULT_VAL_FRACTION, EvalDataset, val_fraction_from_prepared
from hyperface.inference import FaceAnalyzer
from hyperface.inference.assets import parse_model_spec

BANDS = ((0, 12), (13, 19), (20, 39), (40, 59), (60, 200))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a UTKFace folder, or FORMAT:PATH (utkface:..., fairface:...)")
    parser.add_argument("--weights", action="append",
                        help="'bundled' (stage one and two), STAGE1 weights alone or STAGE1+STAGE2; repeat (default: bundled)")
    parser.add_argument("--split", choices=("val", "train", "all"), default="val")
    parser.add_argument("--prepared", help="prepared folder whose manifest gives the validation fraction")
    args = parser.parse_args(argv)
    fraction = val_fraction_from_prepared(args.prepared) if args.prepared else DEFAULT_VAL_FRACTION
    spec = args.source if ":" in args.source.split("/")[0] else f"utkface:{args.source}"
    records = list(EvalDataset(spec.split(":")[0], [spec], split=args.split, val_fraction=fraction))
    for weights in args.weights or ["bundled"]:
        stage_one, stage_two = parse_model_spec(weights)
        analyzer = FaceAnalyzer(stage_one, stage_two=stage_two)
        ages, correct = [], []
        for record in records:
            face = record.faces[0]
            found = analyzer(load_image(record.image), boxes=np.asarray([face.box]))
            ages.append(face.attributes["age"])
            correct.append(bool(found) and found[0].gender == GENDERS[face.gender])
        ages, correct = np.asarray(ages), np.asarray(correct)
        print(f"\n{spec} {args.split}, {weights}: gender accuracy by age, box given, {len(ages)} faces\n")
        print("| age | faces | accuracy % | errors |\n|---|---|---|---|")
        for lo, hi in BANDS:
            sel = (ages >= lo) & (ages <= hi)
            label = f"{lo}-{hi}" if hi < 200 else f"{lo}+"
            print(f"| {label} | {sel.sum()} | {100 * correct[sel].mean():.1f} | {(~correct[sel]).sum()} |")
        print(f"| all | {len(ages)} | {100 * correct.mean():.1f} | {(~correct).sum()} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
