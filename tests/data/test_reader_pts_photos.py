"""pts-photos reader: one .pts per face, grouped into one record per photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hyperface.data.readers import open_dataset


def _write_pts(path, offset):
    """68 0-based points, written 1-based as .pts files are."""
    pts = np.random.default_rng(int(offset)).uniform(0, 30, size=(68, 2)) + offset
    path.write_text("version: 1\nn_points: 68\n{\n" + "\n".join(f"{x:.2f} {y:.2f}" for x, y in pts + 1) + "\n}\n")
    return pts


def test_pts_photos_groups_the_faces_of_a_photo(tmp_path):
    Image.new("RGB", (200, 160)).save(tmp_path / "group.jpg")  # holds both faces
    Image.new("RGB", (100, 100)).save(tmp_path / "single.png")
    a = _write_pts(tmp_path / "group_1.pts", 10)
    b = _write_pts(tmp_path / "group_2.pts", 120)
    _write_pts(tmp_path / "single.pts", 40)
    _write_pts(tmp_path / "orphan_3.pts", 5)
    reader = open_dataset(f"pts-photos:{tmp_path}")
    records = {r.image.name: r for r in reader}
    assert sorted(records) == ["group.jpg", "single.png"]
    group = records["group.jpg"]
    assert group.all_faces_annotated and len(group.faces) == 2
    np.testing.assert_allclose(group.faces[0].box, [a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max()],
                               atol=0.01)
    np.testing.assert_allclose(group.faces[1].landmarks, b, atol=0.01)
    assert len(records["single.png"].faces) == 1
    assert any("orphan_3.pts" in str(p) for p in reader.problems)
