"""The units of work of ``hyperface analyze``: a batch of images or one video, each giving its JSON lines.

Why a module of its own: the same task runs in the command's process or in a worker process
(``--workers``), so it is plain data (picklable) and :func:`run_task` needs nothing but an analyzer.

Failures stay with their input: an image that cannot be read or analysed (a bad box in a boxes
file, an ambiguous name) is an error line and the other images of its batch are analysed alone;
a drawn picture that cannot be written adds an ``error`` to its image's line. Nothing here stops a
run except Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hyperface import fileio
from hyperface.cli.results import Recorded, error_line, result_line

__all__ = ["Item", "Task", "TaskOptions", "make_tasks", "run_task"]

log = logging.getLogger("hyperface.analyze")


@dataclass(frozen=True)
class Item:
    """One input: an image or a video, and where its drawn picture goes (None: not drawn)."""

    path: Path
    kind: str  # "image" or "video"
    draw: Path | None = None


@dataclass(frozen=True)
class Task:
    """Images analysed as one batch, or one video (``skip_frames``: frames an earlier run recorded)."""

    items: tuple[Item, ...]
    skip_frames: frozenset[int] = frozenset()

    def alone(self) -> list[Task]:
        """One task per input, to tell which input a failure belongs to."""
        if len(self.items) == 1:
            return [self]
        return [Task((item,)) for item in self.items]


@dataclass(frozen=True)
class TaskOptions:
    """The settings of a run that are not the analyzer's own."""

    batch_size: int = 8
    smooth: bool = False
    smoothing: dict = field(default_factory=dict)  # FaceAnalyzer.video's min_cutoff and beta, where given


def make_tasks(items: Iterable[Item], batch_size: int, recorded: Recorded) -> Iterator[Task]:
    """Tasks for the ``items`` an earlier run (``recorded``) has not done, in input order."""
    batch: list[Item] = []
    for item in items:
        if item.kind == "video":
            if recorded.has_video(item.path):
                continue
            if batch:
                yield Task(tuple(batch))
                batch = []
            yield Task((item,), recorded.frames(item.path))
        elif not recorded.has_image(item.path):
            batch.append(item)
            if len(batch) >= batch_size:
                yield Task(tuple(batch))
                batch = []
    if batch:
        yield Task(tuple(batch))


def failure_message(path: Path, frame: int | None, exc: BaseException) -> str:
    """``exc`` as one line that names the input (and frame); the type is named when it is unexpected."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError, MemoryError)):
        text = f"{type(exc).__name__}: {text}"
    where = str(path) if frame is None else f"{path}: frame {frame}"
    return text if text.startswith(str(path)) else f"{where}: {text}"


def run_task(analyzer, task: Task, options: TaskOptions) -> Iterator[dict]:
    """The JSON lines of ``task``, in input (and frame) order, as each is known."""
    if task.items[0].kind == "video":
        yield from _video_lines(analyzer, task.items[0], options, task.skip_frames)
    else:
        yield from _image_lines(analyzer, task.items)


# ------------------------------------------------------------------------------------------ images


def _analyzed(analyzer, paths: list[Path]) -> list[list | BaseException]:
    """Faces per image, or the exception of an image that failed: a batch that fails is split until
    each failure is one image's. The analyzer decodes each file itself, one at a time and no larger than
    it works at, so a batch of huge photos holds one decoded photo, not all of them."""
    try:
        return analyzer.batch(paths)
    except Exception as exc:  # noqa: BLE001 -- one input's failure, whatever it is, never stops a run
        if len(paths) == 1:
            log.debug("%s failed", paths[0], exc_info=True)
            return [exc]
    return [r for path in paths for r in _analyzed(analyzer, [path])]


def _image_lines(analyzer, items: tuple[Item, ...]) -> list[dict]:
    from hyperface.data.images import image_size

    lines: list[dict | None] = [None] * len(items)
    sized: list[tuple[int, tuple[int, int]]] = []
    for i, item in enumerate(items):
        try:
            sized.append((i, image_size(item.path)))
        except (OSError, ValueError) as exc:
            lines[i] = error_line(item.path, None, failure_message(item.path, None, exc))
    results = _analyzed(analyzer, [items[i].path for i, _ in sized]) if sized else []
    for (i, size), faces in zip(sized, results):
        item = items[i]
        if isinstance(faces, BaseException):
            lines[i] = error_line(item.path, None, failure_message(item.path, None, faces))
            continue
        lines[i] = result_line(item.path, None, size, faces)
        if item.draw is not None:
            try:
                _draw(item.path, item.draw, faces)
            except (OSError, ValueError, cv2.error) as exc:
                lines[i]["error"] = f"{item.draw}: cannot write the drawn picture ({_reason(exc)})"
    return lines


def _draw(path: Path, out: Path, faces: list) -> None:
    """The picture at ``path`` with ``faces`` drawn, written to ``out`` (decoded again: one at a time)."""
    from hyperface.data.images import load_image
    from hyperface.inference.draw import draw_faces

    _write_image(out, draw_faces(load_image(path), faces))


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__


def _write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: cannot write image")


# ------------------------------------------------------------------------------------------ videos


class _VideoWriter:
    """Drawn frames into ``path`` (mp4), renamed into place by :meth:`close` (nothing when ``path`` is None)."""

    def __init__(self, path: Path | None, fps: float) -> None:
        self.path, self.fps = path, fps
        self._stack = contextlib.ExitStack()
        self._writer = None

    def write(self, rgb: np.ndarray) -> None:
        if self.path is None:
            return
        if self._writer is None:  # opened on the first frame: a video without frames leaves no file
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._stack.enter_context(fileio.atomic_path(self.path))
            self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (rgb.shape[1], rgb.shape[0]))
            self._stack.callback(self._writer.release)  # runs before the rename
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self, ok: bool = True) -> None:
        """Rename the drawn video into place (``ok``), or throw it away."""
        if ok:
            self._stack.close()
        else:
            self._stack.__exit__(RuntimeError, RuntimeError("abandoned"), None)


def _video_lines(analyzer, item: Item, options: TaskOptions, skip: frozenset[int]) -> Iterator[dict]:
    from hyperface.inference.draw import draw_faces

    try:
        video = analyzer.video(item.path, smooth=options.smooth, batch_size=options.batch_size, **options.smoothing)
    except Exception as exc:  # noqa: BLE001 -- an unreadable video is that input's failure
        yield error_line(item.path, None, failure_message(item.path, None, exc))
        return
    writer, draw_error, ok = _VideoWriter(item.draw, video.fps), None, False
    try:
        with video:
            for frame in video:
                if frame.error is not None:
                    line = error_line(item.path, frame.index, frame.error)
                else:
                    size = (frame.image.shape[1], frame.image.shape[0])
                    line = result_line(item.path, frame.index, size, frame.faces)
                    if draw_error is None and item.draw is not None:
                        try:
                            writer.write(draw_faces(frame.image, frame.faces))
                        except (OSError, cv2.error) as exc:
                            draw_error = exc
                if frame.index not in skip:
                    yield line
        ok = True
    except Exception as exc:  # noqa: BLE001 -- e.g. a boxes file that names this video ambiguously
        yield error_line(item.path, None, failure_message(item.path, None, exc))
    finally:
        try:
            writer.close(ok and draw_error is None)
        except (OSError, cv2.error) as exc:
            draw_error = draw_error or exc
    if ok and draw_error is not None:
        yield error_line(item.path, None, f"{item.draw}: cannot write the drawn video ({_reason(draw_error)})")
