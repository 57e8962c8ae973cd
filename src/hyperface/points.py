"""Landmark point sets, their horizontal-flip permutations and conversions between them.

Three sets are defined: iBUG 68 (``ibug68``), AFLW 21 (``aflw21``) and the 5-point MTFL set
(``five``: eye centre on the image left, the other eye centre, nose tip, mouth corner on the image
left, the other mouth corner). "Left" always means the image left of an upright frontal face.

Conversions are linear maps (each target point is a weighted mean of source points), so the same
matrix converts ground truth, converts predictions, and lets a loss supervise a 68-point output with
5-point labels (``convert_matrix("ibug68", "five") @ pred68``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from hyperface.arrays import is_tensor, namespace

__all__ = [
    "PointSet",
    "POINT_SETS",
    "get_point_set",
    "convert_matrix",
    "convert_points",
    "to_five",
    "FIVE_POINT_BOX_FACTOR",
    "mean_point_error",
]

# The 5-point face box (MTFL points) is a square of half side FIVE_POINT_BOX_FACTOR * max(d_eyes,
# d_em) around the points' mean: the ground-truth box convention of evaluation.md, used by the
# prepared data's boxes and by the box fitted to predicted 5 points.
FIVE_POINT_BOX_FACTOR = 1.1


@dataclass(frozen=True)
class PointSet:
    """A named landmark scheme: point names in order, the index each point takes under a flip, and
    the pair of points whose distance normalises the landmark error (NME); None where the set has no
    NME of its own (it is measured after conversion to another set)."""

    name: str
    names: tuple[str, ...]
    flip_permutation: tuple[int, ...]
    description: str = ""
    normalising_pair: tuple[int, int] | None = None
    #: The face's parts as (name, point indices), for errors told part by part (jaw, brows, ...).
    parts: tuple[tuple[str, tuple[int, ...]], ...] = ()
    _flip_array: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        perm = np.asarray(self.flip_permutation, dtype=np.int64)
        n = len(self.names)
        if perm.shape != (n,) or sorted(perm.tolist()) != list(range(n)):
            raise ValueError(f"point set {self.name!r}: flip permutation is not a permutation of 0..{n - 1}")
        if not np.array_equal(perm[perm], np.arange(n)):
            raise ValueError(f"point set {self.name!r}: flip permutation is not an involution")
        if any(not 0 <= i < n for _, idx in self.parts for i in idx):
            raise ValueError(f"point set {self.name!r}: a part names a point outside 0..{n - 1}")
        object.__setattr__(self, "_flip_array", perm)

    @property
    def num_points(self) -> int:
        return len(self.names)

    def flip(self, points: np.ndarray, image_width: float) -> np.ndarray:
        """Mirror ``points`` (..., N, 2) in pixels about the vertical axis and re-index left/right."""
        out = np.array(points, dtype=np.float64, copy=True)
        out[..., 0] = (image_width - 1) - out[..., 0]
        return out[..., self._flip_array, :]

    def flip_values(self, values: np.ndarray) -> np.ndarray:
        """Re-index per-point values (..., N), e.g. visibility, for a flipped image."""
        return np.asarray(values)[..., self._flip_array]

    def normalising_distance(self, truth: Any) -> Any:
        """Distance between the :attr:`normalising_pair` of ``truth`` (..., N, 2); numpy or torch."""
        if self.normalising_pair is None:
            raise ValueError(f"point set {self.name!r} has no NME of its own; convert it to 'five' first")
        i, j = self.normalising_pair
        return _norm(truth[..., i, :] - truth[..., j, :])


def _norm(diff: Any) -> Any:
    """Euclidean length over the last axis, for numpy arrays and torch tensors alike."""
    if is_tensor(diff):
        return namespace(diff).linalg.vector_norm(diff, dim=-1)
    return np.linalg.norm(diff, axis=-1)


def mean_point_error(pred: Any, truth: Any, mask: Any) -> Any:
    """Mean point-to-point distance over the points where ``mask`` (..., N) is set, per face.

    The numerator of the NME (the denominator is :meth:`PointSet.normalising_distance`); one
    implementation for numpy (evaluation) and torch (training). Unmasked points may hold NaN; a face
    with no masked point gets 0.
    """
    err = _norm(pred - truth)
    total = namespace(err).where(mask, err, 0.0).sum(-1)
    return total / mask.sum(-1).clip(1)


def _pairs_to_permutation(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


_IBUG68_NAMES = (
    tuple(f"jaw_{i}" for i in range(17))
    + tuple(f"brow_left_{i}" for i in range(5))
    + tuple(f"brow_right_{i}" for i in range(5))
    + tuple(f"nose_bridge_{i}" for i in range(4))
    + tuple(f"nose_base_{i}" for i in range(5))
    + tuple(f"eye_left_{i}" for i in range(6))
    + tuple(f"eye_right_{i}" for i in range(6))
    + tuple(f"mouth_outer_{i}" for i in range(12))
    + tuple(f"mouth_inner_{i}" for i in range(8))
)

_IBUG68_FLIP_PAIRS = (
    [(i, 16 - i) for i in range(8)]  # jaw
    + [(17 + i, 26 - i) for i in range(5)]  # brows
    + [(31, 35), (32, 34)]  # nose base
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip
    + [(60, 64), (61, 63), (65, 67)]  # inner lip
)

_AFLW21_NAMES = (
    "LeftBrowLeftCorner", "LeftBrowCenter", "LeftBrowRightCorner",
    "RightBrowLeftCorner", "RightBrowCenter", "RightBrowRightCorner",
    "LeftEyeLeftCorner", "LeftEyeCenter", "LeftEyeRightCorner",
    "RightEyeLeftCorner", "RightEyeCenter", "RightEyeRightCorner",
    "LeftEar", "NoseLeft", "NoseCenter", "NoseRight", "RightEar",
    "MouthLeftCorner", "MouthCenter", "MouthRightCorner", "ChinCenter",
)  # fmt: skip

# 1-based pairs from the AFLW documentation, converted to 0-based.
_AFLW21_FLIP_PAIRS = [(a - 1, b - 1) for a, b in
                      [(1, 6), (2, 5), (3, 4), (7, 12), (8, 11), (9, 10), (13, 17), (14, 16), (18, 20)]]

_FIVE_NAMES = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right")

POINT_SETS: dict[str, PointSet] = {
    "ibug68": PointSet("ibug68", _IBUG68_NAMES, _pairs_to_permutation(68, _IBUG68_FLIP_PAIRS),
                       "iBUG / 300-W 68 points, 0-based (36 and 45 the outer eye corners)",
                       normalising_pair=(36, 45),
                       parts=(("jaw", tuple(range(17))), ("brows", tuple(range(17, 27))),
                              ("nose", tuple(range(27, 36))), ("eyes", tuple(range(36, 48))),
                              ("mouth", tuple(range(48, 68))))),
    "aflw21": PointSet("aflw21", _AFLW21_NAMES, _pairs_to_permutation(21, _AFLW21_FLIP_PAIRS),
                       "AFLW 21 points in feature_id order, with per-point visibility"),
    "five": PointSet("five", _FIVE_NAMES, _pairs_to_permutation(5, [(0, 1), (3, 4)]),
                     "MTFL 5 points: eye centres, nose tip, mouth corners", normalising_pair=(0, 1)),
}


def get_point_set(name: str) -> PointSet:
    """Look up a point set by name; the error lists the known names."""
    try:
        return POINT_SETS[name]
    except KeyError:
        raise ValueError(f"unknown point set {name!r}; known: {', '.join(sorted(POINT_SETS))}") from None


# Each target point is the mean of the listed source points; None = the source has no such point.
_CONVERSIONS: dict[tuple[str, str], list[tuple[int, ...] | None]] = {
    ("ibug68", "five"): [tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)],
    ("ibug68", "aflw21"): [
        (17,), (19,), (21,), (22,), (24,), (26,),
        (36,), tuple(range(36, 42)), (39,), (42,), tuple(range(42, 48)), (45,),
        None, (31,), (30,), (35,), None,
        (48,), (62, 66), (54,), (8,),
    ],  # fmt: skip
    ("aflw21", "five"): [(7,), (10,), (14,), (17,), (19,)],
}


def convert_matrix(source: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Linear map from ``source`` to ``target`` points.

    Returns ``(W, available)``: ``W`` is (M, N) with rows summing to 1 for available target points
    and 0 otherwise, so ``W @ points`` converts (N, 2) points; ``available`` (M,) says which target
    points the source can provide. The arrays are the caller's own (built once per pair of sets, copied
    for each call: every face of a call converts its points).
    """
    w, available = _convert_matrix(source, target)
    return w.copy(), available.copy()


@lru_cache(maxsize=None)
def _convert_matrix(source: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    get_point_set(source)
    tgt = get_point_set(target)
    if source == target:
        n = tgt.num_points
        return np.eye(n), np.ones(n, dtype=bool)
    try:
        rows = _CONVERSIONS[(source, target)]
    except KeyError:
        known = ", ".join(f"{a}->{b}" for a, b in _CONVERSIONS)
        raise ValueError(f"no conversion from {source!r} to {target!r}; known: {known}") from None
    n_src = get_point_set(source).num_points
    w = np.zeros((tgt.num_points, n_src))
    available = np.zeros(tgt.num_points, dtype=bool)
    for i, idx in enumerate(rows):
        if idx is not None:
            w[i, list(idx)] = 1.0 / len(idx)
            available[i] = True
    return w, available


def convert_points(points: np.ndarray, visibility: np.ndarray | None, source: str,
                   target: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert (N, 2) points and their visibility from ``source`` to ``target``.

    Points the source lacks come back as NaN and invisible; a derived point is visible only when
    every source point it is made from is.
    """
    w, available = convert_matrix(source, target)
    pts = np.asarray(points, dtype=np.float64)
    vis = np.ones(len(pts), dtype=bool) if visibility is None else np.asarray(visibility, dtype=bool)
    out = w @ np.nan_to_num(pts)
    out[~available] = np.nan
    # A target point is visible when all its contributing source points are.
    contributes = w > 0
    out_vis = available & ~np.any(contributes & ~vis[None, :], axis=1)
    return out, out_vis


def to_five(points: np.ndarray | None, point_set: str | None) -> np.ndarray:
    """A face's five points (eye centres, nose tip, mouth corners, (5, 2) float64) from its landmarks in
    any point set; NaN where they cannot be had: no landmarks, an unknown set, a missing source point."""
    none = np.full((5, 2), np.nan)
    if points is None or point_set is None:
        return none
    pts = np.asarray(points, dtype=np.float64)
    try:
        five, _ = convert_points(pts, None, point_set, "five")
    except (KeyError, ValueError):
        return none
    w, _ = convert_matrix(point_set, "five")
    five[(w != 0) @ ~np.isfinite(pts).all(axis=1)] = np.nan  # made from a missing point: missing, not 0
    return five
