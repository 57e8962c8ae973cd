"""File-finding helpers shared by the folder-based readers (deterministic, case-insensitive suffixes)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hyperface.data.images import IMAGE_SUFFIXES

__all__ = ["walk_files", "ImageIndex"]


def walk_files(root: Path, suffixes: Iterable[str], *, recursive: bool = True) -> list[Path]:
    """Files under ``root`` whose suffix (any case) is in ``suffixes``, in sorted path order."""
    wanted = {s.lower() for s in suffixes}
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(Path(dirpath) / f for f in filenames
                         if not f.startswith(".") and Path(f).suffix.lower() in wanted)
    else:
        found = [p for p in root.iterdir()
                 if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in wanted]
    return sorted(found)


class ImageIndex:
    """Finds the image next to an annotation file: same folder, same stem, any image suffix.

    Lists each folder once, so looking up thousands of annotations costs one listing per folder.
    """

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, list[Path]]] = {}

    def find(self, annotation: Path) -> Path | None:
        folder = annotation.parent
        by_stem = self._folders.get(folder)
        if by_stem is None:
            by_stem = {}
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                entries = []
            for p in entries:
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                    by_stem.setdefault(p.stem, []).append(p)
            self._folders[folder] = by_stem
        candidates = by_stem.get(annotation.stem)
        return candidates[0] if candidates else None
