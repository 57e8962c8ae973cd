"""Worker processes for data jobs (``prepare``): spawned, one thread each, deaf to Ctrl-C.

Ctrl-C reaches every process of a terminal's job; the parent alone decides to stop (and says how to
resume), so workers ignore SIGINT. They start with it ignored (a disposition inherited across exec,
which Python keeps), so a worker still starting up when Ctrl-C comes prints no traceback either.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import signal
import threading
from collections.abc import Iterator

import cv2

__all__ = ["worker_pool"]


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process for the block (main thread only), then the caller's handler back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one process per core: no nested threading
    import torch  # a dependency: the teacher network of the aligned and hard-negatives modes

    torch.set_num_threads(1)


def worker_pool(workers: int) -> multiprocessing.pool.Pool:
    """A pool of ``workers`` spawned processes that ignore Ctrl-C and use one thread each."""
    with _sigint_ignored():
        return multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
