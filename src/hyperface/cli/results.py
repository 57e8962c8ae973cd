"""The JSON lines of ``hyperface analyze``: one object per image or video frame, written as each is done.

Schema, one line per image or frame (:func:`hyperface.analysis_lines.result_line`, the one place that
builds it; ``hyperface serve`` and the Ray path answer with the same object)::

    {"input": PATH, "frame": INT or null, "width": W, "height": H, "faces": [Face.to_dict(), ...]}

An input that failed is ``{"input": PATH, "frame": INT or null, "error": MESSAGE}`` (:func:`error_line`);
a line with ``faces`` *and* ``error`` has its analysis, but one of its outputs (the drawn picture)
could not be written.

Why a partial file: a run over a large collection takes hours, so each line is flushed as soon as it
is known, into ``OUT.partial`` beside ``OUT``; the partial file is renamed to ``OUT`` (atomically) only
when the run ends, so an earlier complete ``OUT`` is never damaged. A run that dies (kill -9, disk
full, Ctrl-C) leaves the partial file, and ``--resume`` continues it: inputs it records are skipped,
and a last line cut short by the kill is dropped and its input analysed again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hyperface import fileio
from hyperface.analysis_lines import error_line, result_line
from hyperface.cli.outputs import STDOUT, UsageError

__all__ = ["result_line", "error_line", "line_key", "partial_path", "Recorded", "read_recorded", "ResultsFile",
           "ResultsWriteError"]


def line_key(line: dict) -> tuple[str, int | None]:
    """(input, frame): what a line is about; each appears once in a run's output."""
    return line["input"], line["frame"]


def partial_path(path: str | Path) -> Path:
    """Where the lines of an unfinished run writing ``path`` are kept: ``path`` + ``.partial``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


@dataclass
class Recorded:
    """The lines an earlier run wrote, for ``--resume``: their (input, frame) keys.

    A video is done when its lines are followed by another input's (its frames were all written
    before the run went on) or when it failed as a whole; ``open_video`` is the input of the last
    line when that line is a frame, whose video may have been cut short.
    """

    keys: set[tuple[str, int | None]] = field(default_factory=set)
    inputs: set[str] = field(default_factory=set)
    open_video: str | None = None
    failures: int = 0  # lines with an "error"

    def __len__(self) -> int:
        return len(self.keys)

    def has_image(self, path: str | Path) -> bool:
        return (str(path), None) in self.keys

    def has_video(self, path: str | Path) -> bool:
        name = str(path)
        return (name, None) in self.keys or (name in self.inputs and name != self.open_video)

    def frames(self, path: str | Path) -> frozenset[int]:
        """The frames of video ``path`` already recorded (its lines are not written again)."""
        name = str(path)
        if name not in self.inputs:
            return frozenset()
        return frozenset(f for n, f in self.keys if n == name and f is not None)


def read_recorded(path: str | Path, complete: bool = False) -> tuple[Recorded, int]:
    """(what ``path`` records, the byte length of its whole lines).

    A last line without its newline (a write cut short by a kill or a full disk) is not counted;
    any other line that is not an object of this schema is a :class:`UsageError` naming the line.
    ``complete``: the file is a finished run's output (no video in it was cut short).
    """
    path = Path(path)
    rec, valid, last = Recorded(), 0, None
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                break
            try:
                line = json.loads(raw)
                key = line_key(line)
                if not isinstance(key[0], str) or not (key[1] is None or isinstance(key[1], int)):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise UsageError(f"{path}:{number}: not a line written by hyperface analyze; remove it, or start "
                                 f"again without --resume") from None
            rec.keys.add(key)
            rec.inputs.add(key[0])
            rec.failures += "error" in line
            last = key
            valid += len(raw)
    if not complete and last is not None and last[1] is not None:
        rec.open_video = last[0]
    return rec, valid


class ResultsWriteError(OSError):
    """The JSON lines cannot be written (disk full, file system gone): the run stops, its lines kept."""


class ResultsFile:
    """Where the JSON lines of a run go: a file (through its partial file), standard output, or nowhere.

    ``target``: a path, :data:`STDOUT` (``-``) or None (no JSON; ``/dev/null`` is the same). ``resume``:
    continue the partial file (or, when there is none, take a finished ``target`` as the record, so
    that only inputs new since then are analysed). Without ``resume`` an existing partial file is a
    :class:`UsageError`: it holds an unfinished run that a new one would throw away.

    Use as a context manager; :meth:`finish` renames the partial file to ``target``. Leaving the
    block without it (an error, Ctrl-C) keeps the partial file for ``--resume``.
    """

    def __init__(self, target: str | Path | None, resume: bool = False) -> None:
        self.stdout = str(target) == STDOUT
        self.target = None if target is None or self.stdout or fileio.is_devnull(target) else Path(target)
        # beside the file a link names: the final rename stays on one file system
        self.partial = None if self.target is None else partial_path(fileio.replaced_path(self.target))
        self.recorded = Recorded()
        self.written = 0  # lines written by this run
        self._seed: Path | None = None  # the file whose valid lines the partial file starts with
        self._valid = 0
        self._fh: IO[str] | None = None
        if self.target is None:
            if resume:
                raise UsageError("--resume needs --json OUT (a file): it continues OUT.partial")
            return
        if self.partial.exists():
            if not resume:
                raise UsageError(f"{self.partial} holds an unfinished run: add --resume to continue it, or delete "
                                 f"it to start again")
            self.recorded, self._valid = read_recorded(self.partial)
            self._seed = self.partial
        elif resume and self.target.exists():
            self.recorded, self._valid = read_recorded(self.target, complete=True)
            self._seed = self.target

    @property
    def where(self) -> str:
        """The file the lines are being written to, for messages."""
        return "standard output" if self.stdout else str(self.partial)

    def __enter__(self) -> ResultsFile:
        if self.stdout:
            self._fh = sys.stdout
        elif self.partial is not None:
            if self._seed is not None and self._seed != self.partial:
                shutil.copyfile(self._seed, self.partial)
            if self._seed is not None:
                os.truncate(self.partial, self._valid)  # drop a line cut short by a kill
                self._fh = open(self.partial, "a", encoding="utf-8")
            else:
                self._fh = open(self.partial, "w", encoding="utf-8")
        return self

    def write(self, line: dict) -> None:
        """Write and flush one line (a kill loses at most the line being written)."""
        if self._fh is None:
            return
        text = json.dumps(line) + "\n"
        if self.stdout:
            self._emit(text)  # a closed pipe raises BrokenPipeError, handled by the entry point
        else:
            try:
                self._emit(text)
            except OSError as exc:
                raise ResultsWriteError(f"cannot write {self.partial} ({exc.strerror or exc})") from None
        self.written += 1

    def _emit(self, text: str) -> None:
        self._fh.write(text)
        self._fh.flush()

    def finish(self) -> None:
        """The run is over: the partial file, synced to disk, becomes ``target``."""
        if self._fh is None or self.stdout:
            return
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            fileio.check_replaceable(self.target)
            fileio.replace(self.partial, fileio.replaced_path(self.target))
        except OSError as exc:
            raise ResultsWriteError(f"cannot write {self.target} ({exc.strerror or exc})") from None

    def __exit__(self, *exc) -> None:
        if self._fh is not None and not self.stdout:
            try:
                self._fh.close()
            except OSError:  # a full disk fails the last flush too; what was written is kept
                pass
            if self._seed is None and self.written == 0:  # nothing to resume: no empty partial file left
                self.partial.unlink(missing_ok=True)
        self._fh = None
