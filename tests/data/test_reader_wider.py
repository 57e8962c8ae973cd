"""WIDER FACE's annotation format: boxes, attributes, ignore regions, and damaged blocks reported by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperface.data.readers import open_dataset
from hyperface.data.readers.base import DatasetError

GT = """0--Parade/0_Parade_a.jpg
3
10 12 20 24 0 0 0 0 0 0 
40 8 6 6 2 0 1 0 2 1 
50 30 8 0 0 0 0 1 0 0 
0--Parade/0_Parade_b.jpg
0
0 0 0 0 0 0 0 0 0 0 
1--Handshaking/1_Handshaking_c.jpg
1
5 5 30 30 1 1 0 1 0 0 
"""


def _photos(root: Path, names: list[str], size: tuple[int, int] = (120, 90)) -> None:
    for name in names:
        path = root / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (100, 120, 140)).save(path)


@pytest.fixture
def wider(tmp_path) -> Path:
    _photos(tmp_path, ["0--Parade/0_Parade_a.jpg", "0--Parade/0_Parade_b.jpg", "1--Handshaking/1_Handshaking_c.jpg"])
    (tmp_path / "wider_face_val_bbx_gt.txt").write_text(GT)
    return tmp_path


def test_boxes_attributes_and_ignore_regions(wider):
    records = list(open_dataset(f"wider:{wider}?min_face=10"))
    assert [Path(r.image).name for r in records] == ["0_Parade_a.jpg", "0_Parade_b.jpg", "1_Handshaking_c.jpg"]
    a, b, c = records
    assert all(r.all_faces_annotated for r in records) and b.faces == ()
    assert len(a.faces) == 2  # the zero-height box is no face and no region
    np.testing.assert_array_equal(a.faces[0].box, [10, 12, 30, 36])  # x y w h -> x0 y0 x1 y1
    assert a.faces[0].attributes == {"blur": 0, "expression": 0, "illumination": 0, "invalid": 0, "occlusion": 0,
                                     "pose": 0}
    small = a.faces[1].attributes
    assert small["ignore"] and (small["blur"], small["illumination"], small["occlusion"], small["pose"]) == (2, 1, 2, 1)
    assert c.faces[0].attributes["invalid"] == 1 and c.faces[0].attributes["ignore"]  # invalid: an ignore region
    assert a.faces[0].lines == (3,) and a.faces[0].annotation.name == "wider_face_val_bbx_gt.txt"
    without = list(open_dataset(f"wider:{wider}"))  # no min_face: the 6-pixel face is a face
    assert "ignore" not in without[0].faces[1].attributes


def test_a_damaged_block_is_reported_by_line_and_the_rest_is_read(wider):
    damaged = GT.replace("3\n10 12", "three\n10 12").replace("1\n5 5 30 30", "1\n5 5 30 x")
    (wider / "wider_face_val_bbx_gt.txt").write_text(damaged)
    reader = open_dataset(f"wider:{wider}")
    records = list(reader)
    assert [Path(r.image).name for r in records] == ["0_Parade_b.jpg"]
    assert [p.line for p in reader.problems] == [2, 11]
    assert reader.problems[0].message.startswith("expected the number of faces, got 'three'")
    assert reader.problems[1].message.startswith("a face line of non-numbers")
    cut = GT.replace("40 8 6 6 2 0 1 0 2 1 \n50 30 8 0 0 0 0 1 0 0 \n", "")  # 3 faces announced, 1 given
    (wider / "wider_face_val_bbx_gt.txt").write_text(cut)
    reader = open_dataset(f"wider:{wider}")
    assert len(list(reader)) == 2 and "3 face(s) announced" in reader.problems[0].message


def test_missing_images_and_paths_out_of_the_dataset_are_reported(wider):
    (wider / "images" / "0--Parade" / "0_Parade_b.jpg").unlink()
    (wider / "wider_face_val_bbx_gt.txt").write_text(GT + "../../etc/x.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n")
    reader = open_dataset(f"wider:{wider}")
    assert len(list(reader)) == 2
    assert any("0_Parade_b.jpg not found" in p.message for p in reader.problems)
    assert any("leaves the dataset folder" in p.message for p in reader.problems)


def test_a_folder_without_the_annotation_file_or_images_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="wider_face_\\*_bbx_gt.txt"):
        open_dataset(f"wider:{tmp_path}")
    (tmp_path / "wider_face_val_bbx_gt.txt").write_text(GT)
    with pytest.raises(DatasetError, match="no images/ folder"):
        open_dataset(f"wider:{tmp_path}")
