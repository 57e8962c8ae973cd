"""False faces on face-free photos: how many faces the analyzer reports per image at its operating point.

Every image of the folders given (``../shared/data/negatives``: photos and CIFAR-10 pictures, none
with a face) is analysed; every face reported is a false one. The table gives images, false faces,
false faces per image and the highest score seen, per folder and model.

    python benchmarks/false_positives.py ../shared/data/negatives/photos ../shared/data/negatives/cifar10 \\
        [--weights W [--stage-two W2]] [--proposals fast:DIR] [--detector-flip] [--min-face PX]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hyperface.cli.analyzer_options import add_detector_arguments, proposal_options
from hyperface.data.readers import open_dataset
from hyperface.inference import FaceAnalyzer
from hyperface.inference.analyzer import PIPELINES
from hyperface.inference.proposals import DEFAULT_PROPOSALS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of face-free images")
    parser.add_argument("--weights", help="stage-one weights (default: bundled)")
    parser.add_argument("--stage-two", default="auto", help="stage-two weights (default: auto)")
    parser.add_argument("--proposals", default=DEFAULT_PROPOSALS, help="candidate source (detector, fast, fast:DIR, ...)")
    parser.add_argument("--threshold", type=float, default=None, help="face score (default: the analyzer's for the source)")
    parser.add_argument("--pipeline", default="paper", choices=PIPELINES)
    parser.add_argument("--irp-rounds", type=int, default=None, help="IRP rounds (default: the analyzer's)")
    parser.add_argument("--min-face", type=float, default=None, help="smallest face (pixels; default: the source's)")
    add_detector_arguments(parser)
    args = parser.parse_args(argv)

    analyzer = FaceAnalyzer(args.weights, proposals=args.proposals, stage_two=args.stage_two,
                            score_threshold=args.threshold, pipeline=args.pipeline, irp_rounds=args.irp_rounds,
                            proposal_options=proposal_options(args))
    print(f"weights {args.weights or 'bundled'}, proposals {args.proposals}, pipeline {args.pipeline}, "
          f"threshold {analyzer.score_threshold}\n")
    print("| folder | images | false faces | per image | highest score |")
    print("|---|---|---|---|---|")
    total_images = total_faces = 0
    for folder in args.folders:
        images = faces = 0
        top = 0.0
        for rec in open_dataset(f"negatives:{folder}"):
            found = analyzer(rec.image)
            images += 1
            faces += len(found)
            top = max([top, *(f.score for f in found)])
        total_images, total_faces = total_images + images, total_faces + faces
        print(f"| {folder} | {images} | {faces} | {faces / max(images, 1):.3f} | {top:.2f} |")
    print(f"| **all** | {total_images} | {total_faces} | {total_faces / max(total_images, 1):.3f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
