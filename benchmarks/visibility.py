"""Visibility accuracy of a stage-two network on validation faces with synthetic occluders.

No public face set in the pool labels which landmarks are visible, so the labels are made the way
training makes them (docs/training.md, "Visibility"): every 68-point validation face of a prepared
aligned folder is shown once clean and once under each occluder (a face mask, sunglasses, a hand or
object), painted where its points say (:mod:`hyperface.train.occlusion`); a point is hidden when an
occluder covers it or when the head itself hides it at the face's pose
(:mod:`hyperface.train.self_occlusion`). The network's visibility output is read at 0.5.

The table gives, per condition, the points scored, the share of hidden points, the accuracy, how
many hidden points are called hidden (recall) and how many points called hidden are (precision),
and the accuracy of always answering "visible", the baseline to beat.

    python benchmarks/visibility.py data/aligned-main [--weights runs/stage2-vis/best.safetensors]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from hyperface.data.shards import PreparedDataset
from hyperface.inference.assets import ASSETS
from hyperface.models import load_model
from hyperface.models.preprocess import to_input_tensor
from hyperface.train.augment import augment_sample

CONDITIONS = ("clean", "mask", "sunglasses", "hand")


def labelled_faces(folder: Path, split: str, limit: int | None) -> tuple[PreparedDataset, list[int]]:
    """The prepared folder and the indices of its faces with labelled 68 points and a pose label."""
    ds = PreparedDataset([folder], split=split)
    if ds.point_set != "ibug68":
        raise SystemExit(f"{folder}: needs a prepared folder with iBUG 68 points, found {ds.point_set}")
    rows = ds.labels()
    idx = np.flatnonzero(rows["landmarks_mask"].all(axis=1) & rows["pose_mask"])
    return ds, [int(i) for i in idx[:limit]]


def score(model, ds: PreparedDataset, indices: list[int], condition: str, margin: float, seed: int) -> dict:
    """Counts of (label, prediction) over every point of every face under one condition."""
    size = model.config.input_size
    occlusion = {} if condition == "clean" else {condition: 1.0}
    images, labels = [], []
    for i in indices:
        rng = np.random.default_rng([seed, i, CONDITIONS.index(condition)])
        s = augment_sample(ds[i], rng, context=float(ds.context), out_size=size, point_set="ibug68",
                           occlusion=occlusion, self_occlusion=margin, input_context=model.input_context)
        images.append(s["image"])
        vis = s["visibility"] if np.any(s.get("visibility_mask", False)) else np.ones(68, np.float32)
        labels.append(vis > 0.5)
    seen = np.stack(labels)
    with torch.inference_mode():
        pred = []
        for k in range(0, len(images), 64):
            x = to_input_tensor(np.stack(images[k:k + 64]), model.config)
            pred.append(model(x)["visibility"].numpy())
    called = np.concatenate(pred) > 0.5
    hidden, said_hidden = ~seen, ~called
    return {"points": seen.size, "hidden": int(hidden.sum()), "correct": int((seen == called).sum()),
            "hits": int((hidden & said_hidden).sum()), "said_hidden": int(said_hidden.sum())}


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}" if b else "-"


def row(name: str, c: dict) -> str:
    return (f"| {name} | {c['points']} | {_pct(c['hidden'], c['points'])} | {_pct(c['correct'], c['points'])} | "
            f"{_pct(c['hits'], c['hidden'])} | {_pct(c['hits'], c['said_hidden'])} | "
            f"{_pct(c['points'] - c['hidden'], c['points'])} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prepared", type=Path, help="prepared aligned folder ('hyperface prepare --mode aligned')")
    parser.add_argument("--weights", default=str(ASSETS / "hyperface-aligned.safetensors"),
                        help="stage-two weights (default: the bundled file)")
    parser.add_argument("--split", default="val", choices=("val", "train"))
    parser.add_argument("--margin", type=float, default=15.0, help="self-occlusion margin, degrees (training's)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many faces")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model = load_model(args.weights)
    if "visibility" not in model.config.tasks:
        raise SystemExit(f"{args.weights}: this network has no visibility output (tasks {list(model.config.tasks)})")
    ds, indices = labelled_faces(args.prepared, args.split, args.limit)
    print(f"{len(indices)} faces of {args.prepared} ({args.split}), weights {args.weights}\n")
    print("| condition | points | hidden % | accuracy % | hidden found % | precision of 'hidden' % | all-visible baseline % |")
    print("|---|---|---|---|---|---|---|")
    total = dict.fromkeys(("points", "hidden", "correct", "hits", "said_hidden"), 0)
    for condition in CONDITIONS:
        c = score(model, ds, indices, condition, args.margin, args.seed)
        print(row(condition, c))
        total = {k: total[k] + c[k] for k in total}
    print(row("**all**", total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
