"""The faces one run of the detector network finds (:class:`Detections`), decoded from its heads, and
the ways several such sets become one: passes concatenated and merged, a face's parts dropped beside
it, and the mirrored view's faces paired with the image's (:func:`flip_merged`).

Why a module of its own: :mod:`hyperface.inference.proposals.detector` decides which images the network
sees and when; these are the plain array operations on what it found, testable on hand-made boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperface.boxes import batched_nms, box_iou, nms
from hyperface.inference.lnms import contained
from hyperface.models.geometry import DETECTOR_STRIDES, cell_centres
from hyperface.points import get_point_set

__all__ = ["Detections", "decode_detections", "concatenated", "merged", "without_parts", "mirrored", "flip_merged"]


@dataclass
class Detections:
    """Faces a detector found: ``boxes`` (K, 4), ``scores`` (K,) and, from a detector with the landmarks
    task, ``points`` (K, 5, 2): eye centres, nose tip, mouth corners (the ``five`` point set); float32."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> Detections:
        return Detections(self.boxes[keep], self.scores[keep], None if self.points is None else self.points[keep])

    def as_float32(self) -> Detections:
        return Detections(self.boxes.astype(np.float32), self.scores.astype(np.float32),
                          None if self.points is None else self.points.astype(np.float32))


def decode_detections(levels: list[tuple[np.ndarray, ...]], threshold: float, nms_iou: float,
                      max_boxes: int, pre_nms: int = 1000) -> Detections:
    """One image's per-level (probability (h, w), distances (4, h, w)[, point offsets (10, h, w)]) ->
    :class:`Detections`, best first, after non-maximum suppression (per level, then across levels)."""
    with_points = all(len(level) > 2 and level[2] is not None for level in levels)
    boxes, scores, level_ids, points = [], [], [], []
    for k, (prob, dist, *rest) in enumerate(levels):
        prob = prob.reshape(-1)
        keep = np.flatnonzero(prob >= threshold)
        if len(keep) > pre_nms:
            keep = keep[np.argsort(-prob[keep], kind="stable")[:pre_nms]]
        if len(keep) == 0:
            continue
        h, w = dist.shape[-2:]
        centre = cell_centres(h, w, DETECTOR_STRIDES[k], cells=keep)
        d = dist.reshape(4, -1)[:, keep].T
        boxes.append(np.concatenate([centre - d[:, :2], centre + d[:, 2:]], axis=1))
        scores.append(prob[keep])
        level_ids.append(np.full(len(keep), k))
        if with_points:
            offsets = rest[0].reshape(-1, 2, h * w)[:, :, keep].transpose(2, 0, 1)  # (K, 5, 2)
            points.append(centre[:, None, :] + offsets)
    if not boxes:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          np.zeros((0, 5, 2), np.float32) if with_points else None)
    found = Detections(np.concatenate(boxes), np.concatenate(scores),
                       np.concatenate(points) if with_points else None)
    found = found.select(batched_nms(found.boxes, found.scores, np.concatenate(level_ids), nms_iou))
    found = found.select(batched_nms(found.boxes, found.scores, np.zeros(len(found), np.int64), nms_iou)[:max_boxes])
    return found.as_float32()


def concatenated(passes: list[Detections]) -> Detections:
    """The faces of several passes in one :class:`Detections` (points only when every pass has them)."""
    with_points = all(p.points is not None for p in passes)
    return Detections(np.concatenate([p.boxes for p in passes]), np.concatenate([p.scores for p in passes]),
                      np.concatenate([p.points for p in passes]) if with_points else None)


def merged(found: Detections, nms_iou: float, contain: float | None) -> Detections:
    """The faces of several passes (:func:`concatenated`) as one set, best first: non-maximum suppression
    at ``nms_iou`` across them, then the ``contain`` rule (a face's part found in one pass beside the face
    found in another)."""
    return without_parts(found.select(nms(found.boxes, found.scores, nms_iou)), contain)


def mirrored(found: Detections, width: int) -> Detections:
    """Faces found on an image ``width`` pixels wide mirrored back (pixel centres at integers): boxes' x
    mirrored and their sides swapped, points' x mirrored and the left and right points swapped."""
    boxes = found.boxes.copy()
    boxes[:, [0, 2]] = (width - 1) - found.boxes[:, [2, 0]]
    points = None if found.points is None else get_point_set("five").flip(found.points, width).astype(np.float32)
    return Detections(boxes, found.scores, points)


def flip_merged(found: Detections, mirrored: Detections, iou: float) -> Detections:
    """One pass's faces on the image (``found``) and on its mirror image (``mirrored``, mapped back) as one
    set, best first. A face of each, overlapping by ``iou`` or more (paired one to one, closest first),
    becomes their score-weighted mean box (and points) with the mean of their probabilities; a face only
    one view found keeps its box with half its probability (the other view's is under the threshold:
    counted as 0). Then non-maximum suppression at ``iou``."""
    overlap = box_iou(found.boxes, mirrored.boxes) if len(found) and len(mirrored) else np.zeros((len(found), 0))
    partner = np.full(len(found), -1)
    taken = np.zeros(len(mirrored), bool)
    rows, cols = np.nonzero(overlap >= iou)
    for k in np.argsort(-overlap[rows, cols], kind="stable"):  # the closest pairs first: either view's order
        i, j = rows[k], cols[k]
        if partner[i] < 0 and not taken[j]:
            partner[i], taken[j] = j, True
    paired = np.flatnonzero(partner >= 0)
    j = partner[paired]
    a, b = found.scores[paired, None], mirrored.scores[j, None]
    mean = Detections((a * found.boxes[paired] + b * mirrored.boxes[j]) / (a + b), (a + b)[:, 0] / 2,
                      None if found.points is None else
                      (a[..., None] * found.points[paired] + b[..., None] * mirrored.points[j]) / (a + b)[..., None])
    alone = [found.select(partner < 0), mirrored.select(~taken)]
    for view in alone:
        view.scores = view.scores / 2
    both = concatenated([mean, *alone])
    return both.select(nms(both.boxes, both.scores, iou)).as_float32()


def without_parts(found: Detections, contain: float | None) -> Detections:
    """``found`` without the boxes that have ``contain`` of their area inside a larger, higher-scoring
    box (a face's eyes or mouth boxed beside the face); as it is when ``contain`` is None."""
    if contain is None or len(found) < 2:
        return found
    return found.select(~contained(found.boxes, found.scores, contain))
