"""Landmarks-based non-maximum suppression (HyperFace, section 4 of ../shared/docs/hyperface.md).

1. Each candidate's box is replaced by the box fitted to its predicted landmarks
   (:func:`hyperface.inference.boxfit.fit_boxes`).
2. ``torchvision.ops.batched_nms`` on those boxes (per image) picks the group leaders, best first.
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

Everything is one tensor operation over all groups: an L x K membership matrix, ``topk`` on the
masked scores, ``nanquantile`` over the gathered members, an L x L containment matrix.
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms, box_area, box_iou

from hyperface.inference.boxfit import fit_boxes
from hyperface.inference.candidates import Candidates

__all__ = ["landmark_nms", "containers", "contained", "DEFAULT_CONTAIN_THRESHOLD"]

#: Share of a higher-scoring face's box inside a larger box that makes the larger box a container.
DEFAULT_CONTAIN_THRESHOLD = 0.8


def _inside_share(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(share [i, j] of box j's area inside box i, areas)."""
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)  # (L, L)
    area = box_area(boxes)
    return inter / area.unsqueeze(0).clamp_min(1e-9), area


def containers(boxes: torch.Tensor, score: torch.Tensor, image: torch.Tensor,
               threshold: float = DEFAULT_CONTAIN_THRESHOLD) -> torch.Tensor:
    """Boolean mask of the boxes that hold at least ``threshold`` of the area of a smaller,
    higher-scoring box of the same image."""
    inside, area = _inside_share(boxes)
    holds = (inside >= threshold) & (score.unsqueeze(0) > score.unsqueeze(1)) & (area.unsqueeze(1) > area.unsqueeze(0))
    holds &= image.unsqueeze(0) == image.unsqueeze(1)
    return holds.any(dim=1)


def contained(boxes: torch.Tensor, score: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask of the boxes with at least ``threshold`` of their area inside a larger,
    higher-scoring box (one image): a face's part (eyes, mouth) boxed beside the face."""
    inside, area = _inside_share(boxes)
    held = (inside >= threshold) & (score.unsqueeze(1) > score.unsqueeze(0)) & (area.unsqueeze(1) > area.unsqueeze(0))
    return held.any(dim=0)


def _group_median(values: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Median over the group axis of ``values[idx]`` (L, k, ...) ignoring rows where ``valid`` is False."""
    if bool((valid.sum(dim=1) == 1).all()):  # lone members (the best first in idx): themselves, no sort
        return values[idx[:, 0]]
    gathered = values[idx].clone()  # (L, k, ...)
    gathered[~valid] = float("nan")
    return torch.nanquantile(gathered, 0.5, dim=1)


def landmark_nms(cands: Candidates, iou_threshold: float = 0.3, top_k: int = 5,
                 point_set: str | None = None, contain_threshold: float | None = DEFAULT_CONTAIN_THRESHOLD) -> Candidates:
    """Merge overlapping candidates into faces; returns one row per face, best first per image.

    ``contain_threshold``: drop a face whose box holds this share of a higher-scoring face's box
    (step 5; ``None`` keeps them).
    """
    if len(cands) == 0:
        return cands
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"L-NMS IoU threshold must be in [0, 1], got {iou_threshold}")
    if top_k < 1:
        raise ValueError(f"L-NMS top_k must be >= 1, got {top_k}")
    if contain_threshold is not None and not 0.0 < contain_threshold <= 1.0:
        raise ValueError(f"L-NMS containment threshold must be in (0, 1] or None, got {contain_threshold}")
    boxes = cands.boxes if cands.landmarks is None else fit_boxes(cands.landmarks, point_set)
    leaders = batched_nms(boxes, cands.score, cands.image, iou_threshold)
    member = box_iou(boxes[leaders], boxes) > iou_threshold
    member &= cands.image[leaders].unsqueeze(1) == cands.image.unsqueeze(0)
    member[torch.arange(len(leaders)), leaders] = True  # a degenerate (zero-area) leader is its own member
    masked = torch.where(member, cands.score.unsqueeze(0), torch.full_like(member, -1.0, dtype=cands.score.dtype))
    k = min(top_k, len(cands))
    top, idx = masked.topk(k, dim=1)
    valid = top >= 0  # scores are probabilities; -1 marks a non-member

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
        out.gender = g / g.sum(dim=1, keepdim=True).clamp_min(1e-12)
    if contain_threshold is not None and len(out) > 1:
        out = out.select(~containers(out.boxes, out.score, out.image, contain_threshold))
    return out
