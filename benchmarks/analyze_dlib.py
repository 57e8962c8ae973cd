"""Faces found in dlib's group photos (``../shared/data/dlib_faces``, 43 annotated faces): recall and
precision at the analyzer's operating point, AP, the candidate stage's recall, and a picture.

Matching is evaluation.md's (``hyperface.evaluate.metrics.match_detections``). The candidate stage
counts a face as covered when a candidate matches it by the same rule. ``--split testing`` gives
the 25 faces of the held-out photos (never used to train or tune the fast candidate stage).

    python benchmarks/analyze_dlib.py ../shared/data/dlib_faces [--weights W] [--stage-two W2] [--proposals fast:DIR]
        [--picture docs/dlib_faces.jpg] [--detector-flip] [--min-face PX]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from hyperface.cli.analyzer_options import add_detector_arguments, proposal_options
from hyperface.data.images import load_image
from hyperface.data.readers import open_dataset
from hyperface.evaluate.metrics import detection_summary, match_detections, match_matrix
from hyperface.inference import FaceAnalyzer
from hyperface.inference.analyzer import PIPELINES
from hyperface.inference.proposals import DEFAULT_PROPOSALS
from hyperface.inference.draw import draw_faces

SPLITS = {"training": ["training_with_face_landmarks.xml"], "testing": ["testing_with_face_landmarks.xml"],
          "all": ["training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"]}


def mosaic(images: list[np.ndarray], width: int = 1600, row_height: int = 300) -> np.ndarray:
    """The pictures side by side in rows of about ``width`` pixels, each ``row_height`` tall."""
    scaled = [cv2.resize(im, (round(im.shape[1] * row_height / im.shape[0]), row_height),
                         interpolation=cv2.INTER_AREA) for im in images]
    rows, row, used = [], [], 0
    for im in scaled:
        if row and used + im.shape[1] > width:
            rows.append(row)
            row, used = [], 0
        row.append(im)
        used += im.shape[1]
    rows.append(row)
    out = np.full((row_height * len(rows), width, 3), 255, dtype=np.uint8)
    for r, items in enumerate(rows):
        x = 0
        for im in items:
            w = min(im.shape[1], width - x)
            out[r * row_height:(r + 1) * row_height, x:x + w] = im[:, :w]
            x += w
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the dlib_faces folder")
    parser.add_argument("--weights", help="analyzer weights (default: bundled)")
    parser.add_argument("--stage-two", default="auto", help="stage-two weights (default: auto, as the analyzer)")
    parser.add_argument("--proposals", default=DEFAULT_PROPOSALS, help="candidate source (detector, fast, fast:DIR, ...)")
    parser.add_argument("--split", choices=sorted(SPLITS), default="all")
    parser.add_argument("--pipeline", default="paper", choices=PIPELINES)
    parser.add_argument("--picture", type=Path, help="write a mosaic of the annotated photos here (JPEG)")
    parser.add_argument("--min-face", type=float, default=None, help="smallest face (pixels; default: the source's)")
    add_detector_arguments(parser)
    args = parser.parse_args(argv)

    options = proposal_options(args)
    default = FaceAnalyzer(args.weights, proposals=args.proposals, stage_two=args.stage_two, pipeline=args.pipeline,
                           proposal_options=options)
    default_threshold = default.score_threshold  # the source's default; report everything, cut there below
    analyzer = FaceAnalyzer(args.weights, proposals=args.proposals, stage_two=args.stage_two, score_threshold=0.0,
                            irp_threshold=default.irp_threshold, pipeline=args.pipeline, proposal_options=options)
    matches, covered, total, drawn = [], 0, 0, []
    for xml in SPLITS[args.split]:
        for rec in open_dataset(f"dlib:{args.folder / xml}"):
            image = load_image(rec.image)
            gt = np.array([f.box for f in rec.faces]).reshape(-1, 4)
            cands = analyzer.proposals(image, str(rec.image))
            covered += int(match_matrix(cands, gt).any(axis=0).sum()) if len(cands) else 0
            total += len(gt)
            faces = analyzer(image)
            matches.append(match_detections([f.box for f in faces], [f.score for f in faces], gt))
            drawn.append(draw_faces(image, [f for f in faces if f.score >= default_threshold]))
    summary = detection_summary(matches, threshold=default_threshold)
    summary["candidate_recall"] = covered / total if total else None
    print(json.dumps(summary, indent=1))
    if args.picture:
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.picture), cv2.cvtColor(mosaic(drawn), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return 0


if __name__ == "__main__":
    sys.exit(main())
