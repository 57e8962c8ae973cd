"""Where a landmark network puts its points on average: the mean signed error in pixels, x and y.

A network trained with mirrored crops cannot learn a label convention's offset in x (mirroring turns
a label one pixel right of its pixel into one pixel left of it), only in y; so a constant x error that
does not grow with the face, beside none in y, is the data's pixel convention, not the network's
shape error (docs/training.md, "Pixel coordinates"). Each face is aligned by its true five points,
as the network's training crops are, and read without and with its mirrored crop; faces with 68
points are scored on all 68, faces with five (MTFL) on the five taken from the network's 68.

    python benchmarks/pixel_bias.py pts:../shared/data/300w/lfpw/trainset pts:../shared/data/300w/helen/trainset \\
        --split train --limit 300
    python benchmarks/pixel_bias.py "mtfl:../shared/data/mtfl?split=training" --split train --limit 600

It prints, per network and dataset: faces, the mean error in pixels (x, y) with its standard error,
the same as a percentage of the face's eye distance, a line fitted to the x error over that
distance (a constant pixel offset has a slope near 0), and the faces' NME (68 points over the outer
eye corners, five over the eye centres). ``--by-source`` gives each source its own rows: an offset
the training faces do not show but every held-out source does, beside a far lower NME on the training
faces, is what the network fitted, not a convention.
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.alignment import five_points
from hyperface.data.images import load_image
from hyperface.evaluate.datasets import EvalDataset
from hyperface.evaluate.metrics import face_nme
from hyperface.inference.assets import bundled
from hyperface.inference.stage_two import AlignedNetwork
from hyperface.runtime import RuntimeOptions, load_runtime


def signed_errors(network: AlignedNetwork, specs: list[str], split: str, limit: int | None,
                  flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean signed error per face (F, 2) in pixels, eye distance per face (F,), NME per face (F,)) over
    the datasets."""
    errors, distances, nmes = [], [], []
    for spec in specs:
        for record in EvalDataset(spec, [spec], split=split, limit=limit):
            faces = [f for f in record.faces if f.landmarks is not None and f.point_set in ("ibug68", "five")]
            if not faces:
                continue
            image = load_image(record.image)
            for face in faces:
                truth = np.asarray(face.landmarks, dtype=np.float64)
                five = five_points(truth[None], face.point_set)
                found = network.run([image], network.align(five), np.zeros(1, dtype=np.int64), flip).landmarks[0]
                if face.point_set == "five":
                    found = five_points(found[None], network.point_set)[0]
                errors.append((found - truth).mean(axis=0))
                distances.append(float(np.linalg.norm(five[0, 0] - five[0, 1])))
                nmes.append(face_nme(found, truth, face.point_set))
    return np.array(errors).reshape(-1, 2), np.array(distances), np.array(nmes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", help="FORMAT:PATH datasets with 68 or 5 points (one table row for all; --by-source: a row each)")
    ap.add_argument("--network", action="append", default=None,
                    help="'stage_two', 'fine' (the bundled ones) or a weights file; repeat (default: both bundled)")
    ap.add_argument("--split", choices=("all", "train", "val"), default="val")
    ap.add_argument("--limit", type=int, default=None, help="at most N images per dataset")
    ap.add_argument("--by-source", action="store_true", help="a row per source, not one for all of them")
    args = ap.parse_args(argv)
    options = RuntimeOptions("auto", "cpu", 1)
    print(f"{', '.join(args.sources)}, {args.split} faces, aligned by their true five points\n")
    print("| network | source | mirrored crop too | faces | x px (s.e.) | y px (s.e.) | x, y % of eye distance "
          "| x px = a + b % of eye distance | NME |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    groups = [[s] for s in args.sources] if args.by_source else [args.sources]
    for name in args.network or ["stage_two", "fine"]:
        runtime = (bundled().runtime(name, options) if name in ("fine", "stage_two") else load_runtime(name, options))
        network = AlignedNetwork(runtime)
        if "landmarks" not in network.tasks:
            raise SystemExit(f"{name}: a network with landmarks is needed")
        for sources, flip in [(g, f) for g in groups for f in (False, True)]:
            e, d, nme = signed_errors(network, sources, args.split, args.limit, flip)
            if not len(e):
                raise SystemExit(f"no face with 68 or 5 points in {', '.join(sources)}")
            se = e.std(axis=0) / np.sqrt(len(e))
            share = 100 * (e / d[:, None]).mean(axis=0)
            a, b = np.polyfit(d, e[:, 0], 1)[::-1]
            label = sources[0].split(":", 1)[-1] if len(sources) == 1 else "all"
            print(f"| {name} | {label} | {'yes' if flip else 'no'} | {len(e)} | {e[:, 0].mean():+.2f} ({se[0]:.2f}) | "
                  f"{e[:, 1].mean():+.2f} ({se[1]:.2f}) | {share[0]:+.2f}, {share[1]:+.2f} | "
                  f"{a:+.2f} {100 * b:+.3f} | {100 * nme.mean():.2f}% |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
