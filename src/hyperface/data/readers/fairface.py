"""FairFace: 224 x 224 face crops with apparent gender, age bin and race in a CSV per split.

Layout as distributed: ``fairface_label_train.csv`` / ``fairface_label_val.csv`` beside the
``train/`` and ``val/`` folders, one row per image: ``file,age,gender,race,service_test`` with
``file`` relative to the folder (``train/1.jpg``), ``gender`` ``Male`` or ``Female``, ``age`` a bin
(``0-2``, ``3-9``, ..., ``more than 70``). Gender maps to our order (0 male, 1 female); age bin and race
go to ``attributes`` (``age_bin``, ``race``, and ``age``: the bin's middle in years, for age-band
reports). The crops (dlib face chips with padding 0.25) have no annotated box: the box is the whole
image (evaluation.md). A row with a missing image, an unknown gender or too few fields is reported
with its line and skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from hyperface.data.boxes import whole_image_box
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["FairFaceReader", "FAIRFACE_SPLITS", "FAIRFACE_AGE_BINS"]

FAIRFACE_SPLITS = ("train", "val", "all")
#: age bin -> its middle in years
FAIRFACE_AGE_BINS = {"0-2": 1, "3-9": 6, "10-19": 15, "20-29": 25, "30-39": 35, "40-49": 45, "50-59": 55,
                     "60-69": 65, "more than 70": 75}
_GENDERS = {"male": 0, "female": 1}
_COLUMNS = ("file", "age", "gender", "race")


class FairFaceReader(DatasetReader):
    """The FairFace folder with ``fairface_label_SPLIT.csv``; ``split`` picks which (``all``: both)."""

    format = "fairface"
    description = "FairFace crops, fairface_label_{train,val}.csv: gender, age bin, race"
    folder_only = True

    def __init__(self, path: str | Path, *, verify_images: bool = False, split: str = "all") -> None:
        if split not in FAIRFACE_SPLITS:
            raise ValueError(f"fairface: split={split!r}; choose from {', '.join(FAIRFACE_SPLITS)}")
        super().__init__(path, verify_images=verify_images)
        self.split = split
        names = ["train", "val"] if split == "all" else [split]
        self.lists = [self.path / f"fairface_label_{n}.csv" for n in names
                      if (self.path / f"fairface_label_{n}.csv").is_file()]
        if not self.lists:
            wanted = " or ".join(f"fairface_label_{n}.csv" for n in names)
            raise DatasetError(f"fairface: no {wanted} in {self.path}")

    @property
    def source(self) -> str:
        return f"{self.format}:{self.path}" + ("" if self.split == "all" else f"?split={self.split}")

    def _records(self) -> Iterator[ImageRecord]:
        for listing in self.lists:
            try:
                text = listing.read_bytes().decode("utf-8", errors="replace")
            except OSError as exc:
                raise DatasetError(f"fairface: cannot read {listing} ({exc.strerror or exc})") from None
            rows = csv.reader(io.StringIO(text))
            header = next(rows, None)
            if header is None or [h.strip().lower() for h in header[:4]] != list(_COLUMNS):
                raise DatasetError(f"fairface: {listing}: expected the header {','.join(_COLUMNS)},..., got {header}")
            for number, row in enumerate(rows, start=2):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 4:
                    self.report(listing, f"expected at least 4 fields ({','.join(_COLUMNS)}), found {len(row)}",
                                line=number)
                    continue
                rel, age_bin, gender_text, race = (x.strip() for x in row[:4])
                gender = _GENDERS.get(gender_text.lower())
                if gender is None:
                    self.report(listing, f"gender {gender_text!r} is not Male or Female", line=number)
                    continue
                image = self.path / rel
                if not image.is_file():
                    self.report(listing, f"image {rel} not found in {self.path}", line=number)
                    continue
                size = self.check_image(image)
                if size is None:
                    continue
                attributes = {"age_bin": age_bin, "race": race}
                if age_bin in FAIRFACE_AGE_BINS:
                    attributes["age"] = FAIRFACE_AGE_BINS[age_bin]
                face = FaceRecord(box=whole_image_box(size), gender=gender, attributes=attributes)
                yield ImageRecord(image=image, faces=(face,), source=self.source, group=rel)
