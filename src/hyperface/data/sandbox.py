"""Parsers that may crash the process, run in a child process: a crash is that file's error.

Why: scipy's MAT-file reader (``scipy.io.loadmat``, the library for AFLW2000-3D's ``.mat`` files)
reads past its buffers on some damaged files and kills the process with a segmentation fault (about
one in forty random damages of a valid file, found by fuzzing), which would end a whole ``data check``
or ``prepare`` over one bad file. :func:`isolated` runs such a parser in one child process kept for
the process's lifetime; when the child dies, the call raises :class:`ParserCrashed` and the next call
starts a new child. Where a process may not have children (a daemonic worker of a ``multiprocessing``
pool), the parser runs in-process. Only the project's own functions and plain arguments cross over.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["ParserCrashed", "isolated"]

T = TypeVar("T")


class ParserCrashed(RuntimeError):
    """The child process running a parser died (a crash inside the parsing library)."""


_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _shutdown() -> None:
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)


atexit.register(_shutdown)


def isolated(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the parser child process (in-process where a child cannot be started); a
    :class:`ParserCrashed` when the child dies. ``fn`` must be a module-level function."""
    global _pool
    if multiprocessing.current_process().daemon:
        return fn(*args)
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        pool = _pool
    try:
        return pool.submit(fn, *args).result()
    except BrokenProcessPool:
        with _lock:
            if _pool is pool:
                _pool = None
        pool.shutdown(wait=False, cancel_futures=True)
        raise ParserCrashed("the parser's process crashed on it (a damaged file)") from None
