"""Output paths of the commands, checked before any work against everything the command reads.

Shared by ``analyze``, ``export`` and ``evaluate`` (not a sub-command itself). The principles, stated
once here and followed by each command:

* every path a command reads (images, videos, weights, boxes files, datasets) goes into one
  :class:`Inputs` collection, and no output may replace any of them;
* outputs are regular files in writable folders: a folder, a device node, a FIFO or a socket is
  never replaced (``/dev/null`` is accepted: the output is discarded; ``-`` means standard output
  where a command says so);
* all of it is checked before any work, as a :class:`UsageError` whose message names the option
  and the path; the commands print it and exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hyperface import fileio

__all__ = ["UsageError", "FileSet", "Inputs", "STDOUT", "check_output_file", "check_output_folder"]

#: The output name that means standard output (``--json -``).
STDOUT = "-"


class UsageError(ValueError):
    """A mistake on the command line, found before any work (exit status 2)."""


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


class FileSet:
    """Files known by (device, inode) when they exist (links and other names are the same file), else by
    their resolved path; each with a label saying what it is."""

    def __init__(self, paths: Iterable[str | Path] = (), what: str = "an input") -> None:
        self._by_id: dict[tuple[int, int], str] = {}
        self._by_name: dict[str, str] = {}
        for p in paths:
            self.add(Path(p), what)

    def add(self, path: str | Path, what: str = "an input") -> None:
        path = Path(path)
        ident = _file_id(path)
        if ident is not None:
            self._by_id.setdefault(ident, what)
        else:
            self._by_name.setdefault(str(path.resolve()), what)

    def label(self, path: str | Path) -> str | None:
        """What ``path`` is in this set, or None when it is not in it."""
        path = Path(path)
        ident = _file_id(path)
        if ident is not None and ident in self._by_id:
            return self._by_id[ident]
        if self._by_name:
            return self._by_name.get(str(path.resolve()))
        return None

    def __contains__(self, path: str | Path) -> bool:
        return self.label(path) is not None


class Inputs:
    """Everything one command reads: files (:meth:`add`) and folders whose every existing file is read
    (:meth:`add_tree`, e.g. a dataset with its images and annotations).

    A file added must exist (a :class:`UsageError` naming it otherwise, before any work).
    :meth:`check` refuses an output that would replace any of them.
    """

    def __init__(self) -> None:
        self.files = FileSet()
        self._trees: list[tuple[Path, str]] = []

    def add(self, path: str | Path, what: str) -> Path:
        """Record ``path`` (a file, or a folder read as a whole) described as ``what``; returns it."""
        path = Path(path)
        if not path.exists():
            raise UsageError(f"{what} {path}: no such file or folder")
        if path.is_dir():
            self.add_tree(path, what)
        else:
            self.files.add(path, what)
        return path

    def add_files(self, paths: Iterable[str | Path], what: str) -> None:
        """Record many files known to exist (e.g. found in a folder), without a message per file."""
        for p in paths:
            self.files.add(p, what)

    def add_tree(self, folder: str | Path, what: str) -> None:
        self._trees.append((Path(folder).resolve(), what))

    def reason(self, path: str | Path) -> str | None:
        """Why writing ``path`` would destroy an input (a phrase), or None when it would not."""
        what = self.files.label(path)
        if what is not None:
            return f"is one of the inputs ({what})"
        path = Path(path)
        if self._trees and path.exists():
            resolved = path.resolve()
            for folder, what in self._trees:
                if resolved.is_relative_to(folder):
                    return f"is inside {what} {folder}, which this command reads"
        return None

    def check(self, path: str | Path, option: str) -> None:
        """Raise :class:`UsageError` when the output ``path`` of ``option`` is one of the inputs."""
        reason = self.reason(path)
        if reason is not None:
            raise UsageError(f"{option} {path} {reason}; writing it would destroy that input")


def _make_folder(folder: Path, option: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option}: cannot create the folder {folder} ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: the folder {folder} is not writable")


def check_output_file(path: str | Path, option: str, inputs: Inputs | None = None, stdout: bool = False) -> Path:
    """``path`` as a Path after checking that writing it is safe; creates its folder.

    Refused (:class:`UsageError`): a folder, a device node, FIFO or socket (or a link to one; ``/dev/null``
    passes), one of ``inputs``, a folder that cannot be created or written. ``stdout``: the option
    accepts ``-`` for standard output (said in the message).
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give the name of the file to write")
    if fileio.is_devnull(path):
        return path
    try:
        fileio.check_replaceable(path)
    except fileio.NotRegularFileError as exc:
        hint = ", or '-' for standard output" if stdout else ""
        raise UsageError(f"{option}: {exc}; give the name of a file to write{hint}") from None
    if inputs is not None:
        inputs.check(path, option)
    _make_folder(path.parent, option)
    return path


def check_output_folder(folder: str | Path, option: str, inputs: Inputs | None = None) -> Path:
    """``folder`` as a Path after checking it is not a file nor inside an input folder; creates it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder} is a file; give a folder")
    if inputs is not None and folder.exists() and inputs.reason(folder) is not None:
        raise UsageError(f"{option} {folder} {inputs.reason(folder)}; files written there could replace that "
                         f"input's files")
    _make_folder(folder, option)
    return folder
