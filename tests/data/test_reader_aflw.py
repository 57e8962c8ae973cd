"""AFLW sqlite reader on a small database built with AFLW's schema."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.aflw import AflwReader

SCHEMA = """
CREATE TABLE faces (face_id INTEGER PRIMARY KEY, file_id TEXT, db_id TEXT);
CREATE TABLE faceimages (image_id INTEGER PRIMARY KEY, db_id TEXT, file_id TEXT, filepath TEXT,
                         bw INTEGER, width INTEGER, height INTEGER);
CREATE TABLE facerect (face_id INTEGER, x INTEGER, y INTEGER, w INTEGER, h INTEGER, annot_type_id INTEGER);
CREATE TABLE facepose (face_id INTEGER, roll REAL, pitch REAL, yaw REAL, annot_type_id INTEGER);
CREATE TABLE facemetadata (face_id INTEGER, sex TEXT, occluded INTEGER, glasses INTEGER, bw INTEGER);
CREATE TABLE featurecoords (face_id INTEGER, feature_id INTEGER, x REAL, y REAL, annot_type_id INTEGER);
"""


def _build(root: Path, gen, *, tables: str = SCHEMA) -> Path:
    db_path = root / "aflw.sqlite"
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(tables)
        if "featurecoords" not in tables:
            db.commit()
            return db_path
        db.executemany("INSERT INTO faceimages (file_id, filepath) VALUES (?, ?)",
                       [("image00002.jpg", "0/image00002.jpg"), ("image00004.jpg", "3/image00004.jpg"),
                        ("image00009.jpg", "0/image00009.jpg")])
        db.executemany("INSERT INTO faces (face_id, file_id) VALUES (?, ?)",
                       [(39341, "image00002.jpg"), (39342, "image00002.jpg"), (39400, "image00004.jpg"),
                        (39500, "image00009.jpg")])
        db.executemany("INSERT INTO facerect (face_id, x, y, w, h) VALUES (?, ?, ?, ?, ?)",
                       [(39341, 10, 20, 30, 40), (39342, 50, 5, 20, 20), (39400, 1, 2, 10, 10),
                        (39500, 3, 3, 5, 5)])
        db.executemany("INSERT INTO facepose (face_id, roll, pitch, yaw) VALUES (?, ?, ?, ?)",
                       [(39341, 0.1, -0.2, 0.5), (39400, -0.3, 0.0, -1.0)])
        db.executemany("INSERT INTO facemetadata (face_id, sex) VALUES (?, ?)",
                       [(39341, "f"), (39342, "m"), (39400, "m")])
        coords = [(39341, fid, 10 + fid, 20 + fid) for fid in range(1, 22) if fid not in (1, 7, 13)]
        coords += [(39342, 15, 60.0, 15.0), (39400, 25, 1.0, 1.0)]
        db.executemany("INSERT INTO featurecoords (face_id, feature_id, x, y) VALUES (?, ?, ?, ?)", coords)
        db.commit()
    gen.image(root / "flickr" / "0" / "image00002.jpg", size=(100, 80))
    gen.image(root / "flickr" / "3" / "image00004.jpg", size=(40, 40))
    # image00009.jpg is missing on purpose
    return db_path


def test_faces_of_one_file_form_one_record_with_labels_converted(tmp_path, gen):
    _build(tmp_path, gen)
    reader = AflwReader(tmp_path)
    records = {r.group: r for r in reader}
    assert sorted(records) == ["0/image00002.jpg", "3/image00004.jpg"]
    rec = records["0/image00002.jpg"]
    assert rec.all_faces_annotated and rec.image == tmp_path / "flickr" / "0" / "image00002.jpg"
    a, b = rec.faces
    np.testing.assert_array_equal(a.box, [10, 20, 40, 60])
    assert a.point_set == "aflw21" and a.landmarks.shape == (21, 2)
    # Visible exactly where a featurecoords row exists; others NaN.
    assert a.visibility.sum() == 18 and not a.visibility[[0, 6, 12]].any()
    assert np.isnan(a.landmarks[0]).all()
    np.testing.assert_array_equal(a.landmarks[1], [12, 22])  # feature_id 2 -> index 1
    np.testing.assert_allclose(a.pose, [math.degrees(0.1), math.degrees(-0.2), math.degrees(0.5)])
    assert a.gender == 1 and b.gender == 0
    assert b.pose is None and b.visibility.sum() == 1 and b.visibility[14]
    # The out-of-range feature_id is reported and ignored; the missing image is reported.
    messages = [str(p) for p in reader.problems]
    assert any("face_id 39400" in m and "feature_id 25" in m for m in messages)
    assert any("image00009.jpg" in m and "not found" in m for m in messages)
    assert len(messages) == 2
    face = records["3/image00004.jpg"].faces[0]
    assert face.landmarks is None and face.visibility is None  # no valid point: no landmark label


def test_sqlite_file_path_and_images_option(tmp_path, gen):
    db = _build(tmp_path, gen)
    moved = tmp_path / "pictures"
    (tmp_path / "flickr").rename(moved)
    with pytest.raises(DatasetError, match="images="):
        AflwReader(db)
    records = list(open_dataset(f"aflw:{db}?images={moved}"))
    assert len(records) == 2 and records[0].image.is_relative_to(moved)


def test_sqlite_without_expected_tables_names_them(tmp_path, gen):
    (tmp_path / "flickr").mkdir()
    _build(tmp_path, gen, tables="CREATE TABLE faces (face_id INTEGER, file_id TEXT);"
                                 "CREATE TABLE faceimages (file_id TEXT, filepath TEXT);")
    with pytest.raises(DatasetError) as info:
        AflwReader(tmp_path)
    message = str(info.value)
    for table in ("facemetadata", "facepose", "facerect", "featurecoords"):
        assert table in message
    assert "aflw.sqlite" in message


def test_not_a_sqlite_file_is_a_dataset_error(tmp_path):
    (tmp_path / "flickr").mkdir()
    (tmp_path / "aflw.sqlite").write_text("this is text, not a database")
    with pytest.raises(DatasetError, match="aflw.sqlite"):
        AflwReader(tmp_path)
