"""Faces given by the caller: boxes from any other detector, read from a file.

Each box is a face, in the file's order (:attr:`ProposalSource.boxes_are_faces`): the analyzer
refines it by IRP and analyses it with both stages, never drops it by its score nor merges it with
another, as for boxes handed to ``FaceAnalyzer(...)(image, boxes=...)``.

Accepted files (the format is told by the content, never by executing anything):

* JSON object: ``{"IMAGE": [[x0, y0, x1, y1], ...], ...}``;
* JSON list or JSON lines of objects with ``"input"`` (or ``"image"``/``"path"``), optional
  ``"frame"``, and ``"boxes"`` (list of boxes) or ``"faces"`` (each with a ``"box"``): this also
  reads back the ``--json`` output of ``hyperface analyze``;
* text: one box per line, ``IMAGE x0 y0 x1 y1 [score]`` (whitespace or commas; ``#`` comments).
  An image name with spaces can be quoted with double quotes.

``IMAGE`` is matched against the analysed image's path as given, then its resolved path, then its
file name; a video frame is ``PATH#FRAME``. An image with no entry has no faces.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections import defaultdict
from pathlib import Path

import numpy as np

from hyperface.inference.proposals.base import ProposalSource, SourceContext

__all__ = ["BoxesProposals", "read_boxes_file"]

log = logging.getLogger(__name__)


def _box(value, where: str) -> list[float]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: a box must be 4 numbers x0 y0 x1 y1, got {value!r}")
    try:
        box = [float(v) for v in value][:4]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: a box must be 4 numbers x0 y0 x1 y1, got {value!r}") from None
    if len(box) != 4 or not all(np.isfinite(box)):
        raise ValueError(f"{where}: a box must be 4 finite numbers x0 y0 x1 y1, got {value!r}")
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"{where}: box {box} is empty (need x1 > x0 and y1 > y0)")
    return box


def _boxes(value, where: str) -> list[list[float]]:
    """A JSON list of boxes; anything else is a ValueError naming ``where``."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: boxes must be a list of [x0, y0, x1, y1], got {str(value)[:60]!r}")
    return [_box(b, where) for b in value]


def _frame(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: 'frame' must be a whole number, got {str(value)[:60]!r}")
    try:
        return int(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{where}: 'frame' must be a whole number, got {value!r}") from None


def _from_record(rec: dict, where: str, out: dict[str, list]) -> None:
    name = rec.get("input", rec.get("image", rec.get("path")))
    if not isinstance(name, str):
        raise ValueError(f"{where}: an object needs an 'input' (image path) string")
    if rec.get("frame") is not None:
        name = f"{name}#{_frame(rec['frame'], where)}"
    if "boxes" in rec:
        boxes = _boxes(rec["boxes"], where)
    elif "faces" in rec:
        faces = rec["faces"]
        if not isinstance(faces, list) or not all(isinstance(f, dict) and "box" in f for f in faces):
            raise ValueError(f"{where}: 'faces' must be a list of objects with a 'box'")
        boxes = [_box(f["box"], where) for f in faces]
    else:
        raise ValueError(f"{where}: an object needs 'boxes' or 'faces'")
    out[name].extend(boxes)


def _json(text: str, where: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply") from None


def read_boxes_file(path: str | Path) -> dict[str, np.ndarray]:
    """Image name -> boxes (K, 4) from a JSON, JSON-lines or text file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read boxes file ({exc})") from None
    out: dict[str, list] = defaultdict(list)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = _json(text, str(path))
            docs = [(f"{path}", data)]
        except json.JSONDecodeError:  # JSON lines
            docs = []
            for i, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        docs.append((f"{path}:{i}", _json(line, f"{path}:{i}")))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
        for where, doc in docs:
            if isinstance(doc, dict) and not any(k in doc for k in ("input", "image", "path")):
                for name, boxes in doc.items():
                    out[str(name)].extend(_boxes(boxes, f"{where} [{name!r}]"))
            elif isinstance(doc, dict):
                _from_record(doc, where, out)
            elif isinstance(doc, list):
                for j, rec in enumerate(doc):
                    if not isinstance(rec, dict):
                        raise ValueError(f"{where}: item {j} is not an object")
                    _from_record(rec, f"{where} item {j}", out)
            else:
                raise ValueError(f"{where}: expected a JSON object or list")
    else:
        for i, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].replace(",", " ").strip()
            if not line:
                continue
            parts = shlex.split(line)
            if len(parts) < 5:
                raise ValueError(f"{path}:{i}: expected 'IMAGE x0 y0 x1 y1 [score]', got {line!r}")
            out[parts[0]].append(_box(parts[1:5], f"{path}:{i}"))
    return {k: np.asarray(v, dtype=np.float32).reshape(-1, 4) for k, v in out.items()}


class BoxesProposals(ProposalSource):
    """``boxes:FILE``: candidates looked up by image name in a boxes file (or a given dict)."""

    name = "boxes"
    scale_invariant = False
    boxes_are_faces = True

    def __init__(self, source: str | Path | dict[str, np.ndarray]) -> None:
        if isinstance(source, dict):
            self.boxes = {str(k): np.asarray(v, dtype=np.float32).reshape(-1, 4) for k, v in source.items()}
            self.origin = "given boxes"
        else:
            self.boxes = read_boxes_file(source)
            self.origin = str(source)
        self._by_name: dict[str, list[str]] = defaultdict(list)
        for k in self.boxes:
            path, _, frame = k.partition("#")
            self._by_name[Path(path).name + (f"#{frame}" if frame else "")].append(k)

    @classmethod
    def from_spec(cls, arg: str | None, context: SourceContext, **options) -> BoxesProposals:
        if not arg:
            raise ValueError("the boxes candidate source needs a file: 'boxes:path/to/boxes.json'")
        return cls._construct(source=Path(arg), **options)

    def files(self) -> list[str | Path]:
        return [] if self.origin == "given boxes" else [self.origin]

    def lookup(self, key: str | None) -> np.ndarray:
        """Boxes for the image named ``key``; an image with no entry has none."""
        if key is None:
            raise ValueError("the 'boxes' candidate source needs the image's path: analyse a file, or pass "
                             "boxes=... to the analyzer call")
        path, _, frame = key.partition("#")
        suffix = f"#{frame}" if frame else ""
        for k in (key, str(Path(path).resolve()) + suffix):
            if k in self.boxes:
                return self.boxes[k]
        matches = self._by_name.get(Path(path).name + suffix, [])
        if len(matches) == 1:
            return self.boxes[matches[0]]
        if len(matches) > 1:
            raise ValueError(f"{self.origin}: image name {Path(path).name!r} is ambiguous "
                             f"({len(matches)} entries); use full paths")
        log.debug("%s: no boxes for %s", self.origin, key)
        return np.zeros((0, 4), dtype=np.float32)

    def __call__(self, image: np.ndarray, key: str | None = None) -> np.ndarray:
        return self.lookup(key)
