"""Labels of a candidate box by its overlap with the annotated faces (HyperFace section 2).

| task                  | labelled when the IoU with the best-matching face is |
|-----------------------|-------------------------------------------------------|
| detection             | > pos_iou: face (1); < neg_iou: non-face (0); else ignored |
| landmarks, visibility | > landmark_iou                                        |
| pose, gender, pose class | > attr_iou                                         |

A candidate that covers most of another annotated face than the one it is matched to is dropped:
it is neither a clean sample of its own face nor a clean non-face. So is a non-face candidate that
contains the whole of its best-matching face (a loose box around it, IoU below ``neg_iou``): a
non-face sample never shows a whole face. Landmarks are stored relative to
the candidate box: ``a = (x - cx) / w``, ``b = (y - cy) / h``. Each task carries a mask; a face
whose source lacks a label (no gender, a point the point set cannot provide, no pose) leaves it
masked, and masked values are 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hyperface.boxes import box_iou
from hyperface.data.records import FaceRecord
from hyperface.data.shards import POSE_SOURCES
from hyperface.points import convert_points, get_point_set
from hyperface.pose import PNP_POINTS, pose_from_landmarks

__all__ = [
    "LabelOptions",
    "Assignment",
    "FaceTargets",
    "overlaps",
    "face_coverage",
    "assign_labels",
    "face_targets",
    "to_relative",
    "to_pixels",
    "fill_labels",
    "WHOLE_FACE",
]

logger = logging.getLogger("hyperface.data")

WHOLE_FACE = 0.95  # share of a face's points (or box) that counts as containing the whole face


@dataclass(frozen=True)
class LabelOptions:
    """Overlap thresholds (the paper's defaults; the study used about 0.1 for ``neg_iou``)."""

    pos_iou: float = 0.5
    neg_iou: float = 0.35
    landmark_iou: float = 0.35
    attr_iou: float = 0.5
    contain_fraction: float = 0.5  # drop a candidate covering more than this share of another face

    def __post_init__(self) -> None:
        for name in ("pos_iou", "neg_iou", "landmark_iou", "attr_iou", "contain_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.neg_iou > self.pos_iou:
            raise ValueError(f"neg_iou ({self.neg_iou}) must not exceed pos_iou ({self.pos_iou})")


@dataclass(frozen=True)
class Assignment:
    """Per candidate: matched face (-1: none), IoU with it, and which labels it may carry."""

    face: np.ndarray       # (K,) int64
    iou: np.ndarray        # (K,) float64
    detection: np.ndarray  # (K,) int8: 1 face, 0 non-face, -1 ignored
    landmarks: np.ndarray  # (K,) bool
    attributes: np.ndarray  # (K,) bool: pose and gender
    dropped: np.ndarray    # (K,) bool: covers another annotated face


def overlaps(candidates: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU matrix (K, F) of candidate and face boxes (:func:`hyperface.boxes.box_iou`)."""
    return box_iou(candidates, boxes)


def face_coverage(candidates: np.ndarray, faces: Sequence[FaceRecord]) -> np.ndarray:
    """(K, F): share of each face inside each candidate.

    For a face with landmarks, the share of its finite points inside the box; otherwise the share
    of its box's area.
    """
    cand = np.asarray(candidates, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(cand), len(faces)))
    for j, face in enumerate(faces):
        pts = None
        if face.landmarks is not None:
            pts = face.landmarks[np.all(np.isfinite(face.landmarks), axis=1)]
        if pts is not None and len(pts):
            inside = ((pts[None, :, 0] >= cand[:, None, 0]) & (pts[None, :, 0] <= cand[:, None, 2])
                      & (pts[None, :, 1] >= cand[:, None, 1]) & (pts[None, :, 1] <= cand[:, None, 3]))
            out[:, j] = inside.mean(axis=1)
        else:
            b = face.box
            area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
            iw = np.clip(np.minimum(cand[:, 2], b[2]) - np.maximum(cand[:, 0], b[0]), 0, None)
            ih = np.clip(np.minimum(cand[:, 3], b[3]) - np.maximum(cand[:, 1], b[1]), 0, None)
            out[:, j] = iw * ih / area
    return out


def assign_labels(candidates: np.ndarray, faces: Sequence[FaceRecord],
                  options: LabelOptions = LabelOptions()) -> Assignment:
    """Match each candidate to its best-overlapping face and decide its labels (see module doc)."""
    cand = np.asarray(candidates, dtype=np.float64).reshape(-1, 4)
    k = len(cand)
    if not faces:
        return Assignment(np.full(k, -1, dtype=np.int64), np.zeros(k), np.zeros(k, dtype=np.int8),
                          np.zeros(k, dtype=bool), np.zeros(k, dtype=bool), np.zeros(k, dtype=bool))
    iou_all = overlaps(cand, np.stack([f.box for f in faces]))
    face = iou_all.argmax(axis=1) if k else np.zeros(0, dtype=np.int64)
    iou = iou_all[np.arange(k), face] if k else np.zeros(0)
    detection = np.full(k, -1, dtype=np.int8)
    detection[iou > options.pos_iou] = 1
    detection[iou < options.neg_iou] = 0
    cover = face_coverage(cand, faces)
    own = cover[np.arange(k), face] if k else np.zeros(0)
    if k:
        cover[np.arange(k), face] = 0.0  # for the contain rule only *other* faces count
    dropped = (cover > options.contain_fraction).any(axis=1)
    # A non-face never contains a whole face, even its own (a loose box around it).
    dropped |= (detection == 0) & (own >= WHOLE_FACE)
    return Assignment(face.astype(np.int64), iou, detection, iou > options.landmark_iou,
                      iou > options.attr_iou, dropped)


@dataclass(frozen=True)
class FaceTargets:
    """One face's labels in source pixels for the target point set, computed once per face."""

    landmarks: np.ndarray        # (P, 2) pixels, 0 where unlabelled
    landmarks_mask: np.ndarray   # (P,) labelled and visible
    visibility: np.ndarray       # (P,) 0/1
    visibility_mask: np.ndarray  # (P,) the source says whether the point is visible
    landmarks5: np.ndarray       # (5, 2) pixels
    landmarks5_mask: np.ndarray  # (5,)
    pose: np.ndarray             # (3,) degrees (roll, pitch, yaw)
    pose_source: int             # index into POSE_SOURCES
    gender: int
    gender_mask: bool
    pose_class: int = 0          # MTFL's 5-way head-pose class 1..5; 0 = none


def _pose_class(face: FaceRecord) -> int:
    """The record's pose class if it is one of MTFL's 1..5, else 0 (the label column's "none")."""
    return int(face.pose_class) if face.pose_class is not None and 1 <= face.pose_class <= 5 else 0


def _convert(face: FaceRecord, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points in ``target`` (NaN-free, 0 where absent), whether each is labelled+visible, labelled."""
    n = get_point_set(target).num_points
    zeros = (np.zeros((n, 2)), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    if face.landmarks is None:
        return zeros
    try:
        pts, vis = convert_points(face.landmarks, face.visibility, face.point_set, target)
        _, labelled = convert_points(face.landmarks, None, face.point_set, target)
    except ValueError:
        return zeros  # no conversion from this point set: every target point unlabelled
    finite = np.all(np.isfinite(pts), axis=1)
    labelled = labelled & finite
    pts = np.where(labelled[:, None], pts, 0.0)
    return pts, vis & labelled, labelled


def face_targets(face: FaceRecord, point_set: str, image_size: tuple[int, int]) -> FaceTargets:
    """Labels of ``face`` for ``point_set``; pose from the record, else PnP on 68 points, else none.

    ``image_size`` is the source image's (width, height), the camera PnP assumes.
    """
    pts, pts_mask, labelled = _convert(face, point_set)
    if face.visibility is not None and face.landmarks is not None:
        visibility = pts_mask.astype(np.float32)
        visibility_mask = labelled.copy()
    else:
        visibility = np.zeros(len(pts), dtype=np.float32)
        visibility_mask = np.zeros(len(pts), dtype=bool)
    p5, p5_mask, _ = _convert(face, "five")

    pose = np.zeros(3)
    pose_source = POSE_SOURCES.index("none")
    if face.pose is not None and np.all(np.isfinite(face.pose)):
        pose, pose_source = np.asarray(face.pose, dtype=np.float64), POSE_SOURCES.index("annotated")
    elif (face.point_set == "ibug68" and face.landmarks is not None
          and np.all(np.isfinite(face.landmarks[list(PNP_POINTS)]))):
        try:
            pose = pose_from_landmarks(face.landmarks, image_size)
            pose_source = POSE_SOURCES.index("pnp")
        except ValueError as exc:  # degenerate points: leave pose unlabelled
            logger.debug("no PnP pose: %s", exc)
    gender_ok = face.gender is not None and face.gender in (0, 1)
    return FaceTargets(pts, pts_mask, visibility, visibility_mask, p5, p5_mask, pose, pose_source,
                       int(face.gender) if gender_ok else 0, bool(gender_ok), _pose_class(face))


def to_relative(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Pixels -> candidate-relative ``((x - cx) / w, (y - cy) / h)``."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    p = np.asarray(points, dtype=np.float64)
    return (p - [(x0 + x1) / 2, (y0 + y1) / 2]) / [x1 - x0, y1 - y0]


def to_pixels(rel: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_relative`."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    r = np.asarray(rel, dtype=np.float64)
    return r * [x1 - x0, y1 - y0] + [(x0 + x1) / 2, (y0 + y1) / 2]


def fill_labels(row: np.ndarray, box: np.ndarray, assignment: Assignment, k: int,
                targets: FaceTargets | None) -> None:
    """Fill one zeroed row of :func:`hyperface.data.shards.label_dtype` for candidate ``k``.

    ``targets`` are the matched face's (None on an image without faces). Unlabelled values stay 0.
    """
    row["box"] = box
    row["iou"] = assignment.iou[k]
    row["face"] = assignment.face[k]
    det = int(assignment.detection[k])
    row["detection_mask"] = det >= 0
    row["detection"] = max(det, 0)
    if targets is None:
        return
    if assignment.landmarks[k]:
        m = targets.landmarks_mask
        row["landmarks"] = np.where(m[:, None], to_relative(targets.landmarks, box), 0.0)
        row["landmarks_mask"] = m
        row["visibility"] = np.where(targets.visibility_mask, targets.visibility, 0.0)
        row["visibility_mask"] = targets.visibility_mask
        m5 = targets.landmarks5_mask
        row["landmarks5"] = np.where(m5[:, None], to_relative(targets.landmarks5, box), 0.0)
        row["landmarks5_mask"] = m5
    if assignment.attributes[k]:
        if targets.pose_source != POSE_SOURCES.index("none"):
            row["pose"] = targets.pose
            row["pose_mask"] = True
            row["pose_source"] = targets.pose_source
        if targets.gender_mask:
            row["gender"] = targets.gender
            row["gender_mask"] = True
        row["pose_class"] = targets.pose_class
