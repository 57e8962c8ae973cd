"""Reading single frames of a video file as RGB, for 300-VW style datasets (prepare, analyze).

Frames are addressed by 0-based index. Sequential reads are cheap; any other index seeks with
``CAP_PROP_POS_FRAMES``. Errors are :class:`~hyperface.data.images.ImageReadError` naming the
file and the frame. Frames honour the image pixel budget (:func:`~hyperface.data.images.max_image_pixels`):
a frame over it is refused (:class:`~hyperface.data.images.ImageTooLargeError`) from the container's
frame size, before it is decoded, so callers report and skip it as they do an image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hyperface.data.images import ImageReadError, check_pixels

__all__ = ["VIDEO_SUFFIXES", "VideoFrames", "read_video_frame", "video_info"]

VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".wmv", ".webm"})


class VideoFrames:
    """An open video: ``frames.read(i)`` returns frame ``i`` as H x W x 3 uint8 RGB.

    Keeps the capture open between reads so that reading frames in increasing order does not seek
    for each one. Use as a context manager, or call :meth:`close`. ``max_pixels``: the frame pixel
    budget (None: :func:`~hyperface.data.images.max_image_pixels`, read at each frame).
    """

    def __init__(self, path: str | Path, *, max_pixels: int | None = None) -> None:
        self.path = Path(path)
        self.max_pixels = max_pixels
        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: video file not found")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise ImageReadError(f"{self.path}: cannot open video")
        self._next = 0  # index of the frame the next plain read() returns

    @property
    def frame_count(self) -> int:
        """Frame count from the container (0 when the container does not say)."""
        return max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    @property
    def fps(self) -> float:
        return float(self._cap.get(cv2.CAP_PROP_FPS))

    def check_size(self, frame: int) -> None:
        """Refuse frame ``frame`` over the pixel budget (ImageTooLargeError naming file and frame), from the
        container's frame size: nothing is decoded. A container that does not say is checked after decoding."""
        check_pixels(f"{self.path}: frame {frame}", self.size, self.max_pixels, what="frame")

    def read(self, frame: int) -> np.ndarray:
        """Frame ``frame`` (0-based) as RGB uint8; raises ImageReadError naming file and frame."""
        if self._cap is None:
            raise ImageReadError(f"{self.path}: video is closed")
        if frame < 0:
            raise ImageReadError(f"{self.path}: frame {frame}: frame index must be >= 0")
        self.check_size(frame)
        if frame != self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._next = -1  # position unknown after a failed read: seek next time
            count = self.frame_count
            extra = f" (the video has {count} frames)" if count else ""
            raise ImageReadError(f"{self.path}: frame {frame}: cannot read frame{extra}")
        self._next = frame + 1
        check_pixels(f"{self.path}: frame {frame}", (bgr.shape[1], bgr.shape[0]), self.max_pixels, what="frame")
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_video_frame(path: str | Path, frame: int) -> np.ndarray:
    """Frame ``frame`` (0-based) of the video ``path`` as H x W x 3 uint8 RGB.

    Opens the video for this one frame; to read many frames of one video use :class:`VideoFrames`.
    """
    with VideoFrames(path) as video:
        return video.read(frame)


def video_info(path: str | Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) of a video; raises ImageReadError when it does not open."""
    with VideoFrames(path) as video:
        return video.frame_count, video.size
