"""Atomic file output: every file the toolkit writes appears whole or not at all.

One owner for the pattern "write to a temporary name in the same folder, flush, rename into place":
a crash, a kill or Ctrl-C in the middle leaves the previous file (or none), never a partial one, and
at most a hidden ``.NAME.*.tmp`` that the next write of the same name does not trip over. Files get
the mode the user's umask gives a new file (``open`` semantics, not ``mkstemp``'s 0600).

Only regular files are ever replaced: a rename over a device node, a FIFO or a socket (``/dev/sda``,
``/proc/self/fd/1``'s pipe) would swap the node for a plain file, so such a target is refused
(:class:`NotRegularFileError`), except :data:`os.devnull`, which is written to and discarded, as
``> /dev/null`` would. A symbolic link is written through (its target is replaced, the link stays), as
``cp`` does.

:func:`atomic_path` is the primitive (a context manager yielding the temporary path, for writers
that take a path such as OpenCV, matplotlib or ``torch.save``); :func:`atomic_open` yields an open
file; the ``write_*`` helpers cover bytes, text, JSON, numpy arrays and safetensors;
:func:`atomic_directory` does the same for a whole folder (a shard).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_open",
    "atomic_directory",
    "write_bytes",
    "write_text",
    "write_json",
    "write_npy",
    "write_safetensors",
    "replace",
    "NotRegularFileError",
    "is_devnull",
    "check_replaceable",
    "replaced_path",
]


class NotRegularFileError(OSError):
    """An output path that names something other than a regular file (a device, FIFO, socket or folder)."""


def is_devnull(path: str | Path) -> bool:
    """True when ``path`` is (a link to) :data:`os.devnull`, where output is discarded."""
    try:
        return os.path.samefile(path, os.devnull)
    except OSError:
        return False


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_replaceable(path: str | Path) -> None:
    """Raise :class:`NotRegularFileError` when ``path`` exists (links followed) and is not a regular file.

    A rename onto such a path would replace the node itself; :data:`os.devnull` passes (see
    :func:`atomic_path`).
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (a missing folder is the writer's error)
        return
    if stat.S_ISREG(st.st_mode) or is_devnull(path):
        return
    raise NotRegularFileError(f"{path} is {_kind(st.st_mode)}, not a regular file; an output never replaces it")


def _temporary_name(path: Path) -> Path:
    # The suffix stays last so that writers that choose a format by extension (cv2.imwrite,
    # matplotlib's savefig) still see it.
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def replace(src: str | Path, dst: str | Path) -> None:
    """Rename ``src`` over ``dst`` atomically (same filesystem); the one ``os.replace`` of the package."""
    os.replace(src, dst)


def replaced_path(path: str | Path) -> Path:
    """The file a write of ``path`` replaces: ``path``, or the target of a symbolic link (the link stays)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed to ``path``.

    On an exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is left
    as it was. The parent folder must exist. A ``path`` that is not a regular file is refused before
    anything is written (:func:`check_replaceable`); for :data:`os.devnull` the temporary file is made
    in the temporary folder and discarded.
    """
    path = Path(path)
    check_replaceable(path)
    discard = is_devnull(path)
    path = replaced_path(path)
    tmp = Path(tempfile.gettempdir()) / _temporary_name(path).name if discard else _temporary_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{path}: the writer produced no file")
        if not discard:
            replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """``open(path, mode)`` on a temporary file that replaces ``path`` only when the block ends cleanly."""
    if not set(mode) <= set("wbt"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w', 'wb' or 'wt', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (with a final newline) to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(data, indent=indent) + "\n")


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy`` (never pickled objects) to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


def write_safetensors(path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> Path:
    """Save torch tensors in safetensors format to ``path`` atomically; returns the path."""
    from safetensors.torch import save

    return write_bytes(path, save(dict(tensors), metadata=dict(metadata) if metadata else None))


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on a clean exit it is renamed to ``path``.

    An existing ``path`` is an error unless ``overwrite`` (then the old folder is removed just before
    the rename). On an exception the temporary folder is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            shutil.rmtree(path)
        replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
