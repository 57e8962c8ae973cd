"""VOC XML reader: face boxes of whole photos; bad or unmatched files reported and skipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperface.data.readers import open_dataset
from hyperface.data.readers.base import DatasetError

_VOC = """<annotation>
  <filename>{name}</filename>
  <object><name>face</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>50</xmax><ymax>70</ymax></bndbox></object>
  <object><name>face</name><bndbox><xmin>60</xmin><ymin>20</ymin><xmax>90</xmax><ymax>60</ymax></bndbox></object>
  <object><name>person</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>99</xmax><ymax>99</ymax></bndbox></object>
</annotation>"""


def _voc_root(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    for name in ("p1", "p2"):
        Image.new("RGB", (100, 100)).save(tmp_path / "JPEGImages" / f"{name}.jpg")
        (tmp_path / "Annotations" / f"{name}.xml").write_text(_VOC.format(name=f"{name}.jpg"))
    (tmp_path / "Annotations" / "missing.xml").write_text(_VOC.format(name="nowhere.jpg"))
    (tmp_path / "Annotations" / "broken.xml").write_text("<annotation><filename>p1.jpg</filename><object>")
    return tmp_path


def test_voc_reader_reads_face_boxes_and_reports_bad_files(tmp_path):
    reader = open_dataset(f"voc:{_voc_root(tmp_path)}")
    records = list(reader)
    assert [r.image.name for r in records] == ["p1.jpg", "p2.jpg"]
    r = records[0]
    assert r.all_faces_annotated and r.source.startswith("voc:")
    np.testing.assert_allclose([f.box for f in r.faces], [[10, 20, 50, 70], [60, 20, 90, 60]])  # no "person"
    problems = [str(p) for p in reader.problems]
    assert any("broken.xml" in p for p in problems) and any("nowhere.jpg" in p for p in problems)


def test_voc_reader_takes_every_object_when_none_is_named_face(tmp_path):
    Image.new("RGB", (100, 100)).save(tmp_path / "p.jpg")
    (tmp_path / "p.xml").write_text(_VOC.format(name="p.jpg").replace("<name>face</name>", "<name>head</name>"))
    (record,) = open_dataset(f"voc:{tmp_path / 'p.xml'}")
    assert len(record.faces) == 3


def test_voc_reader_takes_the_classes_asked_for_and_marks_small_faces_ignored(tmp_path):
    root = _voc_root(tmp_path)
    people = list(open_dataset(f"voc:{root}?classes=person"))
    np.testing.assert_allclose([f.box for f in people[0].faces], [[0, 0, 99, 99]])
    both = list(open_dataset(f"voc:{root}?classes=face,Person&min_face=45"))[0].faces
    assert len(both) == 3
    # heights 50, 40 and 99 px: only the 40 px face is under 45 and is kept, marked ignore
    assert [bool(f.attributes.get("ignore")) for f in both] == [False, True, False]
    with pytest.raises(DatasetError, match="no object of class helmet"):
        list(open_dataset(f"voc:{root}?classes=helmet"))
    with pytest.raises(ValueError, match="min_face"):
        open_dataset(f"voc:{root}?min_face=-1")


def test_voc_reader_reads_the_mask_photos_with_their_three_classes(shared_data):
    masks = shared_data / "masks"
    if not (masks / "annotations").is_dir():
        pytest.skip(f"the face-mask photos are not in {masks}")
    reader = open_dataset(f"voc:{masks}?classes=with_mask,without_mask,mask_weared_incorrect&min_face=20")
    records = list(reader)
    assert len(records) >= 100 and not reader.problems
    faces = [f for r in records for f in r.faces]
    small = sum(bool(f.attributes.get("ignore")) for f in faces)
    assert len(faces) > 2 * len(records) and 0 < small < len(faces)


def test_a_stale_filename_falls_back_to_the_image_named_like_the_xml(tmp_path):
    """Sets renamed after annotation (web face-mask photos) keep the old <filename>: the XML's own name finds
    the image when exactly one image has it; otherwise the image is reported missing."""
    root = _voc_root(tmp_path)
    Image.new("RGB", (100, 100)).save(root / "JPEGImages" / "renamed.png")
    (root / "Annotations" / "renamed.xml").write_text(_VOC.format(name="old-name-crop-0.jpg"))
    reader = open_dataset(f"voc:{root}")
    assert [r.image.name for r in reader] == ["p1.jpg", "p2.jpg", "renamed.png"]
    Image.new("RGB", (100, 100)).save(root / "JPEGImages" / "renamed.jpg")  # two candidates: ambiguous
    reader = open_dataset(f"voc:{root}")
    assert [r.image.name for r in reader] == ["p1.jpg", "p2.jpg"]
    assert any("old-name-crop-0.jpg not found" in str(p) for p in reader.problems)
