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

``align_by="pipeline"`` (``prepare --align-by pipeline``) aligns every face instead as the fine landmark
network sees it at inference, by stage two's points (:class:`PipelineAligner`): its labels stay the
face's own, so the network is shown the alignment errors the pipeline really makes.
"""

from __future__ import annotations

import functools
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

__all__ = ["sample_aligned", "Teacher", "model_teacher", "teacher_for", "PipelineAligner", "ALIGN_BY"]

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


@functools.cache
def teacher_for(spec: str) -> Teacher | None:
    """The teacher ``prepare --teacher`` names (``none``, ``bundled`` or a weights file), loaded once per process."""
    return None if spec == "none" else model_teacher(None if spec == "bundled" else spec)


#: What ``prepare --mode aligned`` aligns each face by: its own five points (or the teacher's, for faces
#: without points), or the pipeline's stage-two points for it (:class:`PipelineAligner`).
ALIGN_BY = ("points", "pipeline")


class PipelineAligner:
    """The alignment the fine landmark network gets at inference, for training faces.

    At inference the fine network's crop is aligned by the five points of stage two's 68, and stage two
    errs most on the hard faces (turned far, tilted), where the fine network is weakest too: the fine
    network's NME on faces aligned by their true points is 0.3 point under the pipeline's
    (docs/training.md, "v0.12"), and random perturbations of the same spread cost only 0.07 of it. A
    network trained on perturbed true alignments never sees those correlated errors; one trained on
    crops aligned by stage two's own points, labelled with the true points, does. For each image the
    bundled analyzer without its fine network (stage two unmirrored, as it runs before the fine
    network) finds the faces once; each training face takes the five points of the face found nearest
    its own five (within half their eye distance); a face the analyzer did not find gets stage two on
    its box, and where that disagrees too, its own points (counted in :attr:`counts`, which ``prepare``
    sums shard by shard into its manifest's ``counts.alignment``; logged at debug level). Measured for
    the bundled fine network, it bought nothing (docs/training.md, "The fine network: the pipeline's own
    alignment, ...").
    """

    def __init__(self, weights: str | None = None) -> None:
        from hyperface.inference.analyzer import FLIP_AVERAGE_WITH_FINE, FaceAnalyzer

        # stage two as it runs before the fine network: mirrored or not as the pipeline's default has it
        self.analyzer = FaceAnalyzer(weights, fine=None, flip_average=FLIP_AVERAGE_WITH_FINE["stage_two"], threads=1)
        self.counts = {"found": 0, "box": 0, "own": 0}

    def for_image(self, image: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``locate(own five points (5, 2), face box (4,)) -> five points to align by``, for faces of ``image``;
        the analyzer runs on the image once, at the first face."""
        found: list[np.ndarray] | None = None

        def locate(own: np.ndarray, box: np.ndarray) -> np.ndarray:
            nonlocal found
            if found is None:
                found = _stage_two_fives(self.analyzer(image))
            own = np.asarray(own, dtype=np.float64)
            limit = 0.5 * float(np.linalg.norm(own[1] - own[0]))
            points = _nearest(found, own, limit)
            if points is not None:
                self.counts["found"] += 1
                return points
            given = self.analyzer(image, boxes=np.asarray(box, dtype=np.float32).reshape(1, 4))
            points = _nearest(_stage_two_fives(given), own, limit)
            if points is not None:
                self.counts["box"] += 1
                logger.debug("pipeline alignment: a face the analyzer did not find, aligned by stage two on its box")
                return points
            self.counts["own"] += 1
            logger.debug("pipeline alignment: no stage-two face near the face at %s; aligned by its own points",
                         np.round(own.mean(axis=0), 1))
            return own

        return locate


def _stage_two_fives(faces) -> list[np.ndarray]:
    """Each analysed face's five points (from stage two's 68)."""
    return [five_points(f.landmarks, f.point_set) for f in faces if f.landmarks is not None]


def _nearest(candidates: list[np.ndarray], own: np.ndarray, limit: float) -> np.ndarray | None:
    """The candidate five points nearest ``own`` (mean point distance), if nearer than ``limit``."""
    errors = [float(np.linalg.norm(c - own, axis=1).mean()) for c in candidates]
    return candidates[int(np.argmin(errors))] if errors and min(errors) < limit else None


@functools.cache
def aligner_for(align_by: str) -> PipelineAligner | None:
    """The aligner ``prepare --align-by`` names (one of :data:`ALIGN_BY`; ``points``: none), loaded once per process."""
    return None if align_by == "points" else PipelineAligner()


def sample_aligned(image: np.ndarray, record: ImageRecord, *, point_set: str, crop_size: int, context: float,
                   teacher: Teacher | None = None,
                   aligner: PipelineAligner | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops (M, S, S, 3) and their label rows (M,) of one decoded image, one per usable face.

    Source, image and split columns are the caller's. A face whose five points are degenerate is
    skipped with a warning naming the image. ``aligner``: align by the pipeline's points for each face
    (:class:`PipelineAligner`) rather than its own (or the teacher's).
    """
    h, w = image.shape[:2]
    locate = None if aligner is None else aligner.for_image(image)
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
        if locate is not None:
            points5 = locate(points5, np.asarray(face.box, dtype=np.float64))
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
