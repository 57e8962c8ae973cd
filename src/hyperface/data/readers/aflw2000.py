"""AFLW2000-3D: ``NAME.jpg`` + ``NAME.mat`` per face (pose, 21 points with visibility, 68 points).

From each ``.mat`` (hyperface.md section 6): ``Pose_Para[0][:3]`` = pitch, yaw, roll in radians,
already in the evaluation convention's signs, stored as (roll, pitch, yaw) degrees; ``pt2d`` 2 x 21
in AFLW feature order with -1 for an invisible point (NaN and visibility False here); ``pt3d_68``
3 x 68 whose x, y (image pixels) are kept as ``attributes["landmarks68"]`` (68 x 2). The record's
landmarks are the 21 points; its box is the tight box of the 68 points (they cover the whole face,
occluded side included), or of the visible 21 points when ``pt3d_68`` is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.readers._files import ImageIndex
from hyperface.data.readers.base import DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord, box_from_points
from hyperface.data.sandbox import isolated

__all__ = ["Aflw2000Reader", "read_aflw2000_mat"]


class MatError(ValueError):
    """A ``.mat`` file that lacks a field or has one of the wrong shape."""


def _floats(mat: dict, key: str) -> np.ndarray:
    """Field ``key`` as a float64 array; MatError when it holds text, structs or cells instead of numbers."""
    try:
        return np.asarray(mat[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise MatError(f"{key} is not an array of numbers") from None


def _loadmat(path: str) -> dict:
    """``scipy.io.loadmat`` of ``path`` (run in the parser process: it crashes on some damaged files)."""
    import scipy.io  # a training extra: only this reader needs it

    return scipy.io.loadmat(path)


def read_aflw2000_mat(path: str | Path) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]:
    """(pose (roll, pitch, yaw) degrees or None, points (21, 2), visibility (21,), points68 or None)."""
    try:
        mat = isolated(_loadmat, str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises many types (MatReadError, struct/zlib errors) on bad files
        raise MatError(f"cannot read .mat file ({type(exc).__name__}: {exc})") from None
    if "pt2d" not in mat:
        raise MatError("no pt2d field (the 2 x 21 points)")
    pt2d = _floats(mat, "pt2d")
    if pt2d.shape == (21, 2):
        pt2d = pt2d.T
    if pt2d.shape != (2, 21):
        raise MatError(f"pt2d has shape {pt2d.shape}, expected 2 x 21")
    points = pt2d.T.copy()
    visibility = ~np.all(points == -1, axis=1)
    if not np.all(np.isfinite(points[visibility])):
        raise MatError("pt2d has a non-finite coordinate")
    points[~visibility] = np.nan

    pose = None
    if "Pose_Para" in mat:
        para = _floats(mat, "Pose_Para").reshape(-1)
        if para.size < 3 or not np.all(np.abs(para[:3]) <= 2 * np.pi):  # NaN fails too
            raise MatError(f"Pose_Para {para[:3]} does not start with three angles in radians (within one turn)")
        pitch, yaw, roll = para[:3]
        pose = np.degrees([roll, pitch, yaw])

    points68 = None
    if "pt3d_68" in mat:
        pt3d = _floats(mat, "pt3d_68")
        if pt3d.shape != (3, 68):
            raise MatError(f"pt3d_68 has shape {pt3d.shape}, expected 3 x 68")
        if not np.all(np.isfinite(pt3d[:2])):
            raise MatError("pt3d_68 has a non-finite coordinate")
        points68 = pt3d[:2].T.copy()
    return pose, points, visibility, points68


class Aflw2000Reader(DatasetReader):
    """A folder (searched recursively) of AFLW2000-3D ``NAME.mat`` files next to ``NAME.jpg``."""

    format = "aflw2000"
    description = "AFLW2000-3D NAME.jpg + NAME.mat: pose, 21 points with visibility, 68 points"
    folder_only = True

    def _records(self) -> Iterator[ImageRecord]:
        images = ImageIndex()
        for mat in self.list_files(self.path, (".mat",)):
            try:
                pose, points, visibility, points68 = read_aflw2000_mat(mat)
                box = box_from_points(points68) if points68 is not None else box_from_points(points, visibility)
            except MatError as exc:
                self.report(mat, str(exc))
                continue
            except ValueError as exc:  # no visible point to fit a box to
                self.report(mat, str(exc))
                continue
            image = images.find(mat)
            if image is None:
                self.report(mat, f"no image next to it (looked for {mat.stem}.jpg or another image suffix)")
                continue
            if self.check_image(image) is None:
                continue
            attributes = {"landmarks68": points68} if points68 is not None else {}
            face = FaceRecord(box=box, landmarks=points, point_set="aflw21", visibility=visibility, pose=pose,
                              attributes=attributes)
            yield ImageRecord(image=image, faces=(face,), source=self.source,
                              group=image.relative_to(self.path).as_posix())
