"""Tight face boxes for face-crop datasets, from the bundled analyzer, for training the detector on close-ups.

FairFace's and UTKFace's pictures are single faces cut with a margin: the face fills the picture and is
often cut by its border, and their only box is the whole picture. The detector never trained on such
close-ups, and in the pipeline it misses 7.7% of FairFace's validation faces, mostly turned ones
(docs/training.md). This labels each training face (the hash split ``prepare`` and ``evaluate`` share;
validation faces never) with the bundled analyzer's 68 points, the face's annotated box given (the whole
picture), and writes them in 300-W's ``.pts`` format beside a link to the image, one folder per source:
``pts:OUT/fairface`` is then a ``train-detector`` source whose boxes are the points' tight box, as
300-W's are.

    python benchmarks/pseudo_boxes.py --source fairface:../shared/data/fairface \\
        --source utkface:../shared/data/utkface --out pseudo-boxes
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pseudo_labels_dlib import source_folders, training_faces, write_face

from hyperface import FaceAnalyzer
from hyperface.data.images import load_image
from hyperface.data.splits import DEFAULT_VAL_FRACTION


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", action="append", required=True, help="FORMAT:PATH to label (repeatable)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION)
    ap.add_argument("--limit", type=int, default=None, help="images per dataset (a quick look)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    analyzer = FaceAnalyzer(threads=args.threads)
    for spec, folder in zip(args.source, source_folders(args.source, args.out)):
        folder.mkdir(parents=True, exist_ok=True)
        seen = kept = 0
        for i, (path, face) in enumerate(training_faces(spec, args.val_fraction, args.limit)):
            seen += 1
            found = analyzer(load_image(path), boxes=face.box[None])
            if not found or found[0].landmarks is None or found[0].point_set != "ibug68":
                continue
            write_face(folder, i, path, found[0].landmarks)
            kept += 1
        print(f"{spec}: {seen} training faces, {kept} labelled -> pts:{folder}")


if __name__ == "__main__":
    main()
