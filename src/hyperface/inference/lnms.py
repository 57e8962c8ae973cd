"""Landmarks-based non-maximum suppression (HyperFace, section 4 of docs/method.md).

1. Each candidate's box is replaced by the box fitted to its predicted landmarks
   (:func:`hyperface.inference.boxfit.fit_boxes`).
2. Non-maximum suppression on those boxes (per image, :func:`hyperface.boxes.batched_nms`) picks the
   group leaders, best first.
3. A leader's group is every candidate of the same image whose landmark box overlaps the leader's
   by IoU > ``iou_threshold`` (the leader included; a candidate near two leaders serves both).
4. Per group, the ``top_k`` best-scoring members give the face: the element-wise median of their
   landmarks, visibility, pose and gender probabilities (a true median: the mean of the two middle
   values for an even count), the box fitted to the median landmarks, and the leader's score.

5. A face whose box holds most of a higher-scoring face of the same image (at least
   ``contain_threshold`` of the smaller box's area) is dropped: nested boxes overlap too little
   for step 3 (a face box inside one three times its area has an IoU under 0.33), and the larger
   box is then a face-like region around a face (a helmet, a hood, a head and shoulders), not a
   second face.

Everything is one array operation over all groups: an L x K membership matrix, a partial sort of the
masked scores, ``nanmedian`` over the gathered members, an L x L containment matrix.
"""

from __future__ import annotations

import numpy as np

from hyperface.boxes import batched_nms, box_area, box_iou, inside_share
from hyperface.inference.boxfit import fit_boxes
from hyperface.inference.candidates import Candidates

__all__ = ["landmark_nms", "containers", "contained", "DEFAULT_CONTAIN_THRESHOLD"]

#: Share of a higher-scoring face's box inside a larger box that makes the larger box a container.
DEFAULT_CONTAIN_THRESHOLD = 0.8


def containers(boxes: np.ndarray, score: np.ndarray, image: np.ndarray,
               threshold: float = DEFAULT_CONTAIN_THRESHOLD) -> np.ndarray:
    """Boolean mask of the boxes that hold at least ``threshold`` of the area of a smaller,
    higher-scoring box of the same image."""
    inside, area = inside_share(boxes), box_area(boxes)
    holds = (inside >= threshold) & (score[None, :] > score[:, None]) & (area[:, None] > area[None, :])
    holds &= image[None, :] == image[:, None]
    return holds.any(axis=1)


def contained(boxes: np.ndarray, score: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the boxes with at least ``threshold`` of their area inside a larger,
    higher-scoring box (one image): a face's part (eyes, mouth) boxed beside the face."""
    inside, area = inside_share(boxes), box_area(boxes)
    held = (inside >= threshold) & (score[:, None] > score[None, :]) & (area[:, None] > area[None, :])
    return held.any(axis=0)


def _group_median(values: np.ndarray, idx: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Median over the group axis of ``values[idx]`` (L, k, ...) ignoring rows where ``valid`` is False."""
    if bool((valid.sum(axis=1) == 1).all()):  # lone members (the best first in idx): themselves, no sort
        return values[idx[:, 0]]
    gathered = values[idx].astype(np.float32)  # (L, k, ...)
    gathered[~valid] = np.nan
    return np.nanmedian(gathered, axis=1).astype(np.float32)


def landmark_nms(cands: Candidates, iou_threshold: float = 0.3, top_k: int = 5,
                 point_set: str | None = None,
                 contain_threshold: float | None = DEFAULT_CONTAIN_THRESHOLD) -> Candidates:
    """Merge overlapping candidates into faces; returns one row per face, best first per image.

    ``contain_threshold``: drop a face whose box holds this share of a higher-scoring face's box
    (step 5; ``None`` keeps them).
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"L-NMS IoU threshold must be in [0, 1], got {iou_threshold}")
    if top_k < 1:
        raise ValueError(f"L-NMS top_k must be >= 1, got {top_k}")
    if contain_threshold is not None and not 0.0 < contain_threshold <= 1.0:
        raise ValueError(f"L-NMS containment threshold must be in (0, 1] or None, got {contain_threshold}")
    if len(cands) == 0:
        return cands
    boxes = cands.boxes if cands.landmarks is None else fit_boxes(cands.landmarks, point_set)
    leaders = batched_nms(boxes, cands.score, cands.image, iou_threshold)
    member = box_iou(boxes[leaders], boxes) > iou_threshold
    member &= cands.image[leaders][:, None] == cands.image[None, :]
    member[np.arange(len(leaders)), leaders] = True  # a degenerate (zero-area) leader is its own member
    masked = np.where(member, cands.score[None, :], -1.0)
    k = min(top_k, len(cands))
    idx = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(masked, idx, axis=1) >= 0  # scores are probabilities; -1 marks a non-member

    out = Candidates(boxes=boxes[leaders], image=cands.image[leaders], score=cands.score[leaders])
    if cands.landmarks is not None:
        out.landmarks = _group_median(cands.landmarks, idx, valid)
        out.boxes = fit_boxes(out.landmarks, point_set)
    else:
        out.boxes = _group_median(cands.boxes, idx, valid)
    if cands.visibility is not None:
        out.visibility = _group_median(cands.visibility, idx, valid)
    if cands.pose is not None:
        out.pose = _group_median(cands.pose, idx, valid)
    if cands.gender is not None:
        g = _group_median(cands.gender, idx, valid)
        out.gender = g / np.maximum(g.sum(axis=1, keepdims=True), 1e-12)
    if contain_threshold is not None and len(out) > 1:
        out = out.select(~containers(out.boxes, out.score, out.image, contain_threshold))
    return out
