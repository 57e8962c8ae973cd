"""Only regular files are read from datasets and folders.

A named pipe (FIFO) called ``a.pts`` or ``x.jpg`` blocks whoever opens it until some writer appears
(forever, in a dataset folder); a device or a socket streams without end. Such an entry is refused by
what it is (``stat``), never by trying to read it, and reported by the caller as a skipped input.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

__all__ = ["NotRegularFileError", "special_kind", "open_regular"]


class NotRegularFileError(OSError):
    """A path that exists but is not a regular file (a FIFO, socket, device or folder)."""


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def special_kind(path: str | os.PathLike) -> str | None:
    """None for a regular file (links followed); else what the entry is ("missing", "a named pipe (FIFO)",
    ...), for a message. Never raises: a name the system refuses (too long, a NUL) is "unreadable (why)"."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "a broken link" if os.path.islink(path) else "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except ValueError as exc:  # an embedded NUL character
        return f"unreadable ({exc})"
    return _kind(mode)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``open(path, "rb")`` for a regular file only; :class:`NotRegularFileError` for anything else.

    The entry is checked before it is opened, and the open descriptor again (non-blocking, so a FIFO
    swapped in between cannot block), so no special file is ever read. A missing file is the usual
    FileNotFoundError.
    """
    kind = _kind(os.stat(path).st_mode)
    if kind is not None:
        raise NotRegularFileError(f"{path}: not a regular file ({kind})")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFileError(f"{path}: not a regular file ({kind})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
