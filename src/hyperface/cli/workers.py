"""``analyze --workers N``: tasks analysed by N processes, their lines given back in input order.

Why processes: much of a call is Python and single-threaded OpenCV work between network runs, so
one process leaves cores idle; N processes, each with its own :class:`FaceAnalyzer` built from the
command's settings (nothing is pickled but settings, tasks and JSON lines) and ``cores // N``
threads, keep them busy without oversubscribing them. Workers are forked from a fork server that
has imported the runtimes once (never from the command's own process, with its threads and
sessions), or spawned where there is no fork server. Results come back in task order whatever the
order they finish in, so the output file is the same as one process's, and a resumed run's
partial file is always a prefix of it.

A worker that dies (killed, out of memory, a crash in a native library) breaks the pool: the tasks
that were not finished are run again one input at a time, each alone in a new pool, so the input
that kills its worker again is found and recorded as an error line, and the run goes on.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from typing import Any

from hyperface.cli.analyze_tasks import Task, TaskOptions, run_task
from hyperface.cli.results import error_line

__all__ = ["WorkerSetupError", "available_cores", "worker_threads", "serial_lines", "parallel_lines", "ordered_lines"]

log = logging.getLogger("hyperface.analyze")

#: Tasks queued per worker beyond the one it runs: enough to keep it busy while the parent writes.
TASKS_AHEAD = 2
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Modules the fork server imports once for all workers (the analyzer and its runtimes).
PRELOAD = ("hyperface.inference", "hyperface.cli.analyze_tasks")


class WorkerSetupError(RuntimeError):
    """A worker could not build its analyzer (the message is the analyzer's)."""


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(workers: int, threads: int | None) -> int:
    """Threads per worker: ``threads`` when given, else the cores shared out (at least 1)."""
    return threads if threads is not None else max(1, available_cores() // workers)


def serial_lines(analyzer, tasks: Iterable[Task], options: TaskOptions) -> Iterator[dict]:
    """The lines of every task, analysed in this process, each as soon as it is known."""
    for task in tasks:
        yield from run_task(analyzer, task, options)


# ------------------------------------------------------------------------------------------ in a worker

_analyzer = None
_setup_error: str | None = None


def _start_worker(settings: dict[str, Any], threads: int) -> None:
    """Worker initializer: Ctrl-C is the parent's to handle; thread counts set before any runtime loads."""
    global _analyzer, _setup_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    try:
        from hyperface.inference import FaceAnalyzer

        _analyzer = FaceAnalyzer(**{**settings, "threads": threads})
    except Exception as exc:  # noqa: BLE001 -- given back to the parent by the first task
        _setup_error = str(exc) or type(exc).__name__


def _ready() -> None:
    if _setup_error is not None:
        raise WorkerSetupError(_setup_error)


def _work(task: Task, options: TaskOptions) -> list[dict]:
    _ready()
    return list(run_task(_analyzer, task, options))


# ------------------------------------------------------------------------------------------ in the parent


def _context():
    """``forkserver`` where there is one: a clean process that imports the runtimes once, which each worker
    is forked from (a spawned worker imports them again: seconds each); else ``spawn``."""
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


@dataclass
class _Slot:
    """A task in output order: its future once submitted; ``alone``: run it with no other task in flight."""

    task: Task
    future: Future | None = None
    alone: bool = False


class _Pool:
    """A process pool that can be started again after one of its workers died."""

    def __init__(self, workers: int, initializer=None, initargs: tuple = ()) -> None:
        self._args = (workers, initializer, initargs)
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        workers, initializer, initargs = self._args
        return ProcessPoolExecutor(workers, mp_context=_context(), initializer=initializer, initargs=initargs)

    def restart(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.executor = self._new()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def parallel_lines(tasks: Iterable[Task], options: TaskOptions, settings: dict[str, Any], workers: int,
                   threads: int) -> Iterator[dict]:
    """The lines of every task, analysed by ``workers`` processes, given back in task order.

    Raises :class:`WorkerSetupError` (before any task runs) when the analyzer cannot be built.
    """
    pool = _Pool(workers, _start_worker, (settings, threads))
    try:
        pool.executor.submit(_ready).result()  # the analyzer's settings errors now, not after the first batch
        yield from ordered_lines(pool, iter(tasks), options, workers * (1 + TASKS_AHEAD))
    finally:
        pool.close()


def ordered_lines(pool: _Pool, tasks: Iterator[Task], options: TaskOptions, window: int,
                  work: Callable[[Task, TaskOptions], list[dict]] = _work) -> Iterator[dict]:
    """The lines of ``work(task, options)`` for each task, run in ``pool`` with up to ``window`` tasks in
    flight, in task order; a worker's death is handled as the module docstring says."""
    slots: deque[_Slot] = deque()
    exhausted = False
    while True:
        while not exhausted and len(slots) < window and not any(s.alone for s in slots):
            task = next(tasks, None)
            if task is None:
                exhausted = True
            else:
                slots.append(_Slot(task))
        if not slots:
            return
        head = slots[0]
        try:
            _submit(pool, slots, options, work)  # a pool broken since the last look refuses new tasks
            lines = head.future.result()
        except BrokenProcessPool:
            if head.alone and head.future is not None and not any(
                    s is not head and s.future is not None and not _succeeded(s.future) for s in slots):
                slots.popleft()  # it ran alone: it killed its worker
                yield from _died(head.task)
            _retry_alone(slots)
            pool.restart()
            continue
        slots.popleft()
        yield from lines


def _submit(pool: _Pool, slots: deque[_Slot], options: TaskOptions, work) -> None:
    """Submit waiting slots in order: all of them, or, while some must run alone, one at a time."""
    running = sum(s.future is not None and not s.future.done() for s in slots)
    for slot in slots:
        if slot.future is not None:
            continue
        if (slot.alone or any(s.alone for s in slots)) and running:
            return
        slot.future = pool.executor.submit(work, slot.task, options)
        running += 1


def _retry_alone(slots: deque[_Slot]) -> None:
    """After a worker died: the slots it may have been running become one slot per input, each to run alone."""
    kept: list[_Slot] = []
    for slot in slots:
        if slot.future is None or _succeeded(slot.future):
            kept.append(slot)
        else:
            kept.extend(_Slot(t, alone=True) for t in slot.task.alone())
    slots.clear()
    slots.extend(kept)


def _succeeded(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _died(task: Task) -> list[dict]:
    message = "the worker process analysing it died (killed, out of memory, or a crash in a native library)"
    return [error_line(item.path, None, f"{item.path}: {message}") for item in task.items]
