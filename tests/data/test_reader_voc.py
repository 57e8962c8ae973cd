"""VOC XML reader: face boxes of whole photos; bad or unmatched files reported and skipped."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hyperface.data.readers import open_dataset

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
