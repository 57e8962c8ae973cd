"""A generic 3D head under the mean 300-W face: where each iBUG 68 point sits in depth.

No face in the pool has 3D points. As 300W-LP does for its profiles, a generic head stands in: the
mean 300-W face (:data:`hyperface.alignment.MEAN_SHAPE68`, made left-right symmetric) laid on the
front of an ellipsoid whose half-axes are :data:`HEAD_AXES`. Two things are read from it: which points
a turned head hides (:mod:`hyperface.train.self_occlusion`, from the surface normals) and how a face's
points move when the head turns (:mod:`hyperface.data.turning`, from the surface points).

Units are :data:`~hyperface.alignment.MEAN_SHAPE68`'s (the alignment window's side), in the
camera-style frame of :mod:`hyperface.pose` (x right, y down, z away from the camera), frontal pose.
"""

from __future__ import annotations

import numpy as np

from hyperface.alignment import MEAN_SHAPE68
from hyperface.points import get_point_set
from hyperface.pose import MODEL3D

__all__ = ["HEAD_AXES", "HEAD_CENTRE", "HEAD68", "NORMALS68"]

#: Half-axes of the generic head: width at the ears, height from the eyes' level, depth from the
#: face's front to the head's centre.
HEAD_AXES = (0.42, 0.60, 0.45)

#: The ellipsoid's centre: at the nose's height (between eyes and mouth), ``depth`` behind the face.
HEAD_CENTRE = np.array([0.0, 0.05, HEAD_AXES[2]])


def _symmetric(shape: np.ndarray) -> np.ndarray:
    """The mean of a 68-point shape and its mirror image: a generic head is symmetric."""
    mirror = shape[np.asarray(get_point_set("ibug68").flip_permutation)] * [-1.0, 1.0]
    return (shape + mirror) / 2


def _surface(shape: np.ndarray, axes: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(points, unit outward normals), each (N, 3): the ellipsoid's front surface under each 2D point."""
    w, h, d = axes
    x, y = shape[:, 0], shape[:, 1] - HEAD_CENTRE[1]
    inside = np.clip(1.0 - (x / w) ** 2 - (y / h) ** 2, 1e-4, None)
    z = d * (1.0 - np.sqrt(inside))  # the front surface, 0 at the centre of the face
    n = np.stack([x / w**2, y / h**2, (z - d) / d**2], axis=1)
    return np.stack([shape[:, 0], shape[:, 1], z], axis=1), n / np.linalg.norm(n, axis=1, keepdims=True)


def _lower_face_depth(points: np.ndarray) -> np.ndarray:
    """``points`` with the lower face set back: a face is not an ellipsoid below the nose.

    On the ellipsoid the mouth corners sit nearly as far forward as the nose tip; on a face they sit
    about as far back as the eye corners (:data:`hyperface.pose.MODEL3D`, the PnP face). Points below
    the nose's base go back by up to the depth that puts the mouth corners at MODEL3D's, growing with
    their distance from the middle (the lips' centre and the chin stay).
    """
    out = points.copy()
    eyes, nose, corners, base = out[[36, 45]], out[30], out[[48, 54]], out[33]
    model_scale = np.linalg.norm(eyes[1, :2] - eyes[0, :2]) / np.linalg.norm(MODEL3D[3, :2] - MODEL3D[2, :2])
    want = MODEL3D[4, 2] * model_scale - (corners[:, 2].mean() - nose[2])  # extra depth of the mouth corners
    half = np.abs(corners[:, 0]).mean()
    across = np.minimum(np.abs(out[:, 0]) / half, 1.0) ** 2
    t = np.clip((out[:, 1] - base[1]) / (corners[:, 1].mean() - base[1]), 0.0, 1.0)
    out[:, 2] += want * across * t * t * (3 - 2 * t)  # smoothstep from the nose's base to the mouth's level
    return out


_points, _normal = _surface(_symmetric(np.asarray(MEAN_SHAPE68, dtype=np.float64)), HEAD_AXES)
#: (68, 3) points of the generic head, frontal pose: the ellipsoid's, the lower face set back.
HEAD68 = _lower_face_depth(_points)
#: (68, 3) outward unit normals of the ellipsoid under each point (what self-occlusion reads).
NORMALS68 = _normal
