"""Face alignment by five points: a similarity transform onto a canonical template, and back.

Stage two (:mod:`hyperface.inference.stage_two`) and its training data (:mod:`hyperface.data.aligned`)
see a face at a canonical position, scale and angle: the least-squares similarity (rotation, uniform
scale, translation; Umeyama, TPAMI 1991) that takes the face's five points (eye centres, nose tip,
mouth corners, in MTFL order; any point set converts to them) onto a template, as ArcFace-style
recognition models and face-alignment toolkits do.

Geometry. The template is given in *window-relative* coordinates: the aligned window is the square
``[-0.5, 0.5]^2`` (x right, y down), so a template point ``(0, 0)`` sits at the window centre and
``(0.5, 0.5)`` at its bottom-right corner. A stored crop covers the window enlarged ``context``
times about its centre (room for augmentation), as the prepared shards' crops cover their candidate
box (:func:`hyperface.data.shards.relative_to_crop`), so window-relative points are exactly the
shards' candidate-relative landmarks and the training code needs nothing new.

The default template is ArcFace's 112-pixel five-point template, placed in a window chosen so that
99% of the 68 points of 300-W's training faces aligned by it fall inside (measured with
``benchmarks/alignment_window.py``): a 106-px square of ArcFace's 112-px frame centred at (56.5, 78.5),
i.e. shifted down by 22.5 px so that it holds the chin and jaw that ArcFace's own crop cuts, and
less forehead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from hyperface.points import convert_matrix

__all__ = [
    "ARCFACE_112",
    "DEFAULT_TEMPLATE",
    "MEAN_SHAPE68",
    "five_points",
    "similarity_fit",
    "Alignment",
    "align",
]

#: ArcFace's five-point template in its 112 x 112 crop (pixels): eyes, nose tip, mouth corners.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])
_WINDOW_SIDE = 106.0            # pixels of ArcFace's frame
_WINDOW_CENTRE = (56.5, 78.5)   # pixels of ArcFace's frame

#: The default template in window-relative coordinates (see the module docstring).
DEFAULT_TEMPLATE: tuple[tuple[float, float], ...] = tuple(
    (round((x - _WINDOW_CENTRE[0]) / _WINDOW_SIDE, 5), round((y - _WINDOW_CENTRE[1]) / _WINDOW_SIDE, 5))
    for x, y in ARCFACE_112)

#: The mean iBUG-68 face in the same window-relative coordinates: 300-W's LFPW and HELEN training faces
#: (1,675) aligned onto :data:`DEFAULT_TEMPLATE` by their five points and averaged
#: (``benchmarks/alignment_window.py --mean-shape``). Fitted to a face's five (or 21) points it
#: places the parts a point set lacks, e.g. the jaw line that a synthetic face mask follows.
MEAN_SHAPE68: tuple[tuple[float, float], ...] = (
    (-0.382, -0.230), (-0.380, -0.131), (-0.367, -0.031), (-0.345, 0.066), (-0.306, 0.156), (-0.246, 0.235),
    (-0.173, 0.301), (-0.092, 0.354), (0.000, 0.368), (0.091, 0.352), (0.172, 0.298), (0.244, 0.232),
    (0.304, 0.153), (0.343, 0.063), (0.364, -0.035), (0.374, -0.134), (0.378, -0.234), (-0.316, -0.312),
    (-0.267, -0.354), (-0.202, -0.366), (-0.134, -0.356), (-0.071, -0.332), (0.056, -0.335), (0.123, -0.360),
    (0.190, -0.369), (0.255, -0.357), (0.302, -0.317), (-0.005, -0.252), (-0.005, -0.186), (-0.005, -0.121),
    (-0.005, -0.054), (-0.081, -0.010), (-0.044, 0.003), (-0.005, 0.015), (0.034, 0.003), (0.070, -0.010),
    (-0.238, -0.241), (-0.198, -0.266), (-0.147, -0.265), (-0.107, -0.233), (-0.150, -0.223), (-0.200, -0.223),
    (0.095, -0.235), (0.136, -0.268), (0.186, -0.269), (0.226, -0.244), (0.191, -0.226), (0.143, -0.225),
    (-0.149, 0.116), (-0.096, 0.091), (-0.042, 0.079), (-0.006, 0.089), (0.034, 0.079), (0.090, 0.092),
    (0.142, 0.113), (0.092, 0.165), (0.038, 0.189), (-0.005, 0.193), (-0.044, 0.189), (-0.097, 0.167),
    (-0.127, 0.118), (-0.042, 0.113), (-0.006, 0.117), (0.035, 0.112), (0.120, 0.117), (0.035, 0.138),
    (-0.006, 0.143), (-0.043, 0.139),
)


def five_points(points: np.ndarray, point_set: str) -> np.ndarray:
    """The five alignment points (..., 5, 2) of ``points`` (..., N, 2) in ``point_set``."""
    pts = np.asarray(points, dtype=np.float64)
    if point_set == "five":
        return pts
    weights, _ = convert_matrix(point_set, "five")
    return weights @ pts  # (5, N) @ (..., N, 2)


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``target ~ s R source + t`` (Umeyama); returns the 2 x 3 matrix.

    Raises ValueError for non-finite or degenerate (all coincident) source points.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"similarity_fit needs two (K >= 2, 2) point arrays, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("similarity_fit: non-finite points")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    norm = float((s ** 2).sum())  # sum |s|^2
    if norm / len(src) < 1e-12:
        raise ValueError("similarity_fit: the source points coincide")
    # the closed form of Umeyama's solution in the plane (a rotation, never a reflection): the linear part
    # is [[a, -b], [b, a]] with a + ib = sum(conj(s) d) / sum|s|^2, s and d as complex numbers
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / norm
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm
    linear = np.array([[a, -b], [b, a]])
    return np.column_stack([linear, mu_d - linear @ mu_s])


class Alignment:
    """One face's map between image pixels and its aligned crop (``size`` px, window x ``context``).

    ``matrix`` (2 x 3) takes image pixels to crop pixels (pixel centres at integers); window-relative
    coordinates ``r`` and crop pixels ``c`` relate by ``c = size * (0.5 + r / context) - 0.5``.
    """

    def __init__(self, matrix: np.ndarray, size: int, context: float) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
        self.size = int(size)
        self.context = float(context)

    @property
    def angle(self) -> float:
        """Degrees the image content turns clockwise on screen in the crop (the face's roll removed)."""
        return math.degrees(math.atan2(self.matrix[1, 0], self.matrix[0, 0]))

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(math.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    def warp(self, image: np.ndarray) -> np.ndarray:
        """The aligned crop (size x size x C, same dtype) of ``image``; outside the image is black.

        Large reductions are area-averaged first, so a big face does not alias.
        """
        matrix, src = self.matrix, image
        shrink = 1.0 / self.scale
        if shrink > 1.5:
            f = 1.25 / shrink  # keep 1.25 source pixels per crop pixel
            h, w = image.shape[:2]
            nw, nh = max(1, round(w * f)), max(1, round(h * f))
            src = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
            sx, sy = nw / w, nh / h  # image pixel p -> small pixel (p + 0.5) * s - 0.5
            back = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
            matrix = matrix @ back
        out = cv2.warpAffine(src, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.reshape(self.size, self.size, -1) if out.ndim == 2 else out

    def to_relative(self, points: np.ndarray) -> np.ndarray:
        """Image pixels (..., 2) -> window-relative coordinates."""
        p = np.asarray(points, dtype=np.float64)
        crop = p @ self.matrix[:, :2].T + self.matrix[:, 2]
        return ((crop + 0.5) / self.size - 0.5) * self.context

    def to_image(self, relative: np.ndarray) -> np.ndarray:
        """Window-relative coordinates (..., 2) -> image pixels."""
        r = np.asarray(relative, dtype=np.float64)
        crop = self.size * (0.5 + r / self.context) - 0.5
        inv = cv2.invertAffineTransform(self.matrix)
        return crop @ inv[:, :2].T + inv[:, 2]


def align(points5: np.ndarray, size: int, context: float = 1.0,
          template: Sequence[Sequence[float]] = DEFAULT_TEMPLATE) -> Alignment:
    """The :class:`Alignment` that puts ``points5`` (5, 2 image pixels) on ``template``."""
    t = np.asarray(template, dtype=np.float64)
    crop_template = size * (0.5 + t / context) - 0.5
    return Alignment(similarity_fit(points5, crop_template), size, context)
