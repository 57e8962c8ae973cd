"""MTFL: ``training.txt`` / ``testing.txt`` lists of faces with 5 points and 4 attributes.

One face a line: ``PATH x1 x2 x3 x4 x5 y1 y2 y3 y4 y5 gender smile glasses pose``. The path uses
backslashes and is relative to the list's folder; lines may start with spaces. Points are, in
order, left eye centre, right eye centre, nose tip, left mouth corner, right mouth corner ("left" =
image left), i.e. the ``five`` point set. Gender 1 male, 2 female (-> 0, 1); smile and glasses
1 yes, 2 no (-> ``attributes["smile"]``, ``attributes["glasses"]`` as bools); pose 1..5 (left
profile .. right profile) -> ``pose_class``. The box is :func:`hyperface.data.boxes.five_point_box`.
A bad line (too few fields, a label out of range, coordinates far outside the image, an image path
that leaves the folder) is reported as ``LIST:LINE`` and skipped.

MTFL does not document its pixel convention; its points are read as 1-based, as 300-W's (Matlab's:
the first pixel's centre is (1, 1)), and have :data:`MTFL_ORIGIN` subtracted for the records' 0-based
pixels. Measured: a network trained with mirrored crops, which cannot learn an x offset, reads x
0.9 pixel left of MTFL's training points and 1.0 of 300-W's, and y level with both (docs/training.md,
"Pixel coordinates").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.boxes import five_point_box
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["MtflReader", "MTFL_SPLITS", "MTFL_ORIGIN"]

MTFL_SPLITS = ("training", "testing", "all")
_YES_NO = {1: True, 2: False}
#: The coordinate of the first pixel's centre in MTFL's lists (1-based); records are 0-based.
MTFL_ORIGIN = 1.0


class _LineError(ValueError):
    pass


def _parse_line(text: str) -> tuple[str, np.ndarray, int, bool, bool, int]:
    tokens = text.split()
    if len(tokens) < 15:
        raise _LineError(f"expected a path and 14 numbers, got {len(tokens)} fields")
    # Numbers are the last 14 fields; anything before them is the path (which may hold spaces).
    path = " ".join(tokens[:-14])
    try:
        coords = [float(t) for t in tokens[-14:-4]]
    except ValueError:
        raise _LineError(f"a coordinate is not a number in {' '.join(tokens[-14:-4])!r}") from None
    if not all(math.isfinite(c) for c in coords):
        raise _LineError("non-finite coordinate")
    try:
        gender, smile, glasses, pose = (int(t) for t in tokens[-4:])
    except ValueError:
        raise _LineError(f"gender, smile, glasses, pose must be whole numbers, got {' '.join(tokens[-4:])!r}") from None
    if gender not in (1, 2):
        raise _LineError(f"gender {gender} is not 1 (male) or 2 (female)")
    if smile not in _YES_NO or glasses not in _YES_NO:
        raise _LineError(f"smile {smile} / glasses {glasses} must be 1 (yes) or 2 (no)")
    if not 1 <= pose <= 5:
        raise _LineError(f"pose class {pose} is not in 1..5")
    points = np.array([coords[:5], coords[5:]], dtype=np.float64).T - MTFL_ORIGIN
    return path, points, gender - 1, _YES_NO[smile], _YES_NO[glasses], pose


class MtflReader(DatasetReader):
    """The MTFL folder holding ``training.txt`` and/or ``testing.txt``; ``split`` picks which
    (``all``: every list present)."""

    format = "mtfl"
    pixel_origin = MTFL_ORIGIN
    description = "MTFL training.txt/testing.txt: 5 points, gender, smile, glasses, 5-way pose class"

    def __init__(self, path: str | Path, *, verify_images: bool = False, split: str = "all") -> None:
        if split not in MTFL_SPLITS:
            raise ValueError(f"mtfl: split={split!r}; choose from {', '.join(MTFL_SPLITS)}")
        super().__init__(path, verify_images=verify_images)
        if self.path.is_file():  # one list given directly
            self.root, self.lists = self.path.parent, [self.path]
            return
        self.root = self.path
        names = ["training", "testing"] if split == "all" else [split]
        self.lists = [self.path / f"{n}.txt" for n in names if (self.path / f"{n}.txt").is_file()]
        if not self.lists:
            wanted = " or ".join(f"{n}.txt" for n in names)
            raise DatasetError(f"mtfl: no {wanted} in {self.path}")

    def _records(self) -> Iterator[ImageRecord]:
        for listing in self.lists:
            try:
                text = listing.read_bytes().decode("utf-8-sig", errors="replace")
            except OSError as exc:
                raise DatasetError(f"mtfl: cannot read {listing} ({exc.strerror or exc})") from None
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    rel, points, gender, smile, glasses, pose = _parse_line(line)
                except _LineError as exc:
                    self.report(listing, str(exc), line=number)
                    continue
                rel = rel.replace("\\", "/")
                image = self.dataset_path(self.root, rel, listing, line=number)
                if image is None:
                    continue
                if not self.image_present(image, rel, self.root, listing, line=number):
                    continue
                if self.check_image(image) is None:
                    continue
                face = FaceRecord(box=five_point_box(points), landmarks=points, point_set="five", gender=gender,
                                  pose_class=pose, attributes={"smile": smile, "glasses": glasses},
                                  annotation=listing, lines=(number,) * len(points))
                yield ImageRecord(image=image, faces=(face,), source=self.source, group=rel)
