"""MTFL reader: the list format (backslashes, leading spaces), labels, splits, bad lines; five_point_box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperface.data.boxes import five_point_box
from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.mtfl import MtflReader

GOOD = "lfw_5590\\A_0001.jpg 11.0 31.0 21.0 13.0 29.0 21.0 21.0 31.0 41.0 41.0 1 2 1 3"  # 1-based


def _mtfl(root: Path, gen) -> None:
    lines = [
        GOOD,
        " net_7876\\_60_980_0.jpg 56.00 85.00 79.00 59.00 82.00 54.00 53.00 76.00 91.00 88.00 2 1 2 4",
        " lfw_5590\\B_0001.jpg 1 2 3 4 5 6 7 8 9",                       # line 3: field missing
        " lfw_5590\\C_0001.jpg 1 2 3 x 5 6 7 8 9 10 1 1 1 1",            # line 4: not a number
        " lfw_5590\\D_0001.jpg 1 2 3 4 5 6 7 8 9 10 3 1 1 1",            # line 5: gender 3
        " lfw_5590\\E_0001.jpg 1 2 3 4 5 6 7 8 9 10 1 1 1 6",            # line 6: pose 6
        " lfw_5590\\Missing.jpg 1 2 3 4 5 6 7 8 9 10 1 1 1 1",           # line 7: no image
        "",
    ]
    (root / "training.txt").write_text("\n".join(lines))
    (root / "testing.txt").write_text("lfw_5590\\T_0001.jpg 1 2 3 4 5 6 7 8 9 10 2 2 2 5\n")
    for name in ("lfw_5590/A_0001.jpg", "net_7876/_60_980_0.jpg", "lfw_5590/B_0001.jpg", "lfw_5590/C_0001.jpg",
                 "lfw_5590/D_0001.jpg", "lfw_5590/E_0001.jpg", "lfw_5590/T_0001.jpg"):
        gen.image(root / name, size=(128, 128))  # holds every test face


def test_labels_and_box(tmp_path, gen):
    _mtfl(tmp_path, gen)
    reader = MtflReader(tmp_path, split="training")
    records = list(reader)
    assert [r.group for r in records] == ["lfw_5590/A_0001.jpg", "net_7876/_60_980_0.jpg"]
    a = records[0].faces[0]
    # the list's 1-based points (11, 21), (31, 21), ... less MTFL_ORIGIN: 0-based pixels
    np.testing.assert_array_equal(a.landmarks, [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    assert a.point_set == "five" and a.gender == 0 and a.pose_class == 3
    assert a.attributes == {"smile": False, "glasses": True}
    # d_eyes = 20, d_em = 20 -> side 44 around the mean (20, 30).
    np.testing.assert_allclose(a.box, [-2, 8, 42, 52])
    b = records[1].faces[0]
    assert b.gender == 1 and b.pose_class == 4 and b.attributes == {"smile": True, "glasses": False}
    assert records[0].image == tmp_path / "lfw_5590" / "A_0001.jpg"


def test_bad_lines_are_reported_with_line_numbers(tmp_path, gen):
    _mtfl(tmp_path, gen)
    reader = MtflReader(tmp_path, split="training")
    list(reader)
    got = {p.line: p for p in reader.problems}
    assert sorted(got) == [3, 4, 5, 6, 7]
    assert all(Path(p.path).name == "training.txt" for p in reader.problems)
    assert "gender 3" in got[5].message and "pose class 6" in got[6].message
    assert "Missing.jpg" in got[7].message and "not found" in got[7].message


def test_splits(tmp_path, gen):
    _mtfl(tmp_path, gen)
    assert [r.group for r in open_dataset(f"mtfl:{tmp_path}?split=testing")] == ["lfw_5590/T_0001.jpg"]
    assert len(list(MtflReader(tmp_path))) == 3  # default: all lists
    with pytest.raises(ValueError, match="training, testing, all"):
        MtflReader(tmp_path, split="val")
    (tmp_path / "testing.txt").unlink()
    with pytest.raises(DatasetError, match="testing.txt"):
        MtflReader(tmp_path, split="testing")


def test_five_point_box_vectorised():
    pts = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]], dtype=float)
    # Mouth far below the eyes: d_em = 40 > d_eyes = 20 decides the side.
    tall = pts.copy()
    tall[3:, 1] = 60
    boxes = five_point_box(np.stack([pts, tall]))
    assert boxes.shape == (2, 4)
    np.testing.assert_allclose(boxes[0], [-2, 8, 42, 52])
    cx, cy = tall.mean(axis=0)
    np.testing.assert_allclose(boxes[1], [cx - 44, cy - 44, cx + 44, cy + 44])
    with pytest.raises(ValueError):
        five_point_box(np.zeros((4, 2)))
