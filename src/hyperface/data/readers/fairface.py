"""FairFace: 224 x 224 face crops with apparent gender, age bin and race in a CSV per split.

Layout as distributed: ``fairface_label_train.csv`` / ``fairface_label_val.csv`` beside the
``train/`` and ``val/`` folders, one row per image: ``file,age,gender,race,service_test`` with
``file`` relative to the folder (``train/1.jpg``), ``gender`` ``Male`` or ``Female``, ``age`` a bin
(``0-2``, ``3-9``, ..., ``more than 70``). Gender maps to our order (0 male, 1 female); age bin and race
go to ``attributes`` (``age_bin``, ``race``, and ``age``: the bin's middle in years, for age-band
reports). The crops (dlib face chips with padding 0.25) have no annotated box: the box is the whole
image (evaluation.md). A row with a missing image, an unknown gender, an age outside the bins, too few
fields, a stray quote or an image path that leaves the folder is reported with its line and skipped; an
image listed twice is read once, and not at all when its rows disagree.
"""

from __future__ import annotations

import csv
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
_Row = tuple[int, str, Path, tuple[str, int, str]]  # line, image path as written, image, (age bin, gender, race)


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

    def _rows(self, listing: Path) -> list[_Row]:
        """(line, image path as written, image, (age bin, gender, race)) of each well-formed row of one CSV;
        bad rows reported.

        Rows are parsed one line at a time (FairFace has no multi-line fields), so a stray quote costs
        its own row, not every row after it.
        """
        try:
            text = listing.read_bytes().decode("utf-8-sig", errors="replace")  # a byte-order mark is not text
        except OSError as exc:
            raise DatasetError(f"fairface: cannot read {listing} ({exc.strerror or exc})") from None
        lines = text.splitlines()
        header = next(csv.reader(lines[:1]), None)
        if header is None or [h.strip().lower() for h in header[:4]] != list(_COLUMNS):
            raise DatasetError(f"fairface: {listing}: expected the header {','.join(_COLUMNS)},..., got {header}")
        rows = []
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                row = next(csv.reader([line], strict=True))
            except csv.Error as exc:
                self.report(listing, f"malformed CSV row ({exc}): {line[:60]!r}", line=number)
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
            if age_bin not in FAIRFACE_AGE_BINS:
                self.report(listing, f"age {age_bin!r} is not a FairFace age bin ({', '.join(FAIRFACE_AGE_BINS)})",
                            line=number)
                continue
            image = self.dataset_path(self.path, rel, listing, line=number)
            if image is not None:
                rows.append((number, rel, image, (age_bin, gender, race)))
        return self._unique(listing, rows)

    def _unique(self, listing: Path, rows: list[_Row]) -> list[_Row]:
        """One row per image: a repeat with the same labels is dropped, an image listed with conflicting
        labels is left out altogether (which row is right cannot be told); each is reported by line."""
        lines_of: dict[Path, list[int]] = {}
        labels_of: dict[Path, set] = {}
        for number, _, image, labels in rows:
            lines_of.setdefault(image, []).append(number)
            labels_of.setdefault(image, set()).add(labels)
        kept = []
        for row in rows:
            number, rel, image, _ = row
            first = lines_of[image][0]
            if len(labels_of[image]) > 1:
                self.report(listing, f"image {rel} is listed with conflicting labels on lines "
                                     f"{', '.join(map(str, lines_of[image]))}; skipped", line=number)
            elif number != first:
                self.report(listing, f"image {rel} is listed again (first on line {first}); this row skipped",
                            line=number)
            else:
                kept.append(row)
        return kept

    def _records(self) -> Iterator[ImageRecord]:
        for listing in self.lists:
            for number, rel, image, (age_bin, gender, race) in self._rows(listing):
                if not self.image_present(image, rel, self.path, listing, line=number):
                    continue
                size = self.check_image(image)
                if size is None:
                    continue
                attributes = {"age_bin": age_bin, "race": race, "age": FAIRFACE_AGE_BINS[age_bin]}
                face = FaceRecord(box=whole_image_box(size), gender=gender, attributes=attributes)
                yield ImageRecord(image=image, faces=(face,), source=self.source, group=rel)
