"""The reader contract: iterate :class:`ImageRecord` s, report bad input as :class:`Problem` s.

A reader never stops at a bad annotation: it logs one message naming the file (and line or frame),
records it in ``reader.problems``, skips that item and goes on. Every record a reader yields passes
one shared check (:func:`~hyperface.data.records.face_fault`: finite coordinates near the image, a
real spread, a face that overlaps the image) here in the base class, so ``data check`` reports
exactly the images ``prepare`` leaves out.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import ClassVar

from hyperface.data.files import special_kind
from hyperface.data.images import ImageReadError, image_size, load_image
from hyperface.data.readers._files import walk_files
from hyperface.data.records import ImageRecord, face_fault

__all__ = ["Problem", "DatasetReader", "DatasetError"]

logger = logging.getLogger("hyperface.data")


class DatasetError(ValueError):
    """The dataset as a whole cannot be read (missing folder, sqlite without its tables, ...)."""


@dataclass(frozen=True)
class Problem:
    """One skipped item: the file, where in it, and what is wrong."""

    path: Path
    message: str
    line: int | None = None
    frame: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
        if self.frame is not None:
            where += f" (frame {self.frame})"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"path": str(self.path), "line": self.line, "frame": self.frame, "message": self.message}


class DatasetReader(ABC):
    """Base class of the dataset readers; subclasses implement :meth:`_records`.

    ``verify_images=True`` decodes every image fully (slow, finds truncated files); otherwise only
    the header is read where a reader needs the image size, and a missing image is still reported.
    """

    format: ClassVar[str]
    description: ClassVar[str]
    folder_only: ClassVar[bool] = False  # PATH must be a folder
    #: The coordinate of the first pixel's centre in the format's files, subtracted on reading so records
    #: are 0-based (1 for iBUG ``.pts`` and MTFL since 0.20; prepared folders name such sources).
    pixel_origin: ClassVar[float] = 0.0

    def __init__(self, path: str | Path, *, verify_images: bool = False) -> None:
        self.path = Path(path)
        self.verify_images = verify_images
        self.problems: list[Problem] = []
        self._size: tuple[Path, tuple[int, int]] | None = None  # last image size seen
        if not self.path.exists():
            raise DatasetError(f"{self.format}: {self.path} does not exist")
        if self.folder_only and not self.path.is_dir():
            raise DatasetError(f"{self.format}: {self.path} is not a folder")
        kind = None if self.path.is_dir() else special_kind(self.path)
        if kind is not None:
            raise DatasetError(f"{self.format}: {self.path} is not a regular file or a folder ({kind})")

    @property
    def source(self) -> str:
        """``FORMAT:PATH``, stored with every record (readers with options may add them)."""
        return f"{self.format}:{self.path}"

    def __iter__(self) -> Iterator[ImageRecord]:
        self.problems = []
        for record in self._records():
            if self._valid(record):
                yield record

    def _record_size(self, record: ImageRecord) -> tuple[int, int] | None:
        """(width, height) of a record's image: from the reader's own look, else the file's header."""
        if self._size is not None and self._size[0] == Path(record.image):
            return self._size[1]
        if record.frame is not None:
            return None  # a video frame whose reader did not say: range checks are skipped
        try:
            return image_size(record.image)
        except ImageReadError:
            return None

    def _valid(self, record: ImageRecord) -> bool:
        """Report (file, line, frame) and refuse a record with an unusable face."""
        size = self._record_size(record)
        for face in record.faces:
            fault = face_fault(face, size)
            if fault is None:
                continue
            line = None
            if face.lines:  # the point's line, or the face's when all of it is on one line (MTFL)
                line = face.lines[fault.point] if fault.point is not None else (
                    face.lines[0] if len(set(face.lines)) == 1 else None)
            where = face.annotation or record.image
            suffix = f"; image {Path(record.image).name} skipped" if face.annotation else "; image skipped"
            self.report(where, fault.message + suffix, line=line, frame=record.frame)
            return False
        return True

    def note_size(self, path: Path, size: tuple[int, int]) -> None:
        """Tell the shared record check the (width, height) of ``path`` (e.g. a video's frames)."""
        w, h = int(size[0]), int(size[1])
        self._size = (Path(path), (w, h)) if w > 0 and h > 0 else None  # 0: a container that does not say

    @abstractmethod
    def _records(self) -> Iterator[ImageRecord]:
        """Yield records, calling :meth:`report` and skipping for each bad item."""

    def list_files(self, root: Path, suffixes: Iterable[str], *, recursive: bool = True) -> list[Path]:
        """The regular files under ``root`` with these suffixes (sorted); every other entry so named (a
        FIFO would block the reader forever) is reported and skipped."""
        return walk_files(root, suffixes, recursive=recursive,
                          not_regular=lambda path, kind: self.report(path, f"not a regular file ({kind}); skipped"))

    def dataset_path(self, root: Path, name: str, where: Path, *, line: int | None = None) -> Path | None:
        """``root / name`` for an image path an annotation gives, or None after reporting (naming ``where``
        and ``line``) a path that leaves the dataset: absolute, or with a ``..`` part. An annotation file
        never makes a reader open files elsewhere on the machine."""
        text = name.replace("\\", "/")
        if text.startswith("/") or PureWindowsPath(name).anchor or ".." in PurePosixPath(text).parts:
            self.report(where, f"image path {name!r} leaves the dataset folder (absolute or with '..'); skipped",
                        line=line)
            return None
        return root / text

    def image_present(self, image: Path, name: str, root: Path, where: Path, *, line: int | None = None) -> bool:
        """Whether the image an annotation names (``name``, under ``root``) is a regular file; else report why
        not, naming ``where`` and ``line``."""
        kind = special_kind(image)
        if kind is None:
            return True
        reason = ("not found" if kind == "missing" else f"is {kind}" if kind.startswith("unreadable")
                  else f"is not a regular file ({kind})")
        self.report(where, f"image {name} {reason} in {root}", line=line)
        return False

    def report(self, path: str | Path, message: str, *, line: int | None = None,
               frame: int | None = None) -> None:
        problem = Problem(Path(path), message, line, frame)
        self.problems.append(problem)
        logger.warning("%s", problem)

    def check_image(self, path: Path) -> tuple[int, int] | None:
        """(width, height) of an image, or None after reporting why it is unusable."""
        try:
            if self.verify_images:
                h, w = load_image(path).shape[:2]
                size = w, h
            else:
                size = image_size(path)
        except ImageReadError as exc:
            self.report(path, str(exc).removeprefix(f"{path}: "))
            return None
        self.note_size(path, size)
        return size
