"""Self-occlusion: which of a face's 68 points its own head hides at a given pose.

No face in the pool says which landmarks are visible, but a turned head hides its far side: past
about 25 degrees of yaw the far jaw line goes behind the cheek, and looking down hides the chin's
underside. As 300W-LP labels its profile faces, the rule comes from a generic 3D face: each iBUG 68
point lies on an ellipsoid head (:data:`hyperface.head.NORMALS68`, the surface normal under each point
of the mean 300-W face), the pose turns the normals, and a point is hidden when its normal faces away
from the camera by more than ``margin`` degrees past the silhouette. The margin
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

from hyperface.head import HEAD_AXES, NORMALS68
from hyperface.points import PointSet, get_point_set
from hyperface.pose import pose_to_rotation

__all__ = ["HEAD_AXES", "NORMALS68", "self_occluded", "label_self_occlusion"]


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
