"""Head pose: the project's one convention, and pose from 68 landmarks by PnP.

Convention (AFLW2000-3D / 300W-LP), used by every reader, label, model output and result:
angles in degrees, ordered (roll, pitch, yaw). Camera frame x right, y down, z away from the camera;
``R`` (face -> camera) = ``Rx(a) Ry(b) Rz(c)`` with yaw = b, pitch = -a, roll = c, so

* yaw > 0: the face turns towards the image left;
* pitch > 0: the subject looks up;
* roll > 0: clockwise on screen (the eye on the image right is lower).

A horizontal flip negates roll and yaw.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from hyperface.arrays import as_float_array

__all__ = [
    "POSE_ORDER",
    "MODEL3D",
    "PNP_POINTS",
    "rotation_to_pose",
    "pose_to_rotation",
    "pose_from_landmarks",
    "flip_pose",
    "rotate_pose",
    "wrap_degrees",
]

POSE_ORDER = ("roll", "pitch", "yaw")

# Generic 3D face in the camera-style frame (y down, z away): nose tip, chin, outer eye corners
# 36 and 45, mouth corners 48 and 54.
MODEL3D = np.array(
    [(0, 0, 0), (0, 330, 65), (-225, -170, 135), (225, -170, 135), (-150, 150, 125), (150, 150, 125)],
    dtype=np.float64,
)
PNP_POINTS = (30, 8, 36, 45, 48, 54)


def rotation_to_pose(rotation: np.ndarray) -> np.ndarray:
    """Decompose a face-to-camera rotation into (roll, pitch, yaw) degrees."""
    r = np.asarray(rotation, dtype=np.float64)
    b = math.asin(float(np.clip(r[0, 2], -1.0, 1.0)))
    a = math.atan2(-r[1, 2], r[2, 2])
    c = math.atan2(-r[0, 1], r[0, 0])
    return np.degrees(np.array([c, -a, b]))


def pose_to_rotation(pose: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_to_pose`: (roll, pitch, yaw) degrees -> 3x3 rotation."""
    roll, pitch, yaw = np.radians(np.asarray(pose, dtype=np.float64))
    a, b, c = -pitch, yaw, roll
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def pose_from_landmarks(points68: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(roll, pitch, yaw) degrees of a face from its iBUG 68 points, by SQPnP against ``MODEL3D``.

    ``image_size`` is (width, height): focal length = width, principal point = image centre.
    Raises ``ValueError`` for a wrong shape, non-finite or degenerate points.
    """
    pts = np.asarray(points68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"pose_from_landmarks needs 68 x 2 points, got shape {pts.shape}")
    image_points = pts[list(PNP_POINTS)]
    if not np.all(np.isfinite(image_points)):
        raise ValueError("pose_from_landmarks: the six PnP points must be finite")
    w, h = float(image_size[0]), float(image_size[1])
    camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    try:
        ok, rvec, _ = cv2.solvePnP(MODEL3D, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:  # SQPnP refuses points that (nearly) coincide: a collapsed, tiny face
        raise ValueError("pose_from_landmarks: the six PnP points are degenerate (they nearly coincide)") from None
    if not ok:
        raise ValueError("pose_from_landmarks: solvePnP found no solution")
    rotation, _ = cv2.Rodrigues(rvec)
    return rotation_to_pose(rotation)


def flip_pose(pose: np.ndarray) -> np.ndarray:
    """Pose of the horizontally mirrored face: roll and yaw change sign."""
    out = np.array(pose, dtype=np.float64, copy=True)
    out[..., 0] *= -1
    out[..., 2] *= -1
    return out


def rotate_pose(pose: np.ndarray, degrees: float) -> np.ndarray:
    """Pose of the face after the image is turned ``degrees`` clockwise on screen about the camera axis.

    Exact for a rotation about the principal point (the camera axis): ``R' = Rz(degrees) R``. For a
    face near the image centre, as in a training crop, it is the in-plane rotation augmentation's
    pose label; roll changes by ``degrees``, pitch and yaw only through the Euler order's coupling.
    """
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rotation_to_pose(turn @ pose_to_rotation(pose))


def wrap_degrees(diff: Any) -> Any:
    """Absolute angular difference wrapped to [0, 180]: 358 and -2 are both 2 degrees apart.

    The one definition for evaluation (numpy) and training (torch tensors, kept on their device);
    :func:`hyperface.evaluate.metrics.pose_errors` is the metric built on it.
    """
    d = abs(as_float_array(diff)) % 360.0
    return 180.0 - abs(d - 180.0)
