"""Per-face and per-image results of one model on one dataset in one mode, as the runner collects them.

Plain data, no computation: :mod:`hyperface.evaluate.summary` turns them into the reported metrics.
A missed face is NaN (landmark error, pose) or -1 (gender); "not applicable" (no ground truth for
the output, or a model without it) is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hyperface.evaluate.metrics import DetectionMatch

__all__ = ["MODES", "FaceResult", "RunResult"]

MODES = ("full", "box")  # full pipeline (the model finds the face); ground-truth box given


@dataclass
class FaceResult:
    """One annotated face: what it is scored against and what the model said."""

    image: str
    face: int
    nme_set: str | None = None          # "ibug68" | "five": the point set the NME is on
    nme: float | None = None            # NaN = missed
    nme_parts: dict | None = None       # the found face's NME part by part (jaw, brows, ...), where the set has parts
    pose_pred: np.ndarray | None = None  # (3,) degrees, NaN = missed
    pose_ref: np.ndarray | None = None
    pose_source: str | None = None      # "annotated" | "pnp"
    pose_class: int | None = None       # MTFL 1-5
    pose_bin: str | None = None         # frontal / half-profile / profile, where the data says
    gender_true: int | None = None
    gender_pred: int | None = None      # -1 = missed
    groups: dict = field(default_factory=dict)  # who the face is, where the data says: age (years), race

    def to_dict(self) -> dict:
        def arr(a):
            return None if a is None else [None if not np.isfinite(v) else round(float(v), 4) for v in a]

        def num(v):
            return None if v is None or not np.isfinite(v) else round(float(v), 6)

        return {"image": self.image, "face": self.face, "nme_set": self.nme_set, "nme": num(self.nme),
                "nme_parts": None if self.nme_parts is None else {k: num(v) for k, v in self.nme_parts.items()},
                "pose_pred": arr(self.pose_pred), "pose_ref": arr(self.pose_ref), "pose_source": self.pose_source,
                "pose_class": self.pose_class, "pose_bin": self.pose_bin, "gender_true": self.gender_true,
                "gender_pred": self.gender_pred, "groups": dict(self.groups)}


@dataclass
class RunResult:
    """Everything one model produced on one dataset in one mode."""

    model: str
    dataset: str
    mode: str
    images: int = 0
    faces: list[FaceResult] = field(default_factory=list)
    # Whole photos with every face annotated: all reported detections, and those at the model's
    # default operating point.
    detections: list[DetectionMatch] = field(default_factory=list)
    detections_default: list[DetectionMatch] = field(default_factory=list)
    # ... and per annotated face of those photos: (its attributes, its height in pixels, found at the
    # default operating point), so that recall can be told by face size and by a dataset's attributes
    found_faces: list[tuple[dict, float, bool]] = field(default_factory=list)
    score_threshold: float | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
