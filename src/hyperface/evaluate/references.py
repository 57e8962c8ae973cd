"""The ground-truth side of evaluation: boxes to match against, landmark targets, pose references.

The rules are those of ``evaluation.md``:

* the box a prediction is matched against is the tight box of a face's 68 points, the MTFL square
  (:func:`hyperface.data.boxes.five_point_box`) of its 5 points, or the whole image for an aligned
  crop with no box (UTKFace); on whole photos annotated with boxes (dlib XML, VOC XML) detection is
  scored against the annotated boxes;
* 68-point ground truth gives the 68-point NME; 5-point ground truth the 5-point NME; a model with
  another point set is converted to the ground truth's set (68 -> 5: eye centres the means of
  36-41 / 42-47, nose 30, mouth corners 48 and 54), or both sides to 5 points when no direct
  conversion exists;
* the pose reference is the annotated angles where present, else the SQPnP pose of the ground-truth
  68 points with the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperface.data.boxes import five_point_box, whole_image_box
from hyperface.data.records import FaceRecord, ImageRecord, box_from_points
from hyperface.points import convert_matrix, convert_points
from hyperface.pose import pose_from_landmarks

__all__ = [
    "BOX_ANNOTATED_FORMATS",
    "WHOLE_IMAGE_FORMATS",
    "record_format",
    "matching_box",
    "detection_box",
    "LandmarkTarget",
    "landmark_target",
    "convert_prediction",
    "pose_reference",
    "pose_bin",
    "POSE_BINS",
]

# Sources whose boxes are drawn by an annotator (detection is scored against them).
BOX_ANNOTATED_FORMATS = frozenset({"dlib", "voc", "aflw", "fddb", "wider"})
# Aligned crops with no box: the face is the whole image.
WHOLE_IMAGE_FORMATS = frozenset({"utkface"})

POSE_BINS = ("frontal", "half-profile", "profile")
# MTFL pose class -> bin: 1/5 profile, 2/4 half profile ("left" / "right"), 3 frontal.
_CLASS_BIN = {1: "profile", 2: "half-profile", 3: "frontal", 4: "half-profile", 5: "profile"}


def record_format(record: ImageRecord) -> str:
    """The reader format of a record (its ``source`` is ``FORMAT:PATH``)."""
    return record.source.split(":", 1)[0].lower()


def matching_box(record: ImageRecord, face: FaceRecord, image_size: tuple[int, int]) -> np.ndarray:
    """The ground-truth box a prediction for ``face`` is matched against (and given, in box mode)."""
    if face.landmarks is not None and face.point_set == "ibug68":
        return box_from_points(face.landmarks)
    if face.landmarks is not None and face.point_set == "five" and np.all(np.isfinite(face.landmarks)):
        return five_point_box(face.landmarks)
    if record_format(record) in WHOLE_IMAGE_FORMATS and len(record.faces) == 1:
        return whole_image_box(image_size)
    return np.asarray(face.box, dtype=np.float64)


def detection_box(record: ImageRecord, face: FaceRecord, image_size: tuple[int, int]) -> np.ndarray:
    """The ground-truth box of ``face`` for detection: the annotated box where an annotator drew
    boxes, else the matching box of its landmarks."""
    if record_format(record) in BOX_ANNOTATED_FORMATS or face.landmarks is None:
        return np.asarray(face.box, dtype=np.float64)
    return matching_box(record, face, image_size)


@dataclass(frozen=True)
class LandmarkTarget:
    """Ground truth to score a model's landmarks against: ``point_set`` is "ibug68" or "five"."""

    point_set: str
    points: np.ndarray


def _visible_points(face: FaceRecord) -> np.ndarray:
    pts = np.array(face.landmarks, dtype=np.float64)
    if face.visibility is not None:
        pts[~np.asarray(face.visibility, dtype=bool)] = np.nan
    return pts


def _to_five(points: np.ndarray, source: str) -> np.ndarray | None:
    if source == "five":
        return points
    try:
        out, ok = convert_points(points, np.all(np.isfinite(points), axis=1), source, "five")
    except ValueError:
        return None
    out[~ok] = np.nan  # a point made from a missing source point is missing, not 0
    return out


def landmark_target(face: FaceRecord, model_point_set: str | None) -> LandmarkTarget | None:
    """The target for a model with ``model_point_set``, or None when the face cannot score it.

    68-point ground truth scores a 68-point model with the 68-point NME; everything else is scored
    on 5 points (the ground truth converted when it has more). None when the ground truth has no
    landmarks, the model none, or the normalising points (outer eye corners / eye centres) are
    missing.
    """
    if face.landmarks is None or face.point_set is None or model_point_set is None:
        return None
    gt = _visible_points(face)
    if face.point_set == "ibug68" and model_point_set == "ibug68":
        if not np.all(np.isfinite(gt[[36, 45]])):
            return None
        return LandmarkTarget("ibug68", gt)
    five = _to_five(gt, face.point_set)
    if five is None or not np.all(np.isfinite(five[:2])) or not np.isfinite(five).all(axis=1).any():
        return None
    try:
        convert_matrix(model_point_set, "five")
    except ValueError:
        return None
    return LandmarkTarget("five", five)


def convert_prediction(points: np.ndarray, model_point_set: str, target: str) -> np.ndarray:
    """A model's (N, 2) landmarks in the target's point set."""
    if model_point_set == target:
        return np.asarray(points, dtype=np.float64)
    out, _ = convert_points(points, None, model_point_set, target)
    return out


def pose_reference(face: FaceRecord, image_size: tuple[int, int]) -> tuple[np.ndarray, str] | None:
    """(roll, pitch, yaw) reference in degrees and where it comes from ("annotated" or "pnp"),
    or None when the face has neither angles nor 68 finite points."""
    if face.pose is not None and np.all(np.isfinite(face.pose)):
        return np.asarray(face.pose, dtype=np.float64), "annotated"
    if face.landmarks is not None and face.point_set == "ibug68":
        try:
            return pose_from_landmarks(face.landmarks, image_size), "pnp"
        except ValueError:
            return None
    return None


def pose_bin(face: FaceRecord) -> str | None:
    """Frontal / half-profile / profile where the data says: MTFL's pose class, or the annotated yaw
    (|yaw| < 30, < 60, else); None otherwise (the PnP pose is only an approximate reference)."""
    if face.pose_class is not None:
        return _CLASS_BIN.get(int(face.pose_class))
    if face.pose is not None and np.isfinite(face.pose[2]):
        yaw = abs(float(face.pose[2]))
        return "frontal" if yaw < 30 else "half-profile" if yaw < 60 else "profile"
    return None
