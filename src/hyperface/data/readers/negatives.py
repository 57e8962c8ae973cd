"""Folders of images that contain no face: sources of non-face samples (e.g. CIFAR-10, landscapes)."""

from __future__ import annotations

from collections.abc import Iterator

from hyperface.data.images import IMAGE_SUFFIXES
from hyperface.data.readers.base import DatasetReader
from hyperface.data.records import ImageRecord

__all__ = ["NegativesReader"]


class NegativesReader(DatasetReader):
    """A folder (searched recursively) of face-free images: each is a record with no face whose every
    region may be taken as non-face (``all_faces_annotated=True``)."""

    format = "negatives"
    description = "images with no face (recursive folder): non-face samples only"
    folder_only = True

    def _records(self) -> Iterator[ImageRecord]:
        for image in self.list_files(self.path, IMAGE_SUFFIXES):
            if self.check_image(image) is None:
                continue
            yield ImageRecord(image=image, faces=(), source=self.source,
                              group=image.relative_to(self.path).as_posix(), all_faces_annotated=True)
