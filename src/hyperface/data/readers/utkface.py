"""UTKFace: aligned face crops whose file names carry the labels, ``AGE_GENDER_RACE_DATE.jpg.chip.jpg``.

Gender 0 male, 1 female (our :data:`~hyperface.data.records.GENDERS` order); race 0..4 (White,
Black, Asian, Indian, Others) and age go to ``attributes``. The crop has no annotated box: the box
is the whole image (evaluation.md). A name with a field missing, a non-numeric field or a gender
other than 0/1 is reported and skipped. The uncropped release (``AGE_GENDER_RACE_DATE.jpg``) is read
the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

from hyperface.data.boxes import whole_image_box
from hyperface.data.images import IMAGE_SUFFIXES
from hyperface.data.readers.base import DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["UtkFaceReader", "parse_utkface_name", "UTKFACE_RACES"]

UTKFACE_RACES = ("white", "black", "asian", "indian", "others")
_MAX_AGE = 130


def parse_utkface_name(name: str) -> tuple[int, int, int]:
    """(age, gender, race) from a UTKFace file name; ValueError saying what is malformed."""
    stem = name
    for suffix in (".chip.jpg", ".jpg"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    fields = stem.split("_")
    if len(fields) != 4:
        raise ValueError(f"malformed UTKFace name: expected AGE_GENDER_RACE_DATE, found {len(fields)} "
                         f"field(s) ({'_'.join(fields)!r})")
    labels = ("age", "gender", "race", "date")
    for label, value in zip(labels, fields):
        if not (value.isascii() and value.isdigit()):
            raise ValueError(f"malformed UTKFace name: {label} field {value!r} is not a whole number")
    age, gender, race = int(fields[0]), int(fields[1]), int(fields[2])
    if gender not in (0, 1):
        raise ValueError(f"malformed UTKFace name: gender {gender} is not 0 (male) or 1 (female)")
    if race >= len(UTKFACE_RACES):
        raise ValueError(f"malformed UTKFace name: race {race} is not in 0..{len(UTKFACE_RACES) - 1}")
    if age > _MAX_AGE:
        raise ValueError(f"malformed UTKFace name: age {age} is not plausible")
    return age, gender, race


class UtkFaceReader(DatasetReader):
    """A folder (searched recursively) of UTKFace images named ``AGE_GENDER_RACE_DATE.jpg.chip.jpg``."""

    format = "utkface"
    description = "UTKFace crops, labels in the name AGE_GENDER_RACE_DATE.jpg.chip.jpg: gender, age, race"
    folder_only = True

    def _records(self) -> Iterator[ImageRecord]:
        for image in self.list_files(self.path, IMAGE_SUFFIXES):
            try:
                age, gender, race = parse_utkface_name(image.name)
            except ValueError as exc:
                self.report(image, str(exc))
                continue
            size = self.check_image(image)
            if size is None:
                continue
            face = FaceRecord(box=whole_image_box(size), gender=gender, attributes={"age": age, "race": race})
            yield ImageRecord(image=image, faces=(face,), source=self.source,
                              group=image.relative_to(self.path).as_posix())
