"""The face box fitted to landmarks, used by IRP (the next candidate) and L-NMS (the output box).

The box follows the ground-truth box convention of the point set (``evaluation.md``, "Matching";
:mod:`hyperface.data.boxes`), which is also the face box the prepared data matched candidates
against: a positive training candidate overlaps this box by IoU >= 0.5 and is centred on it on
average, so a box fitted this way is the typical positive the network was trained on.

* ``ibug68``: the tight box of the 68 points.
* ``five``: a square centred on the mean of the 5 points, side ``2.2 * max(d_eyes, d_em)``
  (:func:`hyperface.data.boxes.five_point_box`).
* ``aflw21``: the 5 MTFL points derived from the 21 (eye centres, nose, mouth corners), then the
  ``five`` rule (the 21 points have no jaw outline to take a tight box of).
* any other set: the tight box of the points.
"""

from __future__ import annotations

import numpy as np

from hyperface.data.boxes import five_point_box
from hyperface.points import convert_matrix

__all__ = ["fit_boxes"]


def fit_boxes(points: np.ndarray, point_set: str | None) -> np.ndarray:
    """Boxes (K, 4) float32 for landmarks (K, N, 2) in image pixels, by the rule of ``point_set``."""
    points = np.asarray(points)
    if points.shape[0] == 0:
        return np.zeros((0, 4), np.float32)
    if point_set == "five":
        return five_point_box(points).astype(np.float32)
    if point_set == "aflw21":
        w, _ = convert_matrix("aflw21", "five")
        return five_point_box(np.einsum("mn,knd->kmd", w, points)).astype(np.float32)
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1).astype(np.float32)
