"""The plain record every dataset reader produces: one image (or video frame) and its faces.

Coordinates are pixels of the image as decoded to RGB (x right, y down); boxes are
(x0, y0, x1, y1); pose is (roll, pitch, yaw) in degrees in the convention of :mod:`hyperface.pose`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["GENDERS", "FaceRecord", "ImageRecord", "box_from_points"]

GENDERS = ("male", "female")  # index = class label used by datasets, models and losses


def box_from_points(points: np.ndarray, visibility: np.ndarray | None = None) -> np.ndarray:
    """Tight (x0, y0, x1, y1) box of the finite (and, if given, visible) points."""
    pts = np.asarray(points, dtype=np.float64)
    keep = np.all(np.isfinite(pts), axis=1)
    if visibility is not None:
        keep &= np.asarray(visibility, dtype=bool)
    if not keep.any():
        raise ValueError("no usable point to fit a box to")
    sel = pts[keep]
    return np.array([sel[:, 0].min(), sel[:, 1].min(), sel[:, 0].max(), sel[:, 1].max()])


@dataclass(frozen=True)
class FaceRecord:
    """One annotated face. Fields a source does not annotate are None.

    ``gender`` is an index into :data:`GENDERS`; ``pose_class`` is MTFL's 1-5 class
    (1 left profile ... 5 right profile) where a source has only that.
    """

    box: np.ndarray
    landmarks: np.ndarray | None = None
    point_set: str | None = None
    visibility: np.ndarray | None = None
    pose: np.ndarray | None = None
    gender: int | None = None
    pose_class: int | None = None
    attributes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", np.asarray(self.box, dtype=np.float64).reshape(4))
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float64)
            if lm.ndim != 2 or lm.shape[1] != 2:
                raise ValueError(f"landmarks must be N x 2, got shape {lm.shape}")
            if self.point_set is None:
                raise ValueError("landmarks need a point_set name")
            object.__setattr__(self, "landmarks", lm)
        if self.visibility is not None:
            object.__setattr__(self, "visibility", np.asarray(self.visibility, dtype=bool))
        if self.pose is not None:
            object.__setattr__(self, "pose", np.asarray(self.pose, dtype=np.float64).reshape(3))


@dataclass(frozen=True)
class ImageRecord:
    """An image (or one frame of a video) with the faces annotated in it.

    ``group`` keys the train/validation split: every record of one image, or one video, shares it.
    ``all_faces_annotated`` says whether a region with no annotated face may be taken as non-face
    (true for detection datasets and negative folders, false for single-face crops).
    """

    image: Path
    faces: tuple[FaceRecord, ...]
    source: str
    group: str
    frame: int | None = None
    all_faces_annotated: bool = False

    @property
    def key(self) -> str:
        """A unique name for this image or frame, e.g. for logs and output files."""
        return f"{self.image}#{self.frame}" if self.frame is not None else str(self.image)
