"""Self-occlusion: which of a face's 68 points its own head hides at a given pose.

No face in the pool says which landmarks are visible, but a turned head hides its far side: past
about 25 degrees of yaw the far jaw line goes behind the cheek, and looking down hides the chin's
underside. As 300W-LP labels its profile faces, the rule comes from a generic 3D face: each iBUG 68
point lies on an ellipsoid head (:data:`NORMALS68`, the surface normal under each point of
:data:`hyperface.alignment.MEAN_SHAPE68`), the pose turns the normals, and a point is hidden when its
normal faces away from the camera by more than ``margin`` degrees past the silhouette. The margin
keeps the silhouette's own points visible: 300-W annotates the outline that the camera sees.

:func:`label_self_occlusion` turns that into visibility labels on a training sample that has 68
labelled points and a pose label (the PnP pose of 300-W faces); occluders painted afterwards
(:mod:`hyperface.train.occlusion`) only hide more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from hyperface.alignment import MEAN_SHAPE68
from hyperface.points import PointSet, get_point_set
from hyperface.pose import pose_to_rotation

__all__ = ["HEAD_AXES", "NORMALS68", "self_occluded", "label_self_occlusion"]

#: Half-axes of the generic head in :data:`MEAN_SHAPE68`'s units (the alignment window side): width
#: at the ears, height from the eyes' level, depth from the face's front to the head's centre.
HEAD_AXES = (0.42, 0.60, 0.45)


def _normals(shape: np.ndarray, axes: tuple[float, float, float]) -> np.ndarray:
    """Unit outward normals (camera-style frame: x right, y down, z away) under each 2D point."""
    w, h, d = axes
    x, y = shape[:, 0], shape[:, 1] - 0.05  # the ellipsoid's centre at the nose, between eyes and mouth
    inside = np.clip(1.0 - (x / w) ** 2 - (y / h) ** 2, 1e-4, None)
    z = d * (1.0 - np.sqrt(inside))  # the front surface, 0 at the centre of the face
    n = np.stack([x / w**2, y / h**2, (z - d) / d**2], axis=1)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _symmetric(shape: np.ndarray) -> np.ndarray:
    """The mean of a 68-point shape and its mirror image: a generic head is symmetric."""
    mirror = shape[np.asarray(get_point_set("ibug68").flip_permutation)] * [-1.0, 1.0]
    return (shape + mirror) / 2


#: (68, 3) outward unit normals of the generic head under each iBUG 68 point, frontal pose.
NORMALS68 = _normals(_symmetric(np.asarray(MEAN_SHAPE68, dtype=np.float64)), HEAD_AXES)


def self_occluded(pose: np.ndarray, margin: float = 15.0) -> np.ndarray:
    """(68,) bool: iBUG 68 points that the head itself hides at ``pose`` (roll, pitch, yaw degrees).

    A point is hidden when its turned normal points away from the camera by more than ``margin``
    degrees beyond the silhouette (a normal at 90 degrees to the line of sight).
    """
    turned = NORMALS68 @ pose_to_rotation(np.asarray(pose, dtype=np.float64)).T
    return turned[:, 2] > math.sin(math.radians(margin))


def label_self_occlusion(sample: Mapping[str, Any], point_set: PointSet | str | None,
                         margin: float = 15.0) -> dict[str, Any]:
    """A copy of ``sample`` whose labelled iBUG 68 points get visibility labels from its pose label.

    Applies to samples with ``pose_mask`` set and labelled 68 points (others come back unchanged):
    every labelled point gets ``visibility_mask`` True, and ``visibility`` 0 where the head hides it
    or where the source already said it is invisible.
    """
    out = dict(sample)
    ps = get_point_set(point_set) if isinstance(point_set, str) else point_set
    if ps is None or ps.name != "ibug68" or not bool(np.any(sample.get("pose_mask", False))):
        return out
    labelled = np.asarray(sample.get("landmarks_mask", np.zeros(ps.num_points, bool)), dtype=bool)
    if not labelled.any():
        return out
    n = ps.num_points
    old_vis = np.asarray(sample.get("visibility", np.ones(n)), dtype=np.float32)
    old_mask = np.asarray(sample.get("visibility_mask", np.zeros(n, bool)), dtype=bool)
    seen = np.where(old_mask, old_vis > 0.5, True) & ~self_occluded(sample["pose"], margin)
    out["visibility"] = np.where(labelled, seen, old_vis).astype(np.float32)
    out["visibility_mask"] = labelled | old_mask
    return out
