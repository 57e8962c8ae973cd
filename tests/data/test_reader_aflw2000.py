"""AFLW2000-3D reader on generated .mat files (scipy.io.savemat) in the dataset's layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.io

from hyperface.data.readers import open_dataset
from hyperface.data.readers.aflw2000 import Aflw2000Reader


def _mat(path: Path, *, pitch=0.1, yaw=-0.4, roll=0.2, invisible=(0, 6, 12), **override) -> dict:
    pt2d = np.stack([np.arange(21) + 10.0, np.arange(21) + 30.0])
    pt2d[:, list(invisible)] = -1
    pt3d = np.stack([np.linspace(5, 60, 68), np.linspace(8, 70, 68), np.zeros(68)])
    data = {"Pose_Para": np.array([[pitch, yaw, roll, 1.0, 2.0, 3.0, 0.001]]), "pt2d": pt2d, "pt3d_68": pt3d,
            "roi": np.array([[0, 0, 100, 100]])}
    data.update(override)
    data = {k: v for k, v in data.items() if v is not None}
    scipy.io.savemat(str(path), data)
    return data


def test_pose_points_visibility_and_68_points(tmp_path, gen):
    _mat(tmp_path / "image00002.mat")
    gen.image(tmp_path / "image00002.jpg", size=(450, 450))
    (record,) = list(Aflw2000Reader(tmp_path))
    face = record.faces[0]
    # Pose_Para = pitch, yaw, roll (radians) -> (roll, pitch, yaw) degrees.
    np.testing.assert_allclose(face.pose, [math.degrees(0.2), math.degrees(0.1), math.degrees(-0.4)])
    assert face.point_set == "aflw21" and face.landmarks.shape == (21, 2)
    assert face.visibility.sum() == 18 and not face.visibility[[0, 6, 12]].any()
    assert np.isnan(face.landmarks[0]).all()
    np.testing.assert_array_equal(face.landmarks[1], [11, 31])
    lm68 = face.attributes["landmarks68"]
    assert lm68.shape == (68, 2)
    np.testing.assert_allclose(face.box, [5, 8, 60, 70])  # tight box of the 68 points
    assert record.group == "image00002.jpg"


def test_bad_mat_files_are_reported_and_skipped(tmp_path, gen):
    _mat(tmp_path / "good.mat")
    _mat(tmp_path / "nopt2d.mat", pt2d=None)
    _mat(tmp_path / "shape.mat", pt2d=np.zeros((2, 19)))
    _mat(tmp_path / "nan.mat", Pose_Para=np.array([[np.nan, 0, 0, 0, 0, 0, 0]]))
    _mat(tmp_path / "huge.mat", Pose_Para=np.array([[0, 1e300, 0, 0, 0, 0, 0]]))  # degrees would overflow
    (tmp_path / "junk.mat").write_bytes(b"MATLAB? no")
    _mat(tmp_path / "noimage.mat")
    for name in ("good", "nopt2d", "shape", "nan", "huge", "junk"):
        gen.image(tmp_path / f"{name}.jpg")
    reader = open_dataset(f"aflw2000:{tmp_path}")
    assert [r.group for r in reader] == ["good.jpg"]
    problems = {Path(p.path).name: p.message for p in reader.problems}
    assert set(problems) == {"nopt2d.mat", "shape.mat", "nan.mat", "huge.mat", "junk.mat", "noimage.mat"}
    assert "pt2d" in problems["nopt2d.mat"] and "2 x 21" in problems["shape.mat"]
    assert "Pose_Para" in problems["nan.mat"] and "no image" in problems["noimage.mat"]
    assert "within one turn" in problems["huge.mat"]
