"""WIDER FACE: ``wider_face_*_bbx_gt.txt`` beside ``images/<event>/<name>.jpg``, every face of a photo boxed.

The annotation file, as WIDER distributes it, is blocks of lines: the image's path relative to
``images/``, the number of faces ``n``, then ``n`` lines ``x y w h blur expression illumination invalid
occlusion pose`` (a photo with no face has one line of zeros). Boxes are (x, y, x + w, y + h) in
pixels, as distributed. The attributes are kept in ``FaceRecord.attributes`` (``blur`` 0 clear / 1
normal / 2 heavy, ``expression`` 0 typical / 1 exaggerated, ``illumination`` 0 normal / 1 extreme,
``occlusion`` 0 none / 1 partial / 2 heavy, ``pose`` 0 typical / 1 atypical, ``invalid``), so results
can be reported by them. A face WIDER marks invalid, and with ``min_face=PX`` a face shorter than PX
pixels, is kept as an ignore region (``attributes["ignore"]``): neither a face to find nor background,
as for the ``voc`` reader. A box of zero width or height cannot be a face or a region and is left out.

``PATH``: the folder holding the annotation file(s) and ``images/``, or one annotation file (its
``images/`` beside it). ``file=NAME`` picks one annotation file of a folder holding several. A block
that cannot be read (a count or a number that is not one, a block cut short) is reported with its
file and line and the reader goes on at the next image path; every face of a photo is annotated, so
``all_faces_annotated`` is True.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.images import IMAGE_SUFFIXES
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["WiderReader", "ATTRIBUTES", "parse_wider"]

#: The per-face fields after the box, in WIDER's order.
ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
_PATTERN = "wider_face_*_bbx_gt.txt"


class WiderFormatError(ValueError):
    """A block of the annotation file that cannot be read; ``line`` is its 1-based line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _is_path(text: str) -> bool:
    return Path(text).suffix.lower() in IMAGE_SUFFIXES


def _block(lines: list[str], i: int) -> tuple[str, list[tuple[int, list[float]]], int]:
    """The block starting at line index ``i``: (image path, [(line number, 10 numbers)], next index)."""
    name = lines[i].strip()
    if not _is_path(name):
        raise WiderFormatError(f"expected an image path, got {name[:80]!r}", i + 1)
    if i + 1 >= len(lines):
        raise WiderFormatError("the file ends before the face count", i + 2)
    try:
        n = int(lines[i + 1].strip())
    except ValueError:
        raise WiderFormatError(f"expected the number of faces, got {lines[i + 1].strip()[:80]!r}", i + 2) from None
    if n < 0:
        raise WiderFormatError(f"a negative number of faces ({n})", i + 2)
    faces = []
    for j in range(i + 2, i + 2 + max(n, 1)):
        if j >= len(lines) or _is_path(lines[j].strip()):
            raise WiderFormatError(f"{n} face(s) announced, the block ends after {j - i - 2}", j + 1)
        try:
            values = [float(v) for v in lines[j].split()]
        except ValueError:
            raise WiderFormatError(f"a face line of non-numbers: {lines[j].strip()[:80]!r}", j + 1) from None
        if len(values) < 4 or not all(math.isfinite(v) for v in values):
            raise WiderFormatError(f"a face line needs x y w h and the attributes, got {lines[j].strip()[:80]!r}",
                                   j + 1)
        if n:
            faces.append((j + 1, values))
    return name, faces, i + 2 + max(n, 1)


def parse_wider(text: str) -> Iterator[tuple[str, list[tuple[int, list[float]]]] | WiderFormatError]:
    """The blocks of an annotation file: (image path, [(line, numbers)]), or the error of a block that
    cannot be read (the parser then goes on at the next line that names an image)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            name, faces, i = _block(lines, i)
        except WiderFormatError as exc:
            yield exc
            i += 1
            while i < len(lines) and not _is_path(lines[i].strip()):
                i += 1
            continue
        yield name, faces


def face_record(values: list[float], min_face: float, annotation: Path, line: int) -> FaceRecord | None:
    """One face line as a record (None for a zero-size box); invalid or small faces marked ignore."""
    x, y, w, h = values[:4]
    if w <= 0 or h <= 0:
        return None
    attributes = {name: int(v) for name, v in zip(ATTRIBUTES, values[4:])}
    if attributes.get("invalid") or h < min_face:
        attributes["ignore"] = True
    return FaceRecord(box=np.array([x, y, x + w, y + h]), attributes=attributes, annotation=annotation,
                      lines=(line,))


class WiderReader(DatasetReader):
    """WIDER FACE's own annotation format; one record per photo (see the module docstring)."""

    format = "wider"
    description = "WIDER FACE (wider_face_*_bbx_gt.txt + images/): face boxes on whole photos, with attributes"

    def __init__(self, path: str | Path, *, verify_images: bool = False, min_face: float = 0.0,
                 file: str = "") -> None:
        super().__init__(path, verify_images=verify_images)
        if not math.isfinite(float(min_face)) or float(min_face) < 0:
            raise ValueError(f"wider: min_face={min_face!r} must be a number of pixels >= 0")
        self.min_face = float(min_face)
        if self.path.is_file():
            self.annotations = [self.path]
        else:
            found = sorted(self.path.glob(file or _PATTERN))
            if not found:
                raise DatasetError(f"wider: no {file or _PATTERN} in {self.path}")
            self.annotations = found
        self.root = self.annotations[0].parent / "images"
        if not self.root.is_dir():
            raise DatasetError(f"wider: no images/ folder beside {self.annotations[0]}")

    def _records(self) -> Iterator[ImageRecord]:
        for annotation in self.annotations:
            try:
                text = annotation.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                self.report(annotation, f"cannot read the annotation file ({exc})")
                continue
            for block in parse_wider(text):
                if isinstance(block, WiderFormatError):
                    self.report(annotation, f"{block}; that image skipped", line=block.line)
                    continue
                name, faces = block
                image = self.dataset_path(self.root, name, annotation)
                if image is None or not self.image_present(image, name, self.root, annotation):
                    continue
                if self.check_image(image) is None:
                    continue
                records = (face_record(values, self.min_face, annotation, line) for line, values in faces)
                yield ImageRecord(image=image, faces=tuple(r for r in records if r is not None), source=self.source,
                                  group=Path(name).stem, all_faces_annotated=True)
