"""CelebA: 40 binary attributes (gender from ``Male``), 5 landmarks and, for the in-the-wild images, a box.

Layout (the files may also sit in ``Anno/``, ``Img/`` and ``Eval/`` sub-folders, as distributed)::

    list_attr_celeba.txt               # N, 40 attribute names, then "000001.jpg -1 1 ..."
    list_bbox_celeba.txt               # N, "image_id x_1 y_1 width height", then rows (wild images)
    list_landmarks_celeba.txt          # N, 10 names, then "000001.jpg lefteye_x lefteye_y ..."
    list_landmarks_align_celeba.txt    # the same for the aligned crops
    list_eval_partition.txt            # "000001.jpg 0" (0 train, 1 val, 2 test), for split=
    img_celeba/ or img_align_celeba/

``variant`` picks ``wild`` (``img_celeba`` + ``list_landmarks_celeba.txt`` + bbox) or ``align``
(``img_align_celeba`` + ``list_landmarks_align_celeba.txt``); ``auto`` takes ``wild`` when its image
folder exists. The landmarks are the ``five`` set (CelebA's "lefteye" is the eye on the image left).
``Male`` 1 -> male, -1 -> female; the other attributes go to ``attributes`` as bools. The box is the
listed bbox when there is one, else :func:`hyperface.data.boxes.five_point_box` of the landmarks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.boxes import five_point_box
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["CelebAReader", "CELEBA_VARIANTS", "CELEBA_SPLITS"]

CELEBA_VARIANTS = ("auto", "wild", "align")
CELEBA_SPLITS = ("all", "train", "val", "test")
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}
_IMAGE_DIRS = {"wild": "img_celeba", "align": "img_align_celeba"}
_LANDMARK_FILES = {"wild": "list_landmarks_celeba.txt", "align": "list_landmarks_align_celeba.txt"}


class CelebAReader(DatasetReader):
    """A CelebA folder; ``variant`` = auto | wild | align, ``split`` = all | train | val | test."""

    format = "celeba"
    description = "CelebA lists (attributes, bbox, 5 landmarks) + img_celeba/ or img_align_celeba/"
    folder_only = True

    def __init__(self, path: str | Path, *, verify_images: bool = False, variant: str = "auto",
                 split: str = "all") -> None:
        if variant not in CELEBA_VARIANTS:
            raise ValueError(f"celeba: variant={variant!r}; choose from {', '.join(CELEBA_VARIANTS)}")
        if split not in CELEBA_SPLITS:
            raise ValueError(f"celeba: split={split!r}; choose from {', '.join(CELEBA_SPLITS)}")
        super().__init__(path, verify_images=verify_images)
        self.split = split
        if variant == "auto":
            variant = "wild" if self._find(_IMAGE_DIRS["wild"], "Img", want_dir=True) else "align"
        self.variant = variant
        self.images = self._find(_IMAGE_DIRS[variant], "Img", want_dir=True)
        if self.images is None:
            raise DatasetError(f"celeba: no {_IMAGE_DIRS[variant]}/ folder in {self.path} (or its Img/)")
        self.attr_file = self._find("list_attr_celeba.txt", "Anno")
        self.landmark_file = self._find(_LANDMARK_FILES[variant], "Anno")
        self.bbox_file = self._find("list_bbox_celeba.txt", "Anno") if variant == "wild" else None
        if not (self.attr_file or self.landmark_file or self.bbox_file):
            raise DatasetError(f"celeba: no list_attr_celeba.txt, {_LANDMARK_FILES[variant]} or "
                               f"list_bbox_celeba.txt in {self.path} (or its Anno/)")
        self.partition_file = self._find("list_eval_partition.txt", "Eval")
        if split != "all" and self.partition_file is None:
            raise DatasetError(f"celeba: split={split} needs list_eval_partition.txt in {self.path} (or its Eval/)")

    def _find(self, name: str, subfolder: str, *, want_dir: bool = False) -> Path | None:
        for candidate in (self.path / name, self.path / subfolder / name, self.path / subfolder.lower() / name):
            if candidate.is_dir() if want_dir else candidate.is_file():
                return candidate
        return None

    def _read_list(self, path: Path | None, *, header: bool = True, numbers: int | None = None,
                   columns: int | None = None) -> tuple[list[str], dict[str, tuple[int, list[float]]]]:
        """(column names, {image name: (line, values)}) of a CelebA list; bad rows reported. ``columns``: the
        number of value columns the list must have (a DatasetError otherwise)."""
        if path is None:
            return [], {}
        try:
            lines = path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()
        except OSError as exc:
            raise DatasetError(f"celeba: cannot read {path} ({exc.strerror or exc})") from None
        names: list[str] = []
        start = 0
        if header:
            if len(lines) < 2 or not lines[0].strip().isdigit():
                raise DatasetError(f"celeba: {path}:1: expected the entry count, then a line of column names")
            names = lines[1].split()
            if names and names[0] == "image_id":
                names = names[1:]
            start = 2
            if columns is not None and len(names) != columns:
                raise DatasetError(f"celeba: {path}:2: expected {columns} column names, found {len(names)}")
        width = len(names) if header else numbers
        rows: dict[str, tuple[int, list[float]]] = {}
        for number, line in enumerate(lines[start:], start=start + 1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != width + 1:
                self.report(path, f"expected an image name and {width} values, got {len(tokens) - 1}", line=number)
                continue
            try:
                values = [float(t) for t in tokens[1:]]
            except ValueError:
                self.report(path, f"a value is not a number in {' '.join(tokens[1:])[:60]!r}", line=number)
                continue
            if not all(math.isfinite(v) for v in values):
                self.report(path, "non-finite value", line=number)
                continue
            rows[tokens[0]] = (number, values)
        return names, rows

    def _records(self) -> Iterator[ImageRecord]:
        attr_names, attrs = self._read_list(self.attr_file)
        _, landmarks = self._read_list(self.landmark_file, columns=10)  # 5 points, x and y
        _, boxes = self._read_list(self.bbox_file, columns=4)  # x_1 y_1 width height
        names = sorted(set(attrs) | set(landmarks) | set(boxes))
        if self.split != "all":
            _, partition = self._read_list(self.partition_file, header=False, numbers=1)
            wanted = _SPLIT_INDEX[self.split]
            names = [n for n in names if n in partition and int(partition[n][1][0]) == wanted]
        male = attr_names.index("Male") if "Male" in attr_names else None
        for name in names:
            points = None
            if name in landmarks:
                points = np.asarray(landmarks[name][1], dtype=np.float64).reshape(5, 2)
            if name in boxes:
                line, (x, y, w, h) = boxes[name]
                if w <= 0 or h <= 0:
                    self.report(self.bbox_file, f"{name}: box width and height must be positive", line=line)
                    continue
                box = np.array([x, y, x + w, y + h])
            elif points is not None:
                box = five_point_box(points)
            else:
                where = self.landmark_file or self.attr_file
                self.report(where, f"{name}: no box and no landmarks; skipped", line=attrs.get(name, (None,))[0])
                continue
            gender = None
            attributes: dict = {}
            if name in attrs:
                values = attrs[name][1]
                attributes = {a: v > 0 for a, v in zip(attr_names, values) if a != "Male"}
                if male is not None:
                    gender = 0 if values[male] > 0 else 1
            image = self.images / name
            if self.check_image(image) is None:
                continue
            face = FaceRecord(box=box, landmarks=points, point_set="five" if points is not None else None,
                              gender=gender, attributes=attributes)
            yield ImageRecord(image=image, faces=(face,), source=self.source, group=name)
