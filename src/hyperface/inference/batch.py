"""The one thing that flows through the pipeline: a batch of images with their candidates, then faces.

Each step of :class:`~hyperface.inference.analyzer.FaceAnalyzer` takes a :class:`Batch` and returns
it with its part done: the candidate source fills ``boxes``/``index``/``prior``, stage one turns them
into ``faces``, stage two refines the faces, and :meth:`Batch.to_faces` maps them back to the
original pixels. All work happens on ``images``, scaled so their longer side is at most the
analyzer's ``max_side``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hyperface.data.records import GENDERS
from hyperface.inference.candidates import Candidates
from hyperface.inference.result import Face

__all__ = ["Batch", "OUTPUTS"]

#: The outputs a face carries, in :attr:`Face.sources` order.
OUTPUTS = ("box", "score", "landmarks", "visibility", "pose", "gender")


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


@dataclass
class Batch:
    """Images being analysed (see the module docstring).

    ``scales``: working / original size per axis of each image; ``keys``: the path of each image
    (None for arrays); ``given``: whether the caller gave the image's boxes (then each box is a face);
    ``boxes`` (K, 4) working pixels, ``index`` (K,) image of each, ``prior`` (K,) the candidate source's
    probability of each (NaN: none), ``points`` (K, 5, 2) the five points the source found with each (NaN:
    none; such a candidate is a face as it is, aligned for stage two by them); ``faces``: stage one's and
    two's answers; ``point_set``: of their landmarks; ``sources``: which stage answered each output;
    ``timings``: seconds per stage.
    """

    images: list[np.ndarray]
    scales: list[tuple[float, float]]
    keys: list[str | None]
    given: list[bool]
    boxes: np.ndarray = field(default_factory=_empty_boxes)
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    prior: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))
    faces: Candidates | None = None
    point_set: str | None = None
    sources: dict[str, str] = field(default_factory=lambda: dict.fromkeys(OUTPUTS, "stage1"))
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, started: float) -> None:
        """Add the seconds since ``started`` (``time.perf_counter()``) to ``timings[stage]``."""
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started

    def __len__(self) -> int:
        return len(self.images)

    def add_candidates(self, i: int, boxes: np.ndarray, prior: np.ndarray | None = None,
                       points: np.ndarray | None = None) -> None:
        """Append image ``i``'s candidate ``boxes`` (K, 4, working pixels), their source probability and the
        five points the source found with them (K, 5, 2, working pixels)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        prior = np.full(len(boxes), np.nan, np.float32) if prior is None else np.asarray(prior, np.float32)
        points = (np.full((len(boxes), 5, 2), np.nan, np.float32) if points is None
                  else np.asarray(points, np.float32).reshape(-1, 5, 2))
        ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        self.boxes = np.concatenate([self.boxes, boxes[ok]])
        self.index = np.concatenate([self.index, np.full(int(ok.sum()), i, np.int64)])
        self.prior = np.concatenate([self.prior, prior[ok]])
        self.points = np.concatenate([self.points, points[ok]])

    def to_faces(self) -> list[list[Face]]:
        """One list of :class:`Face` per image, in original-image pixels: faces of given boxes in the
        order given, found faces best first."""
        out: list[list[Face]] = [[] for _ in self.images]
        c = self.faces
        if c is None:
            return out
        for i, (sx, sy) in enumerate(self.scales):
            rows = np.flatnonzero(c.image == i)
            if not self.given[i]:
                rows = rows[np.argsort(-c.score[rows], kind="stable")]
            boxes = _to_original(c.boxes[rows], sx, sy)
            lms = None if c.landmarks is None else _to_original(c.landmarks[rows], sx, sy)
            for j, r in enumerate(rows):
                gender = prob = None
                if c.gender is not None:
                    g = int(np.argmax(c.gender[r]))
                    gender, prob = GENDERS[g], float(c.gender[r, g])
                out[i].append(Face(
                    box=boxes[j], score=float(c.score[r]),
                    landmarks=None if lms is None else lms[j],
                    point_set=self.point_set if lms is not None else None,
                    visibility=None if c.visibility is None else c.visibility[r],
                    pose=None if c.pose is None else c.pose[r],
                    gender=gender, gender_probability=prob,
                    sources={k: v for k, v in self.sources.items()
                             if k in ("box", "score") or getattr(c, k) is not None}))
        return out


def _to_original(xy: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Working pixels -> original pixels (pixel centres at integers), for boxes (..., 4) or points (..., 2)."""
    out = np.array(xy, dtype=np.float64)
    out[..., 0::2] = (out[..., 0::2] + 0.5) / sx - 0.5
    out[..., 1::2] = (out[..., 1::2] + 0.5) / sy - 0.5
    return out
