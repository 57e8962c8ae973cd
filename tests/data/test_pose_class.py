"""MTFL's pose class in prepared data: filled from the record, format 2, version-1 folders still read
and trained together with version-2 ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperface import fileio
from hyperface.data.aligned import sample_aligned
from hyperface.data.labels import LabelOptions, assign_labels, face_targets, fill_labels
from hyperface.data.readers.mtfl import MtflReader
from hyperface.data.records import FaceRecord, ImageRecord
from hyperface.data.shards import (
    FORMAT_NAME, FORMAT_VERSION, SAMPLE_KEYS, PreparedDataset, ShardError, combine_manifests, label_dtype,
    load_manifest, shard_problem, write_shard,
)
from hyperface.train.data import TrainingSet, collate

S = 16
FIVE = np.array([[70.0, 80.0], [130.0, 80.0], [100.0, 110.0], [75.0, 140.0], [125.0, 140.0]])


def _mtfl_face(tmp_path: Path, pose: int) -> FaceRecord:
    """The one face of a one-line MTFL list (points, gender 1 = male, smile, glasses, pose class)."""
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 90, 90)).save(tmp_path / "a.jpg")
    xs, ys = FIVE[:, 0].tolist(), FIVE[:, 1].tolist()
    (tmp_path / "training.txt").write_text("a.jpg " + " ".join(f"{v:g}" for v in xs + ys) + f" 1 2 2 {pose}\n")
    (record,) = list(MtflReader(tmp_path, split="training"))
    return record.faces[0]


def _row(face: FaceRecord, box, num_points: int = 68) -> np.void:
    box = np.asarray(box, dtype=float)
    a = assign_labels(box[None], [face], LabelOptions())
    row = np.zeros(1, dtype=label_dtype(num_points))
    fill_labels(row[0], box, a, 0, face_targets(face, "ibug68", (200, 200)))
    return row[0]


def test_an_mtfl_face_fills_the_pose_class_column_where_attributes_are_labelled(tmp_path):
    face = _mtfl_face(tmp_path, pose=2)
    assert face.pose_class == 2
    row = _row(face, face.box)
    assert row.dtype == label_dtype(68, FORMAT_VERSION) and FORMAT_VERSION == 2
    assert row["pose_class"] == 2 and row["gender_mask"] and not row["pose_mask"]
    x0, y0, x1, y1 = face.box
    loose = _row(face, [x0, y0, x1, y0 + 0.45 * (y1 - y0)])  # IoU 0.45: landmarks yes, attributes no
    assert loose["landmarks5_mask"].all() and not loose["gender_mask"] and loose["pose_class"] == 0
    for other in (None, 7):  # no class, or one outside MTFL's 1..5: the column says none
        assert _row(FaceRecord(box=face.box, landmarks=FIVE, point_set="five", pose_class=other),
                    face.box)["pose_class"] == 0


def test_aligned_crops_carry_the_pose_class():
    image = np.full((200, 200, 3), 90, dtype=np.uint8)
    faces = (FaceRecord(box=np.array([50.0, 50.0, 150.0, 160.0]), landmarks=FIVE, point_set="five", pose_class=4),
             FaceRecord(box=np.array([50.0, 50.0, 150.0, 160.0]), landmarks=FIVE + 5, point_set="five"))
    record = ImageRecord(image=Path("x.jpg"), faces=faces, source="mtfl", group="x")
    crops, rows = sample_aligned(image, record, point_set="ibug68", crop_size=S, context=1.25)
    assert len(rows) == 2 and rows.dtype == label_dtype(68)
    assert rows["pose_class"].tolist() == [4, 0]


def _write_folder(root: Path, version: int, pose_classes: list[int], split: int = 0) -> Path:
    """A prepared folder in the layout of ``version`` (a version-1 shard as the old code wrote it:
    no ``pose_class`` column, no ``format_version`` in shard.json)."""
    n = len(pose_classes)
    images = np.zeros((n, S, S, 3), dtype=np.uint8)
    labels = np.zeros(n, dtype=label_dtype(68, version))
    labels["split"] = split
    labels["detection"], labels["detection_mask"] = 1, True
    images[:, 0, 0, 0] = np.arange(n) + 10 * version
    shard = root / "shards" / "00-00000"
    if version == FORMAT_VERSION:
        labels["pose_class"] = pose_classes
        write_shard(shard, images, labels, {"name": "00-00000", "images": ["a.jpg"], "counts": {}})
    else:
        shard.mkdir(parents=True)
        np.save(shard / "images.npy", images)
        np.save(shard / "labels.npy", labels)
        fileio.write_json(shard / "shard.json", {"name": "00-00000", "images": ["a.jpg"], "counts": {},
                                                 "samples": n})
    fileio.write_json(root / "manifest.json", {
        "format": FORMAT_NAME, "format_version": version, "sources": [{"name": "mtfl:x", "format": "mtfl"}],
        "options": {"crop_size": S, "context": 1.25, "point_set": "ibug68", "num_points": 68},
        "shards": [{"name": "00-00000", "path": "shards/00-00000", "samples": n}],
        "counts": {"samples": n, "train": {"samples": n, **({"pose_class": sum(c > 0 for c in pose_classes)}
                                                            if version > 1 else {})}}})
    return root


def test_a_version_1_folder_still_loads_with_pose_class_0(tmp_path):
    root = _write_folder(tmp_path / "v1", 1, [0, 0, 0])
    assert "pose_class" not in np.load(root / "shards/00-00000/labels.npy").dtype.names
    assert shard_problem(root / "shards/00-00000", num_points=68, crop_size=S) is None
    ds = PreparedDataset(root)
    assert len(ds) == 3
    s = ds[1]
    assert tuple(s) == SAMPLE_KEYS and s["pose_class"] == 0 and s["pose_class"].dtype == np.int64
    assert s["detection"] == 1 and int(s["image"][0, 0, 0]) == 11
    labels = ds.labels()
    assert labels.dtype == label_dtype(68) and labels["pose_class"].tolist() == [0, 0, 0]
    assert labels["detection_mask"].all()


def test_the_shard_json_version_decides_the_layout_a_shard_is_checked_against(tmp_path):
    root = _write_folder(tmp_path / "v2", 2, [1, 2])
    shard = root / "shards/00-00000"
    meta = json.loads((shard / "shard.json").read_text())
    assert meta["format_version"] == 2
    fileio.write_json(shard / "shard.json", dict(meta, format_version=1))  # v2 rows claimed as v1
    assert "unexpected layout" in shard_problem(shard, num_points=68)
    with pytest.raises(ShardError, match="unexpected layout"):
        PreparedDataset(root)
    fileio.write_json(shard / "shard.json", dict(meta, format_version=3))
    assert "format_version 3" in shard_problem(shard)
    with pytest.raises(ValueError, match="version 3"):
        label_dtype(68, version=3)
    # Every writer writes the current layout: write_shard refuses old rows.
    with pytest.raises(ValueError, match="label_dtype"):
        write_shard(tmp_path / "old", np.zeros((1, S, S, 3), np.uint8), np.zeros(1, label_dtype(68, 1)), {})
    manifest = json.loads((root / "manifest.json").read_text())
    fileio.write_json(root / "manifest.json", dict(manifest, format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="newer"):
        load_manifest(root)


def test_version_1_and_2_folders_train_together(tmp_path):
    v1 = _write_folder(tmp_path / "v1", 1, [0, 0])
    v2 = _write_folder(tmp_path / "v2", 2, [3, 0, 5])
    ds = PreparedDataset([v1, v2])
    assert [int(ds[i]["pose_class"]) for i in range(len(ds))] == [0, 0, 3, 0, 5]
    assert [int(ds[i]["image"][0, 0, 0]) for i in range(len(ds))] == [10, 11, 20, 21, 22]
    assert ds.labels()["pose_class"].tolist() == [0, 0, 3, 0, 5]
    combined = combine_manifests([load_manifest(v1)[0], load_manifest(v2)[0]])
    assert combined["format_version"] == FORMAT_VERSION
    assert combined["counts"]["samples"] == 5 and combined["counts"]["train"]["pose_class"] == 2
    # Through the training set and its collate: an int64 target without a mask.
    train = TrainingSet([(ds, np.arange(len(ds)))], input_size=S, num_points=68, point_set="ibug68")
    batch = collate([train[i] for i in range(len(train))])
    assert batch["pose_class"].dtype == torch.int64 and batch["pose_class"].tolist() == [0, 0, 3, 0, 5]
    assert "pose_class_mask" not in batch
