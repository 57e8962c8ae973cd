"""Faces in every frame of a video, frame by frame, optionally smoothed over time (One-Euro).

``FaceAnalyzer.video(path)`` (or :class:`VideoAnalysis` directly) opens the video and is iterated for
one :class:`VideoFrame` per frame, in frame order. Frames are analysed in batches (the same faces as
one call per frame). An unreadable frame is yielded with its ``error`` message and no faces, and the
frames after it go on; after :data:`MAX_BAD_FRAMES_IN_A_ROW` unreadable frames in a row the video is
given up (logged). A container that does not say its length ends at the first unreadable frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hyperface.data.images import ImageReadError
from hyperface.data.video import VideoFrames
from hyperface.inference.result import Face
from hyperface.inference.smoothing import FaceSmoother

if TYPE_CHECKING:
    from hyperface.inference.analyzer import FaceAnalyzer

__all__ = ["VideoFrame", "VideoAnalysis", "FALLBACK_FPS", "MAX_BAD_FRAMES_IN_A_ROW"]

log = logging.getLogger(__name__)

#: Frame rate assumed when the container does not give one (timestamps, smoothing, drawn videos).
FALLBACK_FPS = 25.0
#: Unreadable frames in a row after which the rest of a video is given up.
MAX_BAD_FRAMES_IN_A_ROW = 25


@dataclass
class VideoFrame:
    """One frame's result: ``index`` (0-based), ``time`` in seconds, the RGB ``image`` and its ``faces``.

    For an unreadable frame ``error`` says why, ``image`` is None and ``faces`` is empty.
    """

    index: int
    time: float
    image: np.ndarray | None
    faces: list[Face] = field(default_factory=list)
    error: str | None = None


class VideoAnalysis:
    """An open video and the analyzer to run on it; iterate for :class:`VideoFrame` objects.

    Opening fails with :class:`~hyperface.data.images.ImageReadError` naming the file. ``smooth``
    filters boxes, landmarks and pose over time (:class:`FaceSmoother` with ``min_cutoff`` in Hz and
    ``beta``); ``batch_size`` frames go through the network together. Iterate once; the video is
    closed at the end (or use it as a context manager to close it early).
    """

    def __init__(self, analyzer: FaceAnalyzer, path: str | Path, smooth: bool = False, min_cutoff: float = 1.0,
                 beta: float = 0.5, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.analyzer = analyzer
        self.path = Path(path)
        self.batch_size = int(batch_size)
        self._video = VideoFrames(self.path)
        #: frames per second (the container's, else :data:`FALLBACK_FPS`)
        self.fps = self._video.fps if self._video.fps > 0 else FALLBACK_FPS
        #: frame count from the container (0 when it does not say)
        self.frame_count = self._video.frame_count
        self.smoother = FaceSmoother(self.fps, min_cutoff, beta) if smooth else None

    def close(self) -> None:
        self._video.close()

    def __enter__(self) -> VideoAnalysis:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _analysed(self, pending: list[tuple[int, np.ndarray]]) -> Iterator[VideoFrame]:
        if not pending:
            return
        results = self.analyzer.batch([im for _, im in pending], keys=[f"{self.path}#{i}" for i, _ in pending],
                                      color_order="rgb")  # frames are decoded to RGB
        for (i, image), faces in zip(pending, results):
            if self.smoother is not None:
                faces = self.smoother(faces)
            yield VideoFrame(i, i / self.fps, image, faces)
        pending.clear()

    def __iter__(self) -> Iterator[VideoFrame]:
        count, frame, in_a_row, pending = self.frame_count, 0, 0, []
        try:
            while count == 0 or frame < count:
                try:
                    pending.append((frame, self._video.read(frame)))
                    in_a_row = 0
                except ImageReadError as exc:
                    if count == 0:  # the container gives no length: a failed read is the end
                        break
                    yield from self._analysed(pending)
                    yield VideoFrame(frame, frame / self.fps, None, [], str(exc))
                    in_a_row += 1
                    if in_a_row >= MAX_BAD_FRAMES_IN_A_ROW:
                        log.error("%s: giving up after %d unreadable frames in a row", self.path, in_a_row)
                        break
                if len(pending) >= self.batch_size:
                    yield from self._analysed(pending)
                frame += 1
            yield from self._analysed(pending)
        finally:
            self.close()
