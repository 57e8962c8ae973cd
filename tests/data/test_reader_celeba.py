"""CelebA reader on a tiny generated folder: attribute, bbox and landmark lists, both variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperface.data.boxes import five_point_box
from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.celeba import CelebAReader

ATTRS = ["5_o_Clock_Shadow", "Eyeglasses", "Male", "Smiling"]


def _celeba(root: Path, gen, *, wild: bool = True, anno: str = "") -> None:
    a = root / anno
    a.mkdir(parents=True, exist_ok=True)
    (a / "list_attr_celeba.txt").write_text(
        "3\n" + " ".join(ATTRS) + "\n"
        "000001.jpg -1  1 -1  1\n"
        "000002.jpg  1 -1  1 -1\n"
        "000003.jpg  1 -1  1\n")  # line 5: a value missing
    lm = ("3\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
          "rightmouth_y\n"
          "000001.jpg 10 20 30 20 20 30 12 40 28 40\n"
          "000002.jpg 11 21 31 21 21 31 13 41 29 41\n"
          "000003.jpg 11 21 31 21 21 31 13 41 29 41\n")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n")
    if wild:
        (a / "list_landmarks_celeba.txt").write_text(lm)
        (a / "list_bbox_celeba.txt").write_text(
            "3\nimage_id x_1 y_1 width height\n000001.jpg 5 6 40 50\n000002.jpg 1 2 0 10\n000003.jpg 1 1 9 9\n")
        folder = root / "img_celeba"
    else:
        (a / "list_landmarks_align_celeba.txt").write_text(lm)
        folder = root / "img_align_celeba"
    for i in (1, 2, 3):
        gen.image(folder / f"00000{i}.jpg")


def test_wild_variant_boxes_gender_attributes_and_problems(tmp_path, gen):
    _celeba(tmp_path, gen, anno="Anno")
    reader = CelebAReader(tmp_path)
    assert reader.variant == "wild"
    records = {r.group: r for r in reader}
    assert sorted(records) == ["000001.jpg", "000003.jpg"]
    face = records["000001.jpg"].faces[0]
    np.testing.assert_array_equal(face.box, [5, 6, 45, 56])  # x, y, width, height
    np.testing.assert_array_equal(face.landmarks[:2], [[10, 20], [30, 20]])
    assert face.point_set == "five" and face.gender == 1  # Male -1 -> female
    assert face.attributes == {"5_o_Clock_Shadow": False, "Eyeglasses": True, "Smiling": True}
    assert records["000003.jpg"].faces[0].gender is None  # its attribute row was bad
    problems = sorted((Path(p.path).name, p.line) for p in reader.problems)
    assert problems == [("list_attr_celeba.txt", 5), ("list_bbox_celeba.txt", 4)]


def test_aligned_variant_uses_five_point_box_and_split(tmp_path, gen):
    _celeba(tmp_path, gen, wild=False)
    reader = open_dataset(f"celeba:{tmp_path}?split=test")
    (record,) = list(reader)
    assert record.group == "000002.jpg" and record.faces[0].gender == 0
    np.testing.assert_allclose(record.faces[0].box, five_point_box(record.faces[0].landmarks))
    assert record.image == tmp_path / "img_align_celeba" / "000002.jpg"
    with pytest.raises(DatasetError, match="img_celeba"):
        CelebAReader(tmp_path, variant="wild")
    with pytest.raises(ValueError, match="auto, wild, align"):
        CelebAReader(tmp_path, variant="x")
