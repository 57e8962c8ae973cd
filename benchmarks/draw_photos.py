"""Draw what the analyzer finds on a few photos, side by side in one picture (for the docs).

    python benchmarks/draw_photos.py PHOTO [PHOTO ...] --out docs/masks_val.jpg [--weights W] [--proposals fast:DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from analyze_dlib import mosaic
from hyperface.data.images import load_image
from hyperface.inference import FaceAnalyzer
from hyperface.inference.proposals import DEFAULT_PROPOSALS
from hyperface.inference.draw import draw_faces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="the picture to write (JPEG)")
    parser.add_argument("--weights", help="stage-one weights (default: bundled)")
    parser.add_argument("--proposals", default=DEFAULT_PROPOSALS, help="candidate source (detector, fast, fast:DIR, ...)")
    parser.add_argument("--row-height", type=int, default=300)
    args = parser.parse_args(argv)

    analyzer = FaceAnalyzer(args.weights, proposals=args.proposals)
    drawn = []
    for photo in args.photos:
        image = load_image(photo)
        faces = analyzer(image)
        print(f"{photo}: {len(faces)} faces")
        drawn.append(draw_faces(image, faces))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture = mosaic(drawn, row_height=args.row_height)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return 0


if __name__ == "__main__":
    sys.exit(main())
