"""The plain record every dataset reader produces: one image (or video frame) and its faces.

Coordinates are pixels of the image as decoded to RGB (x right, y down); boxes are
(x0, y0, x1, y1); pose is (roll, pitch, yaw) in degrees in the convention of :mod:`hyperface.pose`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperface.data.images import SyntheticImage

__all__ = ["GENDERS", "FaceRecord", "ImageRecord", "FaceFault", "box_from_points", "face_fault", "COORD_MARGIN",
           "MIN_SPREAD"]

GENDERS = ("male", "female")  # index = class label used by datasets, models and losses

COORD_MARGIN = 1.0  # a coordinate may lie at most this many image sizes outside the image
MIN_SPREAD = 1.0    # the annotated points must span at least this many pixels in x and in y


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
    annotation: Path | None = None          # the file the face was read from, where it has its own
    lines: tuple[int, ...] | None = None    # line of each landmark in ``annotation`` (1-based)

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
    (true for detection datasets and negative folders, false for single-face crops). ``image`` is a
    file, or a :class:`~hyperface.data.images.SyntheticImage` made in memory (``composite``'s photos).
    """

    image: Path | SyntheticImage
    faces: tuple[FaceRecord, ...]
    source: str
    group: str
    frame: int | None = None
    all_faces_annotated: bool = False

    @property
    def key(self) -> str:
        """A unique name for this image or frame, e.g. for logs and output files."""
        return f"{self.image}#{self.frame}" if self.frame is not None else str(self.image)


@dataclass(frozen=True)
class FaceFault:
    """Why a face is unusable; ``point`` is the landmark index at fault, where one is."""

    message: str
    point: int | None = None


def _outside_margin(xy: np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray:
    w, h = size
    return ((xy[..., 0] < -margin * w) | (xy[..., 0] > (1 + margin) * w)
            | (xy[..., 1] < -margin * h) | (xy[..., 1] > (1 + margin) * h))


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _landmark_fault(face: FaceRecord, size: tuple[int, int] | None, margin: float) -> FaceFault | None:
    pts = face.landmarks
    if pts is None:
        return None
    bad = np.isinf(pts).any(axis=1)  # NaN is a point not placed (e.g. AFLW's invisible ones)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        return FaceFault(f"point {k + 1} {_fmt(pts[k])} is not a finite coordinate", k)
    finite = np.isfinite(pts).all(axis=1)
    if size is not None:
        far = finite & _outside_margin(pts, size, margin)
        if far.any():
            k = int(np.flatnonzero(far)[0])
            return FaceFault(f"point {k + 1} {_fmt(pts[k])} lies far outside the {size[0]}x{size[1]} image", k)
    sel = pts[finite]
    if len(sel) >= 2:
        extent = sel.max(axis=0) - sel.min(axis=0)
        if extent.min() < MIN_SPREAD:
            return FaceFault(f"degenerate landmarks: the {len(sel)} points span {extent[0]:g} x {extent[1]:g} "
                             f"pixels (all at or near {_fmt(sel[0])})")
    if size is not None and len(sel):
        inside = (sel[:, 0] >= 0) & (sel[:, 0] <= size[0]) & (sel[:, 1] >= 0) & (sel[:, 1] <= size[1])
        if not inside.any():
            return FaceFault(f"all {len(sel)} points lie outside the {size[0]}x{size[1]} image")
    return None


def face_fault(face: FaceRecord, size: tuple[int, int] | None, *, margin: float = COORD_MARGIN) -> FaceFault | None:
    """Why ``face`` is unusable in an image of ``size`` = (width, height) (None: unknown), or None.

    The one check every reader's faces pass (``data check`` and ``prepare`` see the same problems):
    finite coordinates, none further than ``margin`` image sizes outside the image, landmarks that
    span at least :data:`MIN_SPREAD` pixels each way, and a face that overlaps the image at all.
    """
    fault = _landmark_fault(face, size, margin)
    if fault is not None:
        return fault
    box = face.box
    if not np.isfinite(box).all():
        return FaceFault(f"box {_fmt(box)} is not finite")
    if box[2] <= box[0] or box[3] <= box[1]:
        return FaceFault(f"box {_fmt(box)} is empty (zero width or height)")
    if size is not None:
        w, h = size
        if _outside_margin(box.reshape(2, 2), size, margin).any():
            return FaceFault(f"box {_fmt(box)} lies far outside the {w}x{h} image")
        if box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h:
            return FaceFault(f"box {_fmt(box)} lies entirely outside the {w}x{h} image")
    return None
