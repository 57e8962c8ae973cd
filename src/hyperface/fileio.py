"""Atomic file output: every file the toolkit writes appears whole or not at all.

One owner for the pattern "write to a temporary name in the same folder, flush, rename into place":
a crash, a kill or Ctrl-C in the middle leaves the previous file (or none), never a partial one, and
at most a hidden ``.NAME.*.tmp`` that the next write of the same name does not trip over. Files get
the mode the user's umask gives a new file (``open`` semantics, not ``mkstemp``'s 0600).

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
]


def _temporary_name(path: Path) -> Path:
    # The suffix stays last so that writers that choose a format by extension (cv2.imwrite,
    # matplotlib's savefig) still see it.
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def replace(src: str | Path, dst: str | Path) -> None:
    """Rename ``src`` over ``dst`` atomically (same filesystem); the one ``os.replace`` of the package."""
    os.replace(src, dst)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed to ``path``.

    On an exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is left
    as it was. The parent folder must exist.
    """
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{path}: the writer produced no file")
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
