"""A fixed pool of analyzer workers behind a bounded queue: the service's only concurrency control.

Each worker is a thread that owns its analyzers (an analyzer is never shared between threads). Much
of a call releases the GIL (onnxruntime's runs alone are about 45% of one on the 640x480 test image;
decoding and OpenCV too), so a few threads share the cores without a copy of every model per
process; on many cores the Python part caps how far threads scale. At most ``workers + queue`` requests are admitted; one
more is refused at once (:class:`PoolFull`, the service's 503) rather than left to wait without
bound. A worker keeps the server's default analyzer for good and the analyzers of the last few
distinct request options (building one takes seconds, one build at a time, so a new set of options
costs its first request that much).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from hyperface.analysis_lines import analyze_bytes
from hyperface.serve.options import analyzer_settings

__all__ = ["AnalyzerPool", "PoolFull", "machine_cpus", "default_workers"]

log = logging.getLogger(__name__)

Options = tuple[tuple[str, Any], ...]


class PoolFull(RuntimeError):
    """Every worker is busy and the queue is full: the request is refused, not queued."""


def machine_cpus() -> int:
    """CPUs this process may run on (its affinity, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_workers(threads: int = 1) -> int:
    """Workers that fill the machine at ``threads`` CPU threads each, without oversubscribing it."""
    return max(1, machine_cpus() // max(1, threads))


def _build_analyzer(settings: dict[str, Any]):
    from hyperface.inference import FaceAnalyzer

    return FaceAnalyzer(**settings)


# Analyzers are built one at a time: the bundled and exported networks load in a fraction of a second,
# and a weights file served on onnxruntime is exported by PyTorch, whose exporter keeps global state.
_BUILD_LOCK = threading.Lock()


@dataclass
class _Job:
    data: bytes
    name: str
    options: Options
    future: Future


class AnalyzerPool:
    """``workers`` threads, each with its own analyzer(s) built from ``settings``; :meth:`submit` a job.

    ``queue_size``: jobs admitted beyond the busy workers; ``max_pixels``: the decoding pixel budget;
    ``factory``: builds an analyzer from settings (tests give a stand-in); ``cache``: analyzers per
    worker kept for request options besides the default one. :meth:`start` builds every worker's
    default analyzer and raises the first construction error, so a bad setting stops the service
    before it listens.
    """

    def __init__(self, settings: dict[str, Any], workers: int, queue_size: int = 8, *, max_pixels: int | None = None,
                 factory: Callable[[dict[str, Any]], Any] = _build_analyzer, cache: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        self.settings = dict(settings)
        self.workers, self.queue_size, self.max_pixels = int(workers), int(queue_size), max_pixels
        self._factory, self._cache_size = factory, int(cache)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._admitted = threading.BoundedSemaphore(self.workers + self.queue_size)
        self._lock = threading.Lock()
        self._pending = self._busy = 0
        self._threads: list[threading.Thread] = []
        self._closed = False

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> AnalyzerPool:
        """Start the workers and wait until each has built its default analyzer."""
        ready: list[Future] = [Future() for _ in range(self.workers)]
        for i, built in enumerate(ready):
            t = threading.Thread(target=self._work, args=(built,), name=f"hyperface-analyzer-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        try:
            for built in ready:
                built.result()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Let the workers finish their current job and stop; jobs still queued are cancelled."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
                self._release(queued=True)
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()

    def __enter__(self) -> AnalyzerPool:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- jobs ----------------------------------------------------------------------------------
    def submit(self, data: bytes, name: str, options: Options = ()) -> Future:
        """A future of the JSON line of the encoded image ``data``; :class:`PoolFull` when no room is left."""
        if self._closed:
            raise RuntimeError("the analyzer pool is closed")
        if not self._admitted.acquire(blocking=False):
            raise PoolFull(f"all {self.workers} analyzer worker(s) are busy and {self.queue_size} request(s) "
                           f"wait; try again shortly")
        with self._lock:
            self._pending += 1
        job = _Job(data, name, tuple(options), Future())
        self._jobs.put(job)
        return job.future

    def stats(self) -> dict[str, int]:
        """Workers, requests being analysed, requests waiting, and the most admitted at once."""
        with self._lock:
            return {"workers": self.workers, "busy": self._busy, "waiting": self._pending,
                    "capacity": self.workers + self.queue_size}

    # -- workers -------------------------------------------------------------------------------
    def _release(self, queued: bool) -> None:
        with self._lock:
            if queued:
                self._pending -= 1
            else:
                self._busy -= 1
        self._admitted.release()

    def _work(self, built: Future) -> None:
        try:
            with _BUILD_LOCK:
                default = self._factory(self.settings)
        except BaseException as exc:
            built.set_exception(exc)
            return
        built.set_result(None)
        extra: OrderedDict[Options, Any] = OrderedDict()
        while (job := self._jobs.get()) is not None:
            with self._lock:
                self._pending -= 1
                self._busy += 1
            try:
                if not job.future.set_running_or_notify_cancel():  # the client left while it waited
                    continue
                try:
                    analyzer = default if not job.options else self._analyzer_for(job.options, extra)
                    job.future.set_result(analyze_bytes(analyzer, job.data, job.name, self.max_pixels))
                except BaseException as exc:  # the caller decides what it means; the worker goes on
                    job.future.set_exception(exc)
            finally:
                self._release(queued=False)

    def _analyzer_for(self, options: Options, extra: OrderedDict[Options, Any]):
        """This worker's analyzer for ``options``, built on first use; the least recently used one goes."""
        if options in extra:
            extra.move_to_end(options)
            return extra[options]
        with _BUILD_LOCK:
            analyzer = self._factory(analyzer_settings(self.settings, options))
        extra[options] = analyzer
        while len(extra) > self._cache_size:
            extra.popitem(last=False)
        return analyzer

