"""Whole photos with one iBUG ``.pts`` file per face, for detection scoring (``pts-photos:FOLDER``).

300-W's original photos (AFW, IBUG) annotate each face of a photo ``NAME.jpg`` in its own file,
``NAME_1.pts``, ``NAME_2.pts``, ...; a photo with one face may also have ``NAME.pts``. This reader
groups the files of a photo into one record with every face annotated (``all_faces_annotated``), so
detection can be scored; each face's box is the tight box of its points (evaluation.md). A ``.pts``
file with no photo (neither ``NAME.*`` nor, for ``NAME_K.pts``, ``NAME.*``) is reported and skipped;
a photo with a bad ``.pts`` file is skipped whole (one of its faces would be missing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from hyperface.data.readers._files import ImageIndex
from hyperface.data.readers.base import DatasetReader
from hyperface.data.readers.pts import PTS_ORIGIN, AnnotationError, point_set_for, read_pts_pixels
from hyperface.data.records import FaceRecord, ImageRecord, box_from_points

__all__ = ["PtsPhotosReader"]

_NUMBERED = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)$")


class PtsPhotosReader(DatasetReader):
    """A folder (searched recursively) of photos and their per-face ``.pts`` files."""

    format = "pts-photos"
    pixel_origin = PTS_ORIGIN
    description = "whole photos with one .pts per face (NAME.jpg + NAME_1.pts, NAME_2.pts ...): detection"
    folder_only = True

    def _photo_of(self, images: ImageIndex, ann: Path) -> Path | None:
        image = images.find(ann)
        if image is not None:
            return image
        m = _NUMBERED.match(ann.stem)
        if m:
            return images.find(ann.with_name(m.group("stem") + ann.suffix))
        return None

    def _records(self) -> Iterator[ImageRecord]:
        images = ImageIndex()
        photos: dict[Path, list[Path]] = {}
        for ann in self.list_files(self.path, (".pts",)):
            image = self._photo_of(images, ann)
            if image is None:
                self.report(ann, f"no photo for it (looked for {ann.stem}.* and NAME.* for NAME_K.pts)")
                continue
            photos.setdefault(image, []).append(ann)
        for image, files in sorted(photos.items()):
            faces = []
            for ann in files:
                try:
                    points, lines = read_pts_pixels(ann)
                    faces.append(FaceRecord(box=box_from_points(points), landmarks=points,
                                            point_set=point_set_for(len(points)), annotation=ann, lines=lines))
                except AnnotationError as exc:
                    self.report(ann, f"{exc.message}; photo {image.name} skipped", line=exc.line)
                    break
                except ValueError as exc:
                    self.report(ann, f"{exc}; photo {image.name} skipped")
                    break
            else:
                if self.check_image(image) is None:
                    continue
                yield ImageRecord(image=image, faces=tuple(faces), source=self.source,
                                  group=image.relative_to(self.path).as_posix(), all_faces_annotated=True)
