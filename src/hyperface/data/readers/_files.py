"""File-finding helpers shared by the folder-based readers (deterministic, case-insensitive suffixes).

:func:`walk_files` is where every reader lists a folder; it yields regular files only (a FIFO named
``a.pts`` would block whoever opens it) and hands every other entry to its caller to report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from hyperface.data.files import special_kind
from hyperface.data.images import IMAGE_SUFFIXES

__all__ = ["walk_files", "ImageIndex"]


def walk_files(root: Path, suffixes: Iterable[str], *, recursive: bool = True,
               not_regular: Callable[[Path, str], None] | None = None) -> list[Path]:
    """Regular files under ``root`` whose suffix (any case) is in ``suffixes``, in sorted path order.

    Any other entry with such a name (a FIFO, socket, device, broken link; in a flat listing also a
    folder) is left out and passed, with what it is, to ``not_regular``.
    """
    wanted = {s.lower() for s in suffixes}
    named: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            named.extend(Path(dirpath) / f for f in filenames
                         if not f.startswith(".") and Path(f).suffix.lower() in wanted)
    else:
        named = [p for p in root.iterdir() if not p.name.startswith(".") and p.suffix.lower() in wanted]
    found = []
    for path in sorted(named):
        kind = special_kind(path)
        if kind is None:
            found.append(path)
        elif not_regular is not None:
            not_regular(path, kind)
    return found


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
