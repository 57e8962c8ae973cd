"""Where the 68 points fall once faces are aligned by their five points onto ArcFace's template.

Prints, for 300-W faces (68 points), the square window (side and centre, in ArcFace's 112-px frame)
that holds a given share of all points, which is how :data:`hyperface.alignment.DEFAULT_TEMPLATE`'s
window was chosen (99%). With ``--mean-shape`` it prints instead the mean of the aligned faces in
window-relative coordinates, the table :data:`hyperface.alignment.MEAN_SHAPE68` holds.

    python benchmarks/alignment_window.py ../shared/data/300w/lfpw/trainset ../shared/data/300w/helen/trainset
    python benchmarks/alignment_window.py --mean-shape ../shared/data/300w/lfpw/trainset ../shared/data/300w/helen/trainset
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.alignment import ARCFACE_112, DEFAULT_TEMPLATE, five_points, similarity_fit
from hyperface.data.readers import open_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="iBUG .pts folders (68 points)")
    ap.add_argument("--share", type=float, default=0.99, help="share of points the window must hold")
    ap.add_argument("--mean-shape", action="store_true",
                    help="print the mean aligned face in window-relative coordinates (MEAN_SHAPE68)")
    args = ap.parse_args()
    target = np.asarray(DEFAULT_TEMPLATE) if args.mean_shape else ARCFACE_112
    aligned = []
    for folder in args.folders:
        for record in open_dataset(f"pts:{folder}"):
            for face in record.faces:
                if face.landmarks is None or face.point_set != "ibug68":
                    continue
                m = similarity_fit(five_points(face.landmarks, "ibug68"), target)
                aligned.append(face.landmarks @ m[:, :2].T + m[:, 2])
    if args.mean_shape:
        mean = np.mean(aligned, axis=0) + 0.0  # + 0.0: no "-0.000"
        rows = [f"({x:.3f}, {y:.3f})" for x, y in mean.round(3) + 0.0]
        print(f"# mean of {len(aligned)} faces")
        for i in range(0, len(rows), 6):
            print("    " + ", ".join(rows[i:i + 6]) + ",")
        return
    pts = np.concatenate(aligned)
    lo, hi = np.quantile(pts, [(1 - args.share) / 2, 1 - (1 - args.share) / 2], axis=0)
    centre = (lo + hi) / 2
    print(f"| faces | share | x range | y range | square side (112-px frame) | centre |")
    print(f"|---|---|---|---|---|---|")
    for share in sorted({0.95, 0.99, 0.999, args.share}):
        lo, hi = np.quantile(pts, [(1 - share) / 2, 1 - (1 - share) / 2], axis=0)
        c = (lo + hi) / 2
        side = float(np.max(hi - lo))
        # the centred square of that side holding the share jointly (both axes at once)
        inside = np.all(np.abs(pts - c) <= side / 2, axis=1).mean()
        print(f"| {len(aligned)} | {share:.3f} | {lo[0]:.1f}..{hi[0]:.1f} | {lo[1]:.1f}..{hi[1]:.1f} | "
              f"{side:.1f} ({side / 112:.2f} x 112; joint share {inside:.4f}) | ({c[0]:.1f}, {c[1]:.1f}) |")


if __name__ == "__main__":
    main()
