"""Stage two's training samples: one aligned crop per annotated face (``prepare --mode aligned``).

Each face is aligned by its five points (:mod:`hyperface.alignment`; from its own 68 or 5 annotated
points) and stored as a ``crop_size`` crop of the template window enlarged ``context`` times, in the
same shards and label rows as the candidate crops: the *window* plays the candidate box's part, so
landmarks are window-relative, and the training code (augmentation included) reads both kinds alike.
The training augmentation's scale, shift and rotation then perturb the alignment the way stage one
errs (``benchmarks/stage_one_alignment_error.py`` measures it).

Labels per face: its landmarks (68 points; 5-point faces through ``landmarks5``), pose (annotated or
PnP of the 68 points, turned by the alignment's rotation so that it describes the face as the crop
shows it), gender and MTFL's pose class (a coarse yaw class, kept as it is: the alignment only turns
the face in the image plane). Faces with no points at all (UTKFace, FairFace: gender only) are
aligned by a *teacher*, the stage-one model run on the face's box, exactly as inference aligns
them; without a teacher they are skipped. Detection is never labelled: stage two does not decide face or non-face.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from hyperface.alignment import align, five_points
from hyperface.data.labels import face_targets
from hyperface.data.records import ImageRecord
from hyperface.data.shards import POSE_SOURCES, label_dtype
from hyperface.points import get_point_set
from hyperface.pose import rotate_pose

__all__ = ["sample_aligned", "Teacher", "model_teacher", "teacher_for"]

logger = logging.getLogger("hyperface.data")

#: (image, face box (4,)) -> five points (5, 2) in image pixels, or None when it finds no face there
Teacher = Callable[[np.ndarray, np.ndarray], "np.ndarray | None"]


def model_teacher(weights: str | None = None) -> Teacher:
    """A teacher from a stage-one model (``None``: the bundled one), on the CPU, one face at a time."""
    from hyperface.inference.analyzer import FaceAnalyzer

    # One network call per face: the given box, no IRP round (the box of a face crop is close enough).
    analyzer = FaceAnalyzer(weights, proposals="fast", stage_two=None, threads=1, irp_rounds=0)

    def teach(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        faces = analyzer(image, boxes=np.asarray(box, dtype=np.float32).reshape(1, 4))
        if not faces or faces[0].landmarks is None:
            return None
        return five_points(faces[0].landmarks, faces[0].point_set)

    return teach


_TEACHERS: dict[str, Teacher] = {}


def teacher_for(spec: str) -> Teacher | None:
    """The teacher ``prepare --teacher`` names (``none``, ``bundled`` or a weights file), loaded once per process."""
    if spec == "none":
        return None
    if spec not in _TEACHERS:
        _TEACHERS[spec] = model_teacher(None if spec == "bundled" else spec)
    return _TEACHERS[spec]


def sample_aligned(image: np.ndarray, record: ImageRecord, *, point_set: str, crop_size: int, context: float,
                   teacher: Teacher | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops (M, S, S, 3) and their label rows (M,) of one decoded image, one per usable face.

    Source, image and split columns are the caller's. A face whose five points are degenerate is
    skipped with a warning naming the image.
    """
    h, w = image.shape[:2]
    crops, rows = [], []
    for index, face in enumerate(record.faces):
        if face.attributes.get("ignore"):
            continue
        try:
            targets = face_targets(face, point_set, (w, h))
        except (ValueError, cv2.error) as exc:  # degenerate points (e.g. PnP on coincident points)
            logger.warning("%s: face %d: unusable labels (%s); skipped", record.key, index, exc)
            continue
        if targets.landmarks5_mask.all():
            points5 = targets.landmarks5
        elif teacher is not None and targets.gender_mask:
            points5 = teacher(image, face.box)
            if points5 is None:
                logger.warning("%s: face %d: the teacher found no face in its box; skipped", record.key, index)
                continue
        else:
            continue
        try:
            al = align(points5, crop_size, context)
        except ValueError as exc:
            logger.warning("%s: face %d: cannot align (%s); skipped", record.key, index, exc)
            continue
        row = np.zeros((), dtype=label_dtype(len(targets.landmarks)))
        m = targets.landmarks_mask
        row["landmarks"] = np.where(m[:, None], al.to_relative(targets.landmarks), 0.0)
        row["landmarks_mask"] = m
        row["visibility"] = np.where(targets.visibility_mask, targets.visibility, 0.0)
        row["visibility_mask"] = targets.visibility_mask
        m5 = targets.landmarks5_mask
        row["landmarks5"] = np.where(m5[:, None], al.to_relative(targets.landmarks5), 0.0)
        row["landmarks5_mask"] = m5
        if targets.pose_source != POSE_SOURCES.index("none"):
            row["pose"] = rotate_pose(targets.pose, al.angle)
            row["pose_mask"] = True
            row["pose_source"] = targets.pose_source
        if targets.gender_mask:
            row["gender"] = targets.gender
            row["gender_mask"] = True
        row["pose_class"] = targets.pose_class
        corners = al.to_image(np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]))
        row["box"] = np.concatenate([corners.min(0), corners.max(0)])  # the window's extent in the image
        row["iou"] = 1.0
        row["face"] = index
        crops.append(al.warp(image))
        rows.append(row)
    if not rows:
        n = get_point_set(point_set).num_points
        return np.zeros((0, crop_size, crop_size, 3), dtype=np.uint8), np.zeros(0, dtype=label_dtype(n))
    return np.stack(crops).astype(np.uint8), np.stack(rows)
