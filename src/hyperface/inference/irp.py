"""Iterative Region Proposals (HyperFace, section 4 of docs/method.md).

For every candidate scoring at least ``threshold``, a new box is fitted to its predicted landmarks
(:func:`hyperface.inference.boxfit.fit_boxes`, the typical training positive for that face), the
network is run once on all new boxes of all images together, and a candidate takes the new box and
its outputs where they score higher. Repeated ``rounds`` times. A proposal that was placed badly
(half a face, a box twice too large) thus moves onto the face its landmarks point at.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hyperface.inference.boxfit import fit_boxes
from hyperface.inference.candidates import Candidates

__all__ = ["iterative_region_proposals", "Evaluator"]

# (boxes (K, 4), image index (K,)) -> decoded network outputs for those boxes
Evaluator = Callable[[np.ndarray, np.ndarray], Candidates]


def iterative_region_proposals(cands: Candidates, evaluate: Evaluator, rounds: int = 1,
                               threshold: float = 0.5, point_set: str | None = None,
                               min_size: float = 4.0) -> Candidates:
    """Refine candidates scoring >= ``threshold`` for ``rounds`` rounds; returns the same rows.

    Fitted boxes smaller than ``min_size`` pixels or not finite are not tried. A model without
    landmarks leaves the candidates as they are.
    """
    if rounds < 0:
        raise ValueError(f"IRP rounds must be >= 0, got {rounds}")
    if cands.landmarks is None:
        return cands
    for _ in range(rounds):
        sel = np.flatnonzero(cands.score >= threshold)
        if sel.size == 0:
            break
        boxes = fit_boxes(cands.landmarks[sel], point_set)
        wh = boxes[:, 2:] - boxes[:, :2]
        ok = np.isfinite(boxes).all(axis=1) & (wh >= min_size).all(axis=1)
        sel, boxes = sel[ok], boxes[ok]
        if sel.size == 0:
            break
        new = evaluate(boxes, cands.image[sel])
        better = new.score > cands.score[sel]
        if not better.any():
            break
        cands = cands.assign(sel[better], new.select(better))
    return cands
