"""Ground-truth face boxes from annotations, shared by the readers and by evaluation.

The rules are those of ``evaluation.md`` ("Matching a predicted face to an annotated face"), so a
box a reader produces and the box evaluation matches against are the same box.
"""

from __future__ import annotations

import numpy as np

from hyperface.points import FIVE_POINT_BOX_FACTOR

__all__ = ["five_point_box", "whole_image_box"]


def five_point_box(points: np.ndarray) -> np.ndarray:
    """Box of a face annotated with the 5 MTFL points (eyes, nose, mouth corners).

    A square centred on the mean of the 5 points with side ``2.2 * max(d_eyes, d_em)`` (2.2 = 2 *
    :data:`~hyperface.points.FIVE_POINT_BOX_FACTOR`), where
    ``d_eyes`` is the distance between the eye centres and ``d_em`` the distance from the eye
    midpoint to the mouth-corner midpoint. ``points`` is (..., 5, 2); returns (..., 4) as
    (x0, y0, x1, y1).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-2:] != (5, 2):
        raise ValueError(f"five_point_box needs (..., 5, 2) points, got shape {pts.shape}")
    centre = pts.mean(axis=-2)
    d_eyes = np.linalg.norm(pts[..., 0, :] - pts[..., 1, :], axis=-1)
    eye_mid = (pts[..., 0, :] + pts[..., 1, :]) / 2
    mouth_mid = (pts[..., 3, :] + pts[..., 4, :]) / 2
    d_em = np.linalg.norm(eye_mid - mouth_mid, axis=-1)
    half = FIVE_POINT_BOX_FACTOR * np.maximum(d_eyes, d_em)
    return np.concatenate([centre - half[..., None], centre + half[..., None]], axis=-1)


def whole_image_box(size: tuple[int, int]) -> np.ndarray:
    """The box of an aligned crop with no annotated box: the whole (width, height) image."""
    w, h = size
    return np.array([0.0, 0.0, float(w), float(h)])
