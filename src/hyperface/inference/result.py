"""The plain result of face analysis: one :class:`Face` per face found.

Coordinates are pixels of the input image as decoded to RGB (x right, y down); pose is
(roll, pitch, yaw) in degrees in the convention of :mod:`hyperface.pose`. A task the model was not
trained for is ``None`` in every face, so a caller can tell "not predicted" from a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Face"]


def _round_list(values: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


@dataclass(frozen=True)
class Face:
    """One face: box, detection score, landmarks and, where the model predicts them, visibility,
    head pose and gender.

    ``box`` is (x0, y0, x1, y1); ``landmarks`` is (N, 2) in the order of ``point_set`` (see
    :mod:`hyperface.points`); ``visibility`` (N,) is the predicted probability that each point is
    visible; ``pose`` is (roll, pitch, yaw) degrees; ``gender`` is "male" or "female" and
    ``gender_probability`` the probability of that answer. ``sources`` says which stage gave each
    output (``{"landmarks": "stage2", "box": "stage1", ...}``; see :mod:`hyperface.inference.stage_two`).
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None
    point_set: str | None = None
    visibility: np.ndarray | None = None
    pose: np.ndarray | None = None
    gender: str | None = None
    gender_probability: float | None = None
    sources: dict[str, str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", np.asarray(self.box, dtype=np.float64).reshape(4))
        object.__setattr__(self, "score", float(self.score))
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", np.asarray(self.landmarks, dtype=np.float64).reshape(-1, 2))
        if self.visibility is not None:
            object.__setattr__(self, "visibility", np.asarray(self.visibility, dtype=np.float64).reshape(-1))
        if self.pose is not None:
            object.__setattr__(self, "pose", np.asarray(self.pose, dtype=np.float64).reshape(3))
        if self.gender_probability is not None:
            object.__setattr__(self, "gender_probability", float(self.gender_probability))

    @property
    def roll(self) -> float | None:
        return None if self.pose is None else float(self.pose[0])

    @property
    def pitch(self) -> float | None:
        return None if self.pose is None else float(self.pose[1])

    @property
    def yaw(self) -> float | None:
        return None if self.pose is None else float(self.pose[2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists and floats; absent tasks as null)."""
        return {
            "box": _round_list(self.box, 2),
            "score": round(self.score, 5),
            "landmarks": None if self.landmarks is None else _round_list(self.landmarks, 2),
            "point_set": self.point_set,
            "visibility": None if self.visibility is None else _round_list(self.visibility, 4),
            "pose": None if self.pose is None else dict(zip(("roll", "pitch", "yaw"), _round_list(self.pose, 3))),
            "gender": self.gender,
            "gender_probability": None if self.gender_probability is None else round(self.gender_probability, 5),
            "sources": None if self.sources is None else dict(self.sources),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Face:
        """Inverse of :meth:`to_dict` (e.g. to read a ``--json`` output back)."""
        pose = data.get("pose")
        if isinstance(pose, dict):
            pose = [pose["roll"], pose["pitch"], pose["yaw"]]
        return cls(box=data["box"], score=data["score"], landmarks=data.get("landmarks"),
                   point_set=data.get("point_set"), visibility=data.get("visibility"), pose=pose,
                   gender=data.get("gender"), gender_probability=data.get("gender_probability"),
                   sources=data.get("sources"))
