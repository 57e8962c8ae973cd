"""The FairFace reader: gender in our order, age bins, splits, bad rows reported with their line."""

from itertools import islice

import numpy as np
import pytest

from hyperface.data.readers import DatasetError, open_dataset


def test_real_fairface_rows(shared_data):
    reader = open_dataset(f"fairface:{shared_data / 'fairface'}?split=train")
    records = list(islice(reader, 20))
    assert len(records) == 20
    for r in records:
        face = r.faces[0]
        assert face.gender in (0, 1) and face.attributes["age_bin"] and face.attributes["race"]
        w, h = face.box[2], face.box[3]
        assert (w, h) == (224, 224) and np.all(face.box[:2] == 0)  # the whole crop, as evaluation.md says
    assert reader.source.endswith("?split=train")


def test_bad_rows_are_reported_with_their_line(tmp_path):
    from PIL import Image

    (tmp_path / "train").mkdir()
    for name in ("1.jpg", "2.jpg"):
        Image.new("RGB", (64, 64), (90, 80, 70)).save(tmp_path / "train" / name)
    (tmp_path / "fairface_label_train.csv").write_text(
        "file,age,gender,race,service_test\n"
        "train/1.jpg,3-9,Female,Black,FALSE\n"
        "train/2.jpg,20-29,Unknown,White,TRUE\n"
        "train/3.jpg,20-29,Male,White,TRUE\n"
        "train/2.jpg,20-29\n"
        "train/2.jpg,more than 70,Male,Indian,FALSE\n")
    reader = open_dataset(f"fairface:{tmp_path}")
    records = list(reader)
    assert [(r.faces[0].gender, r.faces[0].attributes["age"]) for r in records] == [(1, 6), (0, 75)]
    assert sorted(p.line for p in reader.problems) == [3, 4, 5]
    assert any("Unknown" in p.message for p in reader.problems)
    with pytest.raises(DatasetError, match="fairface_label_val.csv"):
        open_dataset(f"fairface:{tmp_path}?split=val")
    with pytest.raises(ValueError, match="split"):
        open_dataset(f"fairface:{tmp_path}?split=test")
