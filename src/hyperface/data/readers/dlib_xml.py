"""dlib imglab XML: whole photos with every face boxed, optionally with 68 ``part`` landmarks.

::

    <dataset><images>
      <image file='photo.jpg'>
        <box top='90' left='194' width='37' height='37' [ignore='1']>
          <part name='00' x='201' y='107'/> ... <part name='67' .../>
        </box>
      </image>
    </images></dataset>

Image paths are relative to the XML file's folder. A box becomes (left, top, left + width,
top + height). Every face of an image is boxed, so ``all_faces_annotated`` is True. A box marked
``ignore='1'`` (dlib: a face too hard to learn from, neither positive nor negative) is kept as a
:class:`FaceRecord` with ``attributes["ignore"] = True``, so that no non-face sample is drawn over it;
users that train detection should exclude it from positives. A box whose part list is not the 68
iBUG parts is reported and kept without landmarks.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["DlibXmlReader"]

_NUM_PARTS = 68
_TRUE = ("1", "true", "yes")


class _BoxError(ValueError):
    pass


def _number(element: ET.Element, name: str) -> float:
    value = element.get(name)
    if value is None:
        raise _BoxError(f"no {name} attribute")
    try:
        out = float(value)
    except ValueError:
        raise _BoxError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(out):
        raise _BoxError(f"{name}={value!r} is not finite")
    return out


def _parts(box: ET.Element) -> np.ndarray:
    parts = box.findall("part")
    points = np.full((_NUM_PARTS, 2), np.nan)
    seen = set()
    for part in parts:
        name = part.get("name", "")
        if not (name.isascii() and name.isdigit()) or int(name) >= _NUM_PARTS:
            raise _BoxError(f"part name {name!r} is not 00..{_NUM_PARTS - 1}")
        index = int(name)
        if index in seen:
            raise _BoxError(f"part {name} appears twice")
        seen.add(index)
        points[index] = (_number(part, "x"), _number(part, "y"))
    if len(seen) != _NUM_PARTS:
        raise _BoxError(f"has {len(parts)} parts, expected {_NUM_PARTS} (iBUG 68)")
    return points


class DlibXmlReader(DatasetReader):
    """One dlib imglab XML file (e.g. ``training_with_face_landmarks.xml``)."""

    format = "dlib"
    description = "dlib imglab XML: every face boxed, optionally with 68 part landmarks"

    def __init__(self, path: str | Path, *, verify_images: bool = False) -> None:
        super().__init__(path, verify_images=verify_images)
        if self.path.is_dir():
            found = sorted(p.name for p in self.path.glob("*.xml"))
            hint = f"; XML files there: {', '.join(found)}" if found else ""
            raise DatasetError(f"dlib: {self.path} is a folder: give one XML file, "
                               f"e.g. dlib:{self.path}/NAME.xml{hint}")
        try:
            self._tree = ET.parse(self.path)
        except ET.ParseError as exc:
            raise DatasetError(f"dlib: {self.path}:{exc.position[0]}: malformed XML ({exc})") from None
        except OSError as exc:
            raise DatasetError(f"dlib: cannot read {self.path} ({exc.strerror or exc})") from None
        if self._tree.getroot().tag != "dataset":
            raise DatasetError(f"dlib: {self.path}: root element is <{self._tree.getroot().tag}>, expected <dataset>")

    def _face(self, box: ET.Element) -> FaceRecord:
        left, top = _number(box, "left"), _number(box, "top")
        width, height = _number(box, "width"), _number(box, "height")
        if width <= 0 or height <= 0:
            raise _BoxError(f"width {width:g} and height {height:g} must be positive")
        attributes: dict = {}
        if box.get("ignore", "0").strip().lower() in _TRUE:
            attributes["ignore"] = True
        label = box.findtext("label")
        if label:
            attributes["label"] = label.strip()
        return FaceRecord(box=np.array([left, top, left + width, top + height]), attributes=attributes)

    def _records(self) -> Iterator[ImageRecord]:
        base = self.path.parent
        for number, element in enumerate(self._tree.getroot().iter("image")):
            file = element.get("file")
            if not file:
                self.report(self.path, f"image element {number} has no file attribute")
                continue
            faces = []
            complete = True
            for i, box in enumerate(element.findall("box")):
                try:
                    face = self._face(box)
                except _BoxError as exc:
                    self.report(self.path, f"image {file}: box {i}: {exc}; box skipped")
                    complete = False
                    continue
                if box.find("part") is not None:
                    try:
                        landmarks = _parts(box)
                    except _BoxError as exc:
                        self.report(self.path, f"image {file}: box {i}: {exc}; landmarks left out")
                    else:
                        face = FaceRecord(box=face.box, landmarks=landmarks, point_set="ibug68",
                                          attributes=face.attributes)
                faces.append(face)
            image = Path(file) if Path(file).is_absolute() else base / file
            if self.check_image(image) is None:
                continue
            group = image.relative_to(base).as_posix() if image.is_relative_to(base) else image.as_posix()
            # A skipped box leaves a face unannotated: the image can no longer give non-face samples.
            yield ImageRecord(image=image, faces=tuple(faces), source=self.source, group=group,
                              all_faces_annotated=complete)
