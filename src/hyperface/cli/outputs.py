"""Output paths of the commands, checked before any work: never an input, never a folder where a file goes.

Shared by ``analyze``, ``export`` and ``evaluate`` (not a sub-command itself). A problem is a
:class:`UsageError` whose message names the option and the path; the commands print it and exit 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["UsageError", "FileSet", "check_output_file", "check_output_folder"]


class UsageError(ValueError):
    """A mistake on the command line, found before any work (exit status 2)."""


class FileSet:
    """Files known by their resolved path or, when they exist, by (device, inode): links are the same file."""

    def __init__(self, paths: Iterable[str | Path] = ()) -> None:
        self.names: set[str] = set()
        self.inodes: set[tuple[int, int]] = set()
        for p in paths:
            self.add(Path(p))

    @staticmethod
    def _ids(path: Path) -> tuple[str, tuple[int, int] | None]:
        try:
            st = path.stat()
            inode = (st.st_dev, st.st_ino)
        except OSError:
            inode = None
        return str(path.resolve()), inode

    def add(self, path: Path) -> None:
        name, inode = self._ids(path)
        self.names.add(name)
        if inode is not None:
            self.inodes.add(inode)

    def __contains__(self, path: Path) -> bool:
        name, inode = self._ids(Path(path))
        return name in self.names or (inode is not None and inode in self.inodes)


def _make_folder(folder: Path, option: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option}: cannot create the folder {folder} ({exc.strerror or exc})") from None


def check_output_file(path: str | Path, option: str, inputs: FileSet) -> Path:
    """``path`` as a Path after checking it is not a folder nor one of ``inputs``; creates its folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give the name of the file to write")
    if path in inputs:
        raise UsageError(f"{option} {path} is one of the inputs; writing it would destroy that input")
    _make_folder(path.parent, option)
    return path


def check_output_folder(folder: str | Path, option: str) -> Path:
    """``folder`` as a Path after checking it is not a file; creates it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder} is a file; give a folder")
    _make_folder(folder, option)
    return folder
