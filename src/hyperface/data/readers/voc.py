"""PASCAL VOC style detection annotations: ``Annotations/*.xml`` with ``object/bndbox`` per face.

For detection on whole photos (``hyperface evaluate --data voc:PATH``; ``prepare`` takes its faces
as box-only positives). ``PATH`` is a VOC root (holding ``Annotations/`` and ``JPEGImages/``, or
``annotations/`` and ``images/``), an ``Annotations/`` folder, or one ``.xml`` file. Which
``<object>`` is a face: the names given in ``classes`` (comma-separated, e.g.
``voc:masks?classes=with_mask,without_mask,mask_weared_incorrect``); without it, when any object of
the folder is named ``face`` only those (face sets in VOC format sometimes annotate other things
too), else every object. ``min_face``: a face box shorter than this many pixels is kept but marked
``ignore`` (``attributes["ignore"]``), so ``prepare`` takes it neither as a face nor as background
(crowd photos box faces too small to learn from; calling them non-faces would teach the detector to
reject faces). The image is ``<filename>`` looked up in ``JPEGImages/``, ``images/``, beside the
XML, or in the root, or else the one image there named like the XML file; a name that leaves the
dataset (absolute, or with ``..``) is reported with the XML file and the line of its ``<filename>``,
and skipped. VOC coordinates are 1-based pixel indices with an inclusive ``xmax``; they are kept as
distributed, as ``evaluation.md`` says for every ground truth. Every face of a photo is annotated,
so ``all_faces_annotated`` is True.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.files import special_kind
from hyperface.data.images import IMAGE_SUFFIXES
from hyperface.data.readers._files import walk_files
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["VocReader"]

_ANNOTATION_FOLDERS = ("Annotations", "annotations")  # PASCAL's name; Kaggle's sets use lower case
_IMAGE_FOLDERS = ("JPEGImages", "images")


class VocReader(DatasetReader):
    """Face boxes from VOC XML files; one record per photo."""

    format = "voc"
    description = "PASCAL VOC XML (Annotations/*.xml, object/bndbox): face boxes on whole photos"

    def __init__(self, path: str | Path, *, verify_images: bool = False, classes: str = "",
                 min_face: float = 0.0) -> None:
        super().__init__(path, verify_images=verify_images)
        self.classes = frozenset(c.strip().lower() for c in str(classes).split(",") if c.strip())
        if not math.isfinite(float(min_face)) or float(min_face) < 0:
            raise ValueError(f"voc: min_face={min_face!r} must be a number of pixels >= 0")
        self.min_face = float(min_face)
        self.folder: Path | None = None  # the folder of XML files (None: one file given)
        if self.path.is_file():
            self.root = self.path.parent
        else:
            ann = next((self.path / n for n in _ANNOTATION_FOLDERS if (self.path / n).is_dir()), None)
            self.folder = ann if ann is not None else self.path
            self.root = self.path if ann is not None else self.path.parent
            if not walk_files(self.folder, (".xml",), recursive=False):
                raise DatasetError(f"voc: no .xml annotation in {self.path} (expected Annotations/*.xml)")

    def _image_path(self, xml: Path, filename: str) -> Path | None:
        """The image ``<filename>`` names, in the usual folders; else the one image there named like the XML
        file (sets renamed after annotation keep a stale ``<filename>``, e.g. web face-mask photos)."""
        folders = (*(self.root / n for n in _IMAGE_FOLDERS), xml.parent, self.root)
        for folder in folders:
            candidate = folder / filename
            if special_kind(candidate) is None:
                return candidate
        for folder in folders:
            same = [p for p in (folder / (xml.stem + s) for s in sorted(IMAGE_SUFFIXES)) if special_kind(p) is None]
            if len(same) == 1:
                return same[0]
        return None

    def _parse(self, xml: Path) -> tuple[str, int | None, list[tuple[str, np.ndarray]]]:
        """(image file name, the line of its ``<filename>``, [(object name, box)]) of one XML file."""
        data = xml.read_bytes()
        root = ET.fromstring(data)
        filename = (root.findtext("filename") or "").strip()
        if not filename:
            raise ValueError("no <filename>")
        at = data.find(b"<filename")
        line = data.count(b"\n", 0, at) + 1 if at >= 0 else None
        objects = []
        for i, obj in enumerate(root.iter("object")):
            name = (obj.findtext("name") or "").strip().lower()
            bb = obj.find("bndbox")
            if bb is None:
                raise ValueError(f"object {i} has no <bndbox>")
            try:
                box = np.array([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
            except (TypeError, ValueError):
                raise ValueError(f"object {i}: xmin/ymin/xmax/ymax must all be numbers") from None
            if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"object {i}: empty or invalid box {box.tolist()}")
            objects.append((name, box))
        return filename, line, objects

    def _records(self) -> Iterator[ImageRecord]:
        files = [self.path] if self.folder is None else self.list_files(self.folder, (".xml",), recursive=False)
        parsed = []
        for xml in files:
            try:
                parsed.append((xml, *self._parse(xml)))
            except ET.ParseError as exc:
                self.report(xml, f"malformed XML ({exc})", line=exc.position[0])
            except ValueError as exc:
                self.report(xml, str(exc))
            except OSError as exc:
                self.report(xml, f"cannot read file ({exc.strerror or exc})")
        names = {name for _, _, _, objs in parsed for name, _ in objs}
        if self.classes and not self.classes & names:
            raise DatasetError(f"voc: no object of class {', '.join(sorted(self.classes))} in {self.path} "
                               f"(its classes: {', '.join(sorted(names)) or 'none'})")
        wanted = self.classes or ({"face"} if "face" in names else None)
        for xml, filename, line, objects in parsed:
            if self.dataset_path(self.root, filename, xml, line=line) is None:
                continue
            image = self._image_path(xml, filename)
            if image is None:
                self.report(xml, f"image {filename} not found (looked in JPEGImages/, images/, beside the XML, "
                                 f"the root)", line=line)
                continue
            if self.check_image(image) is None:
                continue
            faces = tuple(FaceRecord(box=box, attributes={"ignore": True} if box[3] - box[1] < self.min_face else {})
                          for name, box in objects if wanted is None or name in wanted)
            yield ImageRecord(image=image, faces=faces, source=self.source, group=xml.stem,
                              all_faces_annotated=True)
