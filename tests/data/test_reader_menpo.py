"""menpo folders (.pts and/or .ljson) and the ljson format: (y, x) order, null points, versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hyperface.data.readers import open_dataset
from hyperface.data.readers.menpo import LjsonReader, MenpoReader, parse_ljson


def _ljson_v3(path: Path, points_xy: np.ndarray, nulls=(), extra_group=True) -> Path:
    pts = [[float(y), float(x)] for x, y in points_xy]
    for i in nulls:
        pts[i] = [None, None]
    groups = {"LJSON": {"landmarks": {"points": pts, "connectivity": [[0, 1]]},
                        "labels": [{"label": "jaw", "mask": list(range(17))}]}}
    if extra_group:
        groups["pupils"] = {"landmarks": {"points": [[5.0, 6.0], [7.0, 8.0]], "connectivity": []}, "labels": []}
    path.write_text(json.dumps({"version": 3, "groups": groups}))
    return path


def test_ljson_points_are_y_x_and_nulls_become_invisible(tmp_path, gen):
    pts = gen.points(68, offset=(30, 10))
    _ljson_v3(tmp_path / "face.ljson", pts, nulls=(5, 60))
    points, visibility, others = parse_ljson(tmp_path / "face.ljson")
    assert points.shape == (68, 2)
    np.testing.assert_allclose(points[0], [30, 10])  # x, y after the swap
    assert np.isnan(points[5]).all() and np.isnan(points[60]).all()
    assert visibility.sum() == 66 and not visibility[5] and not visibility[60]
    np.testing.assert_allclose(others["pupils"], [[6, 5], [8, 7]])

    gen.image(tmp_path / "face.png")
    (record,) = list(LjsonReader(tmp_path))
    face = record.faces[0]
    assert face.point_set == "ibug68" and face.visibility.sum() == 66
    assert np.all(np.isfinite(face.box))  # box from the placed points only


def test_ljson_without_nulls_has_no_visibility_and_old_versions_read(tmp_path, gen):
    pts = gen.points(68)
    data = {"version": 2, "landmarks": {"points": [[y, x] for x, y in pts.tolist()], "connectivity": []},
            "labels": []}
    (tmp_path / "old.ljson").write_text(json.dumps(data))
    points, visibility, others = parse_ljson(tmp_path / "old.ljson")
    np.testing.assert_allclose(points, pts)
    assert visibility is None and others == {}


def test_menpo_folder_reads_pts_and_ljson_and_prefers_as_asked(tmp_path, gen):
    gen.pts(tmp_path / "a.pts", gen.points(68, offset=(1, 1)))
    gen.image(tmp_path / "a.jpg")
    _ljson_v3(tmp_path / "b.ljson", gen.points(68, offset=(2, 2)))
    gen.image(tmp_path / "b.png")
    gen.pts(tmp_path / "c.pts", gen.points(68, offset=(3, 3)))
    _ljson_v3(tmp_path / "c.ljson", gen.points(68, offset=(40, 40)))
    gen.image(tmp_path / "c.ppm")
    gen.image(tmp_path / "unannotated.jpg")  # images without annotation are not faces

    reader = MenpoReader(tmp_path)
    records = {r.group: r for r in reader}
    assert reader.problems == []
    assert sorted(records) == ["a.jpg", "b.png", "c.ppm"]
    assert records["c.ppm"].faces[0].box[0] == 3  # the .pts one
    by_ljson = {r.group: r for r in open_dataset(f"menpo:{tmp_path}?prefer=ljson")}
    assert by_ljson["c.ppm"].faces[0].box[0] == 40


def test_one_face_as_pts_and_as_ljson_gives_the_same_points(tmp_path, gen):
    """A .pts file counts pixels from 1, an .ljson file from 0: both read as the same 0-based points."""
    pts = gen.points(68, offset=(12.5, 7.25))
    gen.pts(tmp_path / "f.pts", pts)  # written 1-based, as .pts files are
    _ljson_v3(tmp_path / "f.ljson", pts)
    gen.image(tmp_path / "f.jpg")
    (by_pts,) = list(open_dataset(f"menpo:{tmp_path}?prefer=pts"))
    (by_ljson,) = list(open_dataset(f"menpo:{tmp_path}?prefer=ljson"))
    np.testing.assert_allclose(by_pts.faces[0].landmarks, pts, atol=1e-3)
    np.testing.assert_allclose(by_ljson.faces[0].landmarks, by_pts.faces[0].landmarks, atol=1e-3)


def test_bad_ljson_files_are_reported_and_skipped(tmp_path, gen):
    _ljson_v3(tmp_path / "good.ljson", gen.points(68))
    (tmp_path / "broken.ljson").write_text('{\n"version": 3,\n"groups": {oops}\n}')
    (tmp_path / "short.ljson").write_text(json.dumps({"version": 3, "groups": {"LJSON": {
        "landmarks": {"points": [[1, 2]] * 10}}}}))
    bad_value = {"version": 3, "groups": {"LJSON": {"landmarks": {"points": [[1, 2]] * 67 + [["a", 3]]}}}}
    (tmp_path / "value.ljson").write_text(json.dumps(bad_value))
    for name in ("good", "broken", "short", "value"):
        gen.image(tmp_path / f"{name}.jpg")
    reader = LjsonReader(tmp_path)
    assert [r.group for r in reader] == ["good.jpg"]
    problems = {Path(p.path).name: p for p in reader.problems}
    assert set(problems) == {"broken.ljson", "short.ljson", "value.ljson"}
    assert problems["broken.ljson"].line == 3 and "JSON" in problems["broken.ljson"].message
    assert "10" in problems["short.ljson"].message
    assert "point 67" in problems["value.ljson"].message
