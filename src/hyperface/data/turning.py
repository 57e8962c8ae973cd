"""Turned heads from frontal ones: a face's 68 points and picture turned in 3D, for training.

300-W's training faces are mostly near-frontal, and the pipeline's landmark failures are the
far-turned ones (docs/training.md). 300W-LP made its profiles the same way ("face profiling",
Zhu et al., CVPR 2016): give each 2D point a depth from a 3D face fitted to it, turn the head, and
warp the picture so that every pixel follows the points near it. Here the 3D face is the project's
generic head (:mod:`hyperface.head`) posed by the face's PnP pose (:func:`hyperface.pose.pose_from_landmarks`):

* the face's points keep their annotated x, y and take the generic head's depth under that pose;
* the head turns about its own centre, by ``yaw`` about its vertical axis and ``pitch`` about its
  horizontal one (the face's own axes, so a tilted face turns about its tilted axes);
* the picture is warped piecewise-affinely over a triangulation of the points, a ring around the
  head's outline (which moves to the turned head's outline: hair and ears follow the head), a fixed
  ring further out and the image border (the background stays put).

The turned points are exactly where the warp moves the annotated pixels, so labels and picture agree
whatever the generic head gets wrong; what it gets wrong is how natural the picture looks, which is
why turns stay moderate and a turn that would fold the picture over itself is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hyperface.data.splits import DEFAULT_VAL_FRACTION, hash64, split_of
from hyperface.fileio import atomic_path
from hyperface.head import HEAD68, HEAD_AXES, HEAD_CENTRE
from hyperface.pose import pose_from_landmarks, pose_to_rotation, rotation_to_pose

__all__ = ["TurnedFace", "TurnPlan", "turn_face", "turn_one", "turn_dataset"]

logger = logging.getLogger("hyperface.data")

_RING = 24            # points on each ring
_HEAD_RING = 1.4      # the moving ring, times the head's outline (the face's own points stay inside it)
_OUTER_RING = 2.2     # the fixed ring, times the head's outline before the turn
_CLEAR = 1.6          # fixed points within this many times the head's outline (before or after) are left out


@dataclass(frozen=True)
class TurnedFace:
    """The warped picture, its 68 points (pixels) and the turned head's pose (roll, pitch, yaw degrees)."""

    image: np.ndarray
    points: np.ndarray
    pose: np.ndarray


def _outline_form(rotation: np.ndarray, scale: float) -> np.ndarray:
    """B (2 x 2): the head's projected outline is u^T B u = 1, u an offset from its projected centre.

    The ellipsoid x^T A x = 1 (A = R D R^T) projects onto the image plane as the ellipse whose matrix
    is the Schur complement of A's depth entry.
    """
    a = rotation @ np.diag(1.0 / (scale * np.asarray(HEAD_AXES)) ** 2) @ rotation.T
    return a[:2, :2] - np.outer(a[:2, 2], a[:2, 2]) / a[2, 2]


def _outline(form: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(N, 2) offsets from the head's projected centre to its outline along ``angles``."""
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return u / np.sqrt(np.einsum("ni,ij,nj->n", u, form, u))[:, None]


def _within(offsets: np.ndarray, form: np.ndarray, times: float) -> np.ndarray:
    """Which ``offsets`` (from the head's projected centre) lie within ``times`` its outline."""
    return np.einsum("ni,ij,nj->n", offsets, form, offsets) <= times**2


def _border(width: int, height: int, per_side: int = 4) -> np.ndarray:
    t = np.linspace(0.0, 1.0, per_side + 1)[:-1]
    w, h = width - 1.0, height - 1.0
    return np.concatenate([np.stack([t * w, np.zeros_like(t)], 1), np.stack([np.full_like(t, w), t * h], 1),
                           np.stack([w - t * w, np.full_like(t, h)], 1), np.stack([np.zeros_like(t), h - t * h], 1)])


def _triangles(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import Delaunay

    return Delaunay(points, qhull_options="QJ").simplices


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def _piecewise_affine(image: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """``image`` warped so that each triangle of ``src`` lands on the same triangle of ``dst``."""
    h, w = image.shape[:2]
    index = np.full((h, w), -1, np.int32)
    for k, tri in enumerate(triangles):
        cv2.fillConvexPoly(index, np.round(dst[tri] * 16).astype(np.int32), k, cv2.LINE_8, 4)
    # the affine map of each triangle, destination -> source: [x y 1] @ maps[k] = source (x, y)
    ones = np.ones((len(triangles), 3, 1))
    d = np.concatenate([dst[triangles], ones], axis=2)
    s = src[triangles]
    maps = np.linalg.solve(d, s).astype(np.float32)  # (T, 3, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    covered = index >= 0
    m = maps[np.where(covered, index, 0)]
    map_x = np.where(covered, xs * m[..., 0, 0] + ys * m[..., 1, 0] + m[..., 2, 0], xs)
    map_y = np.where(covered, xs * m[..., 0, 1] + ys * m[..., 1, 1] + m[..., 2, 1], ys)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def turn_face(image: np.ndarray, points68: np.ndarray, yaw: float, pitch: float = 0.0,
              *, pose: np.ndarray | None = None) -> TurnedFace:
    """``image`` with its face (iBUG 68 points, pixels) turned by ``yaw`` and ``pitch`` degrees.

    Positive ``yaw`` turns the face towards the image left and positive ``pitch`` up, as the pose
    convention's angles (:mod:`hyperface.pose`): a face at yaw 20 turned by 15 ends near 35. ``pose``
    is the face's pose before the turn (default: PnP of its points). Raises ``ValueError`` when the
    turn would fold the picture over itself (too far for this face) or the points are unusable.
    """
    pts = np.asarray(points68, dtype=np.float64)
    if pts.shape != (68, 2) or not np.all(np.isfinite(pts)):
        raise ValueError(f"turn_face needs 68 finite x, y points, got shape {pts.shape}")
    h, w = image.shape[:2]
    before = pose_to_rotation(pose if pose is not None else pose_from_landmarks(pts, (w, h)))
    # the generic head under the face's pose, fitted to its points by a scale and a shift
    head = HEAD68 @ before.T
    hc, pc = head[:, :2] - head[:, :2].mean(0), pts - pts.mean(0)
    scale = float((hc * pc).sum() / (hc * hc).sum())
    if not scale > 0:
        raise ValueError("turn_face: the generic head does not fit these points")
    shift = pts.mean(0) - scale * head[:, :2].mean(0)
    centre = scale * (before @ HEAD_CENTRE)
    centre[:2] += shift
    face3d = np.concatenate([pts, scale * head[:, 2:]], axis=1)
    after = before @ pose_to_rotation(np.array([0.0, pitch, yaw]))
    turn = after @ before.T
    turned = (face3d - centre) @ turn.T + centre
    new_points = turned[:, :2]

    angles = np.linspace(0.0, 2 * np.pi, _RING, endpoint=False)
    form_before, form_after = _outline_form(before, scale), _outline_form(after, scale)
    ring_before = centre[:2] + _HEAD_RING * _outline(form_before, angles)
    ring_after = centre[:2] + _HEAD_RING * _outline(form_after, angles)
    # the background stays put: the image border and a ring well outside the head, less any point the
    # moving ring could reach
    fixed = np.concatenate([centre[:2] + _OUTER_RING * _outline(form_before, angles), _border(w, h)])
    clear = ~(_within(fixed - centre[:2], form_before, _CLEAR) | _within(fixed - centre[:2], form_after, _CLEAR))
    inside = (fixed[:, 0] >= 0) & (fixed[:, 0] <= w - 1) & (fixed[:, 1] >= 0) & (fixed[:, 1] <= h - 1)
    fixed = fixed[clear & inside]
    src = np.concatenate([pts, ring_before, fixed])
    dst = np.concatenate([new_points, ring_after, fixed])
    triangles = _triangles(src)
    a_src, a_dst = _signed_areas(src, triangles), _signed_areas(dst, triangles)
    on_face = (triangles < 68).any(axis=1)  # a thin background triangle at the border may flip harmlessly
    if np.any((np.sign(a_src) != np.sign(a_dst)) & (np.abs(a_src) > 1e-6) & on_face):
        raise ValueError(f"turn_face: turning by yaw {yaw:g}, pitch {pitch:g} folds this face's picture over itself")
    keep = (np.abs(a_src) > 1e-6) & (np.abs(a_dst) > 1e-6)  # a flat triangle covers no pixel and has no map
    warped = _piecewise_affine(image, src, dst, triangles[keep])
    return TurnedFace(image=warped, points=new_points, pose=rotation_to_pose(after))


@dataclass(frozen=True)
class TurnPlan:
    """How ``turn_dataset`` turns each face: ``copies`` turned copies, each turned away from frontal by
    a yaw drawn from ``yaw`` (degrees, low to high) and a pitch from +-``pitch``; a turn that folds the
    picture is retried ``retries`` times at 0.7x its angles, and dropped below ``min_yaw``."""

    copies: int = 3
    yaw: tuple[float, float] = (15.0, 30.0)
    pitch: float = 10.0
    min_yaw: float = 6.0
    retries: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ValueError(f"copies must be at least 1, got {self.copies}")
        low, high = self.yaw
        if not 0 <= low <= high <= 90:
            raise ValueError(f"yaw must be LOW:HIGH degrees with 0 <= LOW <= HIGH <= 90, got {low:g}:{high:g}")
        if not 0 <= self.pitch <= 45:
            raise ValueError(f"pitch must be within 0-45 degrees, got {self.pitch:g}")
        if self.min_yaw < 0 or self.retries < 0:
            raise ValueError(f"min_yaw and retries must be >= 0, got {self.min_yaw:g} and {self.retries}")


def _turns(pose: np.ndarray, plan: TurnPlan, rng: np.random.Generator) -> list[tuple[float, float]]:
    """The (yaw, pitch) turns of one face: away from frontal (either way for a face within 5 degrees)."""
    turns = []
    for _ in range(plan.copies):
        side = np.sign(pose[2]) if abs(pose[2]) > 5 else rng.choice([-1.0, 1.0])
        turns.append((float(side * rng.uniform(*plan.yaw)), float(rng.uniform(-plan.pitch, plan.pitch))))
    return turns


def turn_one(image: np.ndarray, points68: np.ndarray, yaw: float, pitch: float, plan: TurnPlan,
             *, pose: np.ndarray | None = None) -> TurnedFace | None:
    """:func:`turn_face`, its angles shrunk by 0.7 after each fold; None when no turn of ``plan.min_yaw`` or more is left."""
    for _ in range(plan.retries + 1):
        if abs(yaw) < plan.min_yaw:
            return None
        try:
            return turn_face(image, points68, yaw, pitch, pose=pose)
        except ValueError:
            yaw, pitch = 0.7 * yaw, 0.7 * pitch
    return None


def _with(base: Path, suffix: str) -> Path:
    return base.parent / f"{base.name}{suffix}"


def turn_dataset(specs: list[str], out: str | Path, plan: TurnPlan, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                 log: Callable[[str], None] = logger.warning) -> dict[str, int]:
    """Turned copies of the training faces of ``specs`` (68 points, one face an image) as a pts folder.

    Writes ``OUT/<n>/NNNNNN_<stem>_<k>.jpg`` and ``.pts`` (``n`` the source's position), a dataset for
    ``hyperface prepare --source pts:OUT``. Faces of the validation split (the hash that ``prepare``
    and ``evaluate`` share) are never turned. A copy already on disk is kept (a stopped run resumes);
    each copy's angles come from ``plan.seed`` and the face's own group, so a resumed run writes the
    same copies. A face whose image cannot be read is reported and skipped. Returns counts.
    """
    from hyperface.data.images import ImageReadError, load_image
    from hyperface.data.readers import open_dataset
    from hyperface.data.readers.pts import numbered_stem, write_pts

    out = Path(out)
    counts = {"faces": 0, "copies": 0, "kept": 0, "dropped": 0, "skipped": 0}
    for n, spec in enumerate(specs):
        folder = out / f"{n}"
        folder.mkdir(parents=True, exist_ok=True)
        reader = open_dataset(spec)
        for i, record in enumerate(reader):
            if split_of(record.group, val_fraction) or len(record.faces) != 1:
                continue
            face = record.faces[0]
            if face.landmarks is None or face.point_set != "ibug68":
                continue
            counts["faces"] += 1
            names = [folder / f"{numbered_stem(i, record.image)}_{k}" for k in range(plan.copies)]
            if all(_with(name, ".pts").exists() or _with(name, ".none").exists() for name in names):
                counts["kept"] += plan.copies
                continue
            try:
                rgb = load_image(record.image)
                pose = pose_from_landmarks(face.landmarks, (rgb.shape[1], rgb.shape[0]))
            except (ImageReadError, ValueError) as exc:
                log(f"{record.image}: skipped ({exc})")
                counts["skipped"] += 1
                continue
            rng = np.random.default_rng([plan.seed, hash64(record.group) % 2**32])
            for name, (yaw, pitch) in zip(names, _turns(pose, plan, rng)):
                counts["copies"] += 1
                turned = turn_one(rgb, face.landmarks, yaw, pitch, plan, pose=pose)  # its PnP pose once, not a try
                if turned is None:
                    _with(name, ".none").touch()  # no turn fits this face: remembered for a resumed run
                    counts["dropped"] += 1
                    continue
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(turned.image, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, 92])
                if not ok:
                    raise OSError(f"{_with(name, '.jpg')}: OpenCV could not encode the turned picture")
                with atomic_path(_with(name, ".jpg")) as tmp:
                    tmp.write_bytes(data.tobytes())
                write_pts(_with(name, ".pts"), turned.points)  # last: a copy counts as done once it is there
        for problem in reader.problems:
            log(f"{problem}: skipped")
            counts["skipped"] += 1
    return counts
