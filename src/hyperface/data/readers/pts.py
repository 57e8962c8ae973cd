"""iBUG ``.pts`` landmark files next to their images (300-W, LFPW, HELEN, AFW, IBUG).

A ``.pts`` file holds one face's points, one ``x y`` pair a line, either after a header::

    version: 1
    n_points: 68
    {
    x y
    ...
    }

or with no header at all (as some HELEN copies are distributed). The number of points picks the
point set (68 -> ``ibug68``, 21 -> ``aflw21``, 5 -> ``five``).

iBUG ``.pts`` coordinates are 1-based (Matlab's: the first pixel's centre is (1, 1)); records hold the
project's 0-based pixel coordinates (pixel centres at whole numbers, as OpenCV's and every warp here),
so the readers subtract :data:`PTS_ORIGIN` and :func:`write_pts` adds it back, as menpo does. Kept as
written, the offset cannot be learned: a mirrored training crop turns +1 pixel into -1 in x, so
networks trained with flips read x one pixel left of such labels (measured: docs/training.md,
"Pixel coordinates").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from hyperface.data.readers._files import ImageIndex
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord, box_from_points
from hyperface.fileio import atomic_open

__all__ = ["AnnotationError", "POINT_SET_BY_COUNT", "PTS_ORIGIN", "point_set_for", "parse_pts", "read_pts",
           "read_pts_pixels", "write_pts", "numbered_stem", "PtsReader"]

POINT_SET_BY_COUNT: dict[int, str] = {68: "ibug68", 21: "aflw21", 5: "five"}

#: The coordinate of the first pixel's centre in ``.pts`` files (1-based); records are 0-based.
PTS_ORIGIN = 1.0


class AnnotationError(ValueError):
    """A bad annotation file; ``line`` (1-based) says where, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def point_set_for(count: int) -> str:
    """Point set name for a number of points; AnnotationError for a count no set has."""
    try:
        return POINT_SET_BY_COUNT[count]
    except KeyError:
        known = ", ".join(f"{n} ({name})" for n, name in POINT_SET_BY_COUNT.items())
        raise AnnotationError(f"{count} points: not a known point set; expected {known}") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse_point(text: str, line: int) -> tuple[float, float]:
    parts = text.split()
    if len(parts) != 2:
        raise AnnotationError(f"expected 'x y', got {text[:60]!r}", line)
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise AnnotationError(f"not a number in {text[:60]!r}", line) from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise AnnotationError(f"non-finite coordinate in {text[:60]!r}", line)
    return x, y


def parse_pts(path: str | Path) -> np.ndarray:
    """Points (N, 2) of an iBUG ``.pts`` file, with or without header, as written in the file (1-based:
    readers subtract :data:`PTS_ORIGIN`).

    Raises :class:`AnnotationError` (with the line) for a bad header, a point count that differs
    from the header, a missing closing brace, or a coordinate that is not a finite number.
    """
    return read_pts(path)[0]


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """0-based ``points`` (N, 2) as an iBUG ``.pts`` file with header (300-W's format, 1-based: plus
    :data:`PTS_ORIGIN`), written atomically; the readers give the same points back."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) + PTS_ORIGIN
    body = f"version: 1\nn_points: {len(pts)}\n{{\n" + "".join(f"{x:.3f} {y:.3f}\n" for x, y in pts) + "}\n"
    with atomic_open(path) as fh:
        fh.write(body)


def numbered_stem(index: int, image: str | Path) -> str:
    """``NNNNNN_<name>``: the file stem of a face derived from image number ``index`` in a written pts folder
    (turned copies, pseudo-labels), its image's name cut at the first dot (UTKFace's names hold dots)."""
    return f"{index:06d}_{Path(str(image)).name.split('.')[0]}"


def _points(rows: list[tuple[int, str]]) -> tuple[np.ndarray, tuple[int, ...]]:
    points = [_parse_point(s, n) for n, s in rows]
    return np.array(points, dtype=np.float64).reshape(-1, 2), tuple(n for n, _ in rows)


def read_pts(path: str | Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """:func:`parse_pts` and the 1-based line of each point, so later checks can name the line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark is not text
    except UnicodeDecodeError:
        raise AnnotationError("not a text file") from None
    except OSError as exc:
        raise AnnotationError(f"cannot read file ({exc.strerror or exc})") from None
    content = [(i + 1, s.strip()) for i, s in enumerate(text.splitlines()) if s.strip()]
    if not content:
        raise AnnotationError("empty file", 1)

    if _is_number(content[0][1].split()[0]):  # no header: every line is a point
        return _points(content)

    # Header: "key: value" lines up to "{".
    expected: int | None = None
    pos = 0
    while pos < len(content) and content[pos][1] != "{":
        n, s = content[pos]
        key, sep, value = s.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in ("version", "n_points"):
            raise AnnotationError(f"bad header line {s[:60]!r}: expected 'version: 1', 'n_points: N' and '{{'", n)
        if key == "n_points":
            if not (value.isascii() and value.isdigit()):  # "²" is a digit to isdigit, not to int
                raise AnnotationError(f"bad header: n_points {value!r} is not a whole number", n)
            expected = int(value)
        elif not _is_number(value):
            raise AnnotationError(f"bad header: version {value!r} is not a number", n)
        pos += 1
    if pos == len(content):
        raise AnnotationError("bad header: no '{' before the points", content[-1][0])
    if expected is None:
        raise AnnotationError("bad header: no 'n_points: N' line", content[pos][0])
    open_line = content[pos][0]
    pos += 1
    points: list[tuple[int, str]] = []
    while pos < len(content) and content[pos][1] != "}":
        _parse_point(content[pos][1], content[pos][0])
        points.append(content[pos])
        pos += 1
    if pos == len(content):
        last = content[-1][0] if len(content) > 1 else open_line
        raise AnnotationError(
            f"truncated: file ends before the closing '}}' ({len(points)} of {expected} points)", last)
    close_line = content[pos][0]
    if len(points) != expected:
        raise AnnotationError(f"header says n_points: {expected} but {len(points)} points follow", close_line)
    if pos + 1 < len(content):
        n, s = content[pos + 1]
        raise AnnotationError(f"unexpected text after the closing '}}': {s[:60]!r}", n)
    return _points(points)


def read_pts_pixels(path: str | Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """:func:`read_pts` in the records' 0-based pixels (the file's numbers less :data:`PTS_ORIGIN`), with
    the line of each point: what every reader of ``.pts`` files takes."""
    points, lines = read_pts(path)
    return points - PTS_ORIGIN, lines


class PtsReader(DatasetReader):
    """A folder (searched recursively) of ``.pts`` files, each next to an image with the same stem.

    ``path`` may also be one ``.pts`` file. Each file is one image with one face; the box is the
    tight box of the points; ``group`` is the image path relative to the dataset root.
    """

    format = "pts"
    pixel_origin = PTS_ORIGIN
    description = "iBUG .pts files (68, 21 or 5 points, with or without header) next to images"
    annotation_suffixes: ClassVar[tuple[str, ...]] = (".pts",)

    def __init__(self, path: str | Path, *, verify_images: bool = False) -> None:
        super().__init__(path, verify_images=verify_images)
        if self.path.is_file():
            if self.path.suffix.lower() not in self.annotation_suffixes:
                raise DatasetError(f"{self.format}: {self.path} is not a {' or '.join(self.annotation_suffixes)} "
                                   f"file or a folder")
            self.root = self.path.parent
        else:
            self.root = self.path

    def _annotation_files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return self.list_files(self.root, self.annotation_suffixes)

    def _choose(self, files: list[Path]) -> Path:
        """The annotation file to use when several annotate one image (same folder and stem)."""
        return files[0]

    def _parse(self, path: Path) -> tuple[np.ndarray, np.ndarray | None, dict, tuple[int, ...] | None]:
        """(points, visibility or None, extra attributes, line of each point or None) of one file."""
        points, lines = read_pts_pixels(path)
        return points, None, {}, lines

    def _records(self) -> Iterator[ImageRecord]:
        images = ImageIndex()
        by_stem: dict[tuple[Path, str], list[Path]] = {}
        for f in self._annotation_files():
            by_stem.setdefault((f.parent, f.stem), []).append(f)
        for (_, _), files in sorted(by_stem.items()):
            ann = self._choose(files)
            try:
                points, visibility, attributes, lines = self._parse(ann)
                point_set = point_set_for(len(points))
                box = box_from_points(points, visibility)
            except AnnotationError as exc:
                self.report(ann, exc.message, line=exc.line)
                continue
            except ValueError as exc:  # box_from_points: no usable point
                self.report(ann, str(exc))
                continue
            image = images.find(ann)
            if image is None:
                self.report(ann, f"no image next to it (looked for {ann.stem}.* with an image suffix "
                                 f"in {ann.parent})")
                continue
            if self.check_image(image) is None:
                continue
            face = FaceRecord(box=box, landmarks=points, point_set=point_set, visibility=visibility,
                              attributes=attributes, annotation=ann, lines=lines)
            yield ImageRecord(image=image, faces=(face,), source=self.source,
                              group=image.relative_to(self.root).as_posix())
