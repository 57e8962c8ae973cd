"""The candidate stage alone: how many annotated faces get a candidate, how many candidates, how fast.

A face is covered when a candidate matches it by evaluation.md's rule
(:func:`hyperface.evaluate.metrics.match_matrix`); faces a reader marks ``ignore`` (smaller than its
``min_face``) are left out. Sources that score their boxes (``detector``) also get the AP and the
recall / precision of their own boxes, as a detector on its own. Times are the median per image of
the source's call on the image as the analyzer gives it (longer side at most 1280), same run.

    python benchmarks/candidate_recall.py [--data SPEC] [--split val] --proposals fast --proposals detector
    python benchmarks/candidate_recall.py --split train --proposals detector --set threshold=0.5   # tuning
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from hyperface.data.images import load_image
from hyperface.data.readers import open_dataset
from hyperface.data.splits import DEFAULT_VAL_FRACTION, split_of
from hyperface.evaluate.metrics import detection_summary, match_detections, match_matrix
from hyperface.inference.proposals import create_proposals

MASKS = "voc:../shared/data/masks?classes=with_mask,without_mask,mask_weared_incorrect&min_face=20"
MAX_SIDE = 1280  # the analyzer's default working size


def _working(image: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape[:2]
    s = min(1.0, MAX_SIDE / max(h, w))
    if s == 1.0:
        return image, 1.0
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA), s


def measure(spec: str, source_spec: str, split: str, val_fraction: float, limit: int | None,
            options: dict | None = None) -> dict:
    source = create_proposals(source_spec, **(options or {}))
    covered = total = candidates = images = 0
    times, matches = [], []
    for rec in open_dataset(spec):
        if split != "all" and split_of(rec.group, val_fraction) != (split == "val"):
            continue
        image, s = _working(load_image(rec.image))
        keep = np.array([not f.attributes.get("ignore") for f in rec.faces], dtype=bool)
        boxes = np.array([f.box for f in rec.faces], dtype=np.float64).reshape(-1, 4) * s
        gt, ignored = boxes[keep], boxes[~keep]
        t = time.perf_counter()
        if hasattr(source, "detect"):
            cands, scores = source.detect(image)
        else:
            cands, scores = source(image, str(rec.image)), None
        times.append(time.perf_counter() - t)
        cands = np.asarray(cands, dtype=np.float64).reshape(-1, 4)
        if len(gt) and len(cands):
            covered += int(match_matrix(cands, gt).any(axis=0).sum())
        total += len(gt)
        candidates += len(cands)
        images += 1
        if scores is not None:
            matches.append(match_detections(cands, np.asarray(scores), gt, ignore=ignored))
        if limit and images >= limit:
            break
    row = {"source": source_spec, "images": images, "faces": total, "recall": covered / max(total, 1),
           "per_image": candidates / max(images, 1), "ms": 1000 * statistics.median(times) if times else float("nan")}
    if matches:
        summary = detection_summary(matches, threshold=getattr(source, "threshold", 0.5))
        row.update(ap=summary["ap"], det_recall=summary.get("recall"), det_precision=summary.get("precision"))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=MASKS, help="dataset with every face boxed (default: the face-mask photos)")
    parser.add_argument("--split", choices=("val", "train", "all"), default="val")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION)
    parser.add_argument("--proposals", action="append", help="candidate source (repeatable; default fast and detector)")
    parser.add_argument("--limit", type=int, help="at most this many images")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a source option for every source, e.g. threshold=0.5 (repeatable)")
    args = parser.parse_args(argv)
    options = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            options[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            parser.error(f"--set {item!r}: expected KEY=NUMBER, e.g. threshold=0.5")
    sources = args.proposals or ["fast", "detector"]
    print(f"data {args.data}, split {args.split}, options {options or 'defaults'}\n")
    print("| candidates | images | faces | faces covered | candidates per image | ms per image | AP alone "
          "| recall / precision alone |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in sources:
        r = measure(args.data, spec, args.split, args.val_fraction, args.limit, options)
        alone = (f"{r['ap']:.3f} | {r['det_recall']:.1%} / {r['det_precision']:.1%}" if "ap" in r else "- | -")
        print(f"| {spec} | {r['images']} | {r['faces']} | {r['recall']:.1%} | {r['per_image']:.1f} | {r['ms']:.1f} "
              f"| {alone} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
