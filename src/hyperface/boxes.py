"""Box operations on numpy arrays: area, IoU, the share of a box inside another, non-maximum suppression.

One owner for the box arithmetic of inference, data preparation and evaluation, without PyTorch (an
inference install has none). Boxes are (x0, y0, x1, y1) float arrays of shape (N, 4); an inverted
box has area 0. Non-maximum suppression is OpenCV's (``cv2.dnn.NMSBoxes``): a box is dropped when
its IoU with a better-scoring kept box exceeds the threshold, as torchvision's ``nms`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["as_boxes", "box_area", "box_size", "box_iou", "inside_share", "scale_boxes", "nms", "batched_nms"]


def as_boxes(boxes: ArrayLike) -> np.ndarray:
    """``boxes`` as a float64 (N, 4) array ((0, 4) for an empty input)."""
    arr = np.asarray(boxes, dtype=np.float64)
    return np.zeros((0, 4)) if arr.size == 0 else arr.reshape(-1, 4)


def box_area(boxes: ArrayLike) -> np.ndarray:
    """Areas of (N, 4) boxes (0 for an inverted box)."""
    b = as_boxes(boxes)
    return np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)


def box_size(boxes: ArrayLike) -> np.ndarray:
    """A face's size as detectors are trained on it: the square root of its box's area (0 if inverted)."""
    return np.sqrt(box_area(boxes))


def scale_boxes(boxes: ArrayLike, factor: float) -> np.ndarray:
    """(N, 4) boxes enlarged ``factor`` times about their centres (a crop's context around a box)."""
    b = as_boxes(boxes)
    c = (b[:, :2] + b[:, 2:]) / 2
    half = (b[:, 2:] - b[:, :2]) * (factor / 2)
    return np.concatenate([c - half, c + half], axis=1)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)


def box_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """(N, M) intersection over union of two box lists (0 where both boxes are empty)."""
    a, b = as_boxes(a), as_boxes(b)
    inter = _intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def inside_share(boxes: ArrayLike) -> np.ndarray:
    """(N, N): share ``[i, j]`` of box j's area that lies inside box i (0 for an empty box j)."""
    b = as_boxes(boxes)
    area = np.broadcast_to(box_area(b)[None, :], (len(b), len(b)))
    inter = _intersection(b, b)
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def _ranks(scores: np.ndarray) -> list[float]:
    """Scores as ranks n .. 1 (best first, ties in index order): OpenCV wants scores > 0 as float32."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[order] = np.arange(len(scores), 0, -1, dtype=np.float32)
    return ranks.tolist()


def _nms(b: np.ndarray, s: np.ndarray, groups: np.ndarray | None, iou_threshold: float) -> np.ndarray:
    """OpenCV's suppression of the boxes with an area; empty boxes are all kept, as torchvision keeps them (their
    IoU is NaN there, never above the threshold; OpenCV takes two empty boxes for equal and drops one)."""
    has_area = box_area(b) > 0
    if has_area.all():  # the usual case: OpenCV's answer is the result, best first (the ranks are distinct)
        return _opencv_nms(b, s, groups, iou_threshold) if len(b) > 1 else np.zeros(1, dtype=np.int64)
    solid, keep = np.flatnonzero(has_area), np.flatnonzero(~has_area)
    if len(solid):
        keep = np.concatenate([keep, solid[_opencv_nms(b[solid], s[solid], None if groups is None else groups[solid],
                                                       iou_threshold)]])
    return keep[np.argsort(-s[keep], kind="stable")]


def _opencv_nms(b: np.ndarray, s: np.ndarray, groups: np.ndarray | None, iou_threshold: float) -> np.ndarray:
    """``cv2.dnn.NMSBoxes`` (per group: ``NMSBoxesBatched``) on boxes that all have an area: the indices
    kept, best first."""
    rects, ranks = _xywh(b).tolist(), _ranks(s)
    if groups is None or groups.min() == groups.max():
        kept = cv2.dnn.NMSBoxes(rects, ranks, 0.0, float(iou_threshold))
    else:
        kept = cv2.dnn.NMSBoxesBatched(rects, ranks, groups.tolist(), 0.0, float(iou_threshold))
    return np.asarray(kept, dtype=np.int64).reshape(-1)


def nms(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by non-maximum suppression, best score first."""
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    return _nms(b, s, None, iou_threshold)


def batched_nms(boxes: ArrayLike, scores: ArrayLike, groups: ArrayLike | Sequence[int],
                iou_threshold: float) -> np.ndarray:
    """Indices kept by non-maximum suppression within each group (image, level), best score first."""
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    g = np.asarray(groups, dtype=np.int64).reshape(-1)
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    return _nms(b, s, g, iou_threshold)
