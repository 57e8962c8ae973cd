"""dlib imglab XML reader: boxes, 68 parts, ignore boxes, faceless images, malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.dlib_xml import DlibXmlReader


def _parts(n: int, x0: int = 100) -> str:
    return "".join(f"<part name='{i:02d}' x='{x0 + i}' y='{200 + i}'/>" for i in range(n))


def _xml(body: str) -> str:
    return ("<?xml version='1.0' encoding='ISO-8859-1'?>\n<?xml-stylesheet type='text/xsl' href='s.xsl'?>\n"
            f"<dataset>\n<name>test</name>\n<images>\n{body}\n</images>\n</dataset>\n")


def test_boxes_parts_ignore_and_faceless_images(tmp_path, gen):
    gen.image(tmp_path / "group.jpg", size=(300, 300))
    gen.image(tmp_path / "sub" / "dogs.jpg")
    body = (
        "<image file='group.jpg' width='300' height='300'>"
        f"<box top='90' left='194' width='37' height='40'>{_parts(68)}</box>"
        "<box top='10' left='20' width='30' height='30'/>"
        "<box top='1' left='2' width='3' height='4' ignore='1'><label>blurry</label></box>"
        "</image>"
        "<image file='sub/dogs.jpg'></image>"
    )
    (tmp_path / "faces.xml").write_text(_xml(body))
    reader = open_dataset(f"dlib:{tmp_path / 'faces.xml'}")
    records = list(reader)
    assert reader.problems == []
    assert [r.group for r in records] == ["group.jpg", "sub/dogs.jpg"]
    assert all(r.all_faces_annotated for r in records)
    a, b, c = records[0].faces
    np.testing.assert_array_equal(a.box, [194, 90, 231, 130])
    assert a.point_set == "ibug68" and a.landmarks.shape == (68, 2)
    np.testing.assert_array_equal(a.landmarks[67], [167, 267])
    assert b.landmarks is None and b.attributes == {}
    assert c.attributes == {"ignore": True, "label": "blurry"}
    assert records[1].faces == () and records[1].image == tmp_path / "sub" / "dogs.jpg"


def test_wrong_part_count_bad_box_and_missing_image_are_reported(tmp_path, gen):
    gen.image(tmp_path / "a.jpg")
    gen.image(tmp_path / "b.jpg")
    body = (
        f"<image file='a.jpg'><box top='1' left='1' width='10' height='10'>{_parts(5)}</box></image>"
        "<image file='b.jpg'><box top='x' left='1' width='10' height='10'/>"
        "<box top='1' left='1' width='10' height='10'/></image>"
        "<image file='gone.jpg'><box top='1' left='1' width='10' height='10'/></image>"
    )
    (tmp_path / "f.xml").write_text(_xml(body))
    reader = DlibXmlReader(tmp_path / "f.xml")
    records = {r.group: r for r in reader}
    assert sorted(records) == ["a.jpg", "b.jpg"]
    assert records["a.jpg"].faces[0].landmarks is None  # box kept, landmarks left out
    assert len(records["b.jpg"].faces) == 1 and not records["b.jpg"].all_faces_annotated
    messages = [str(p) for p in reader.problems]
    assert len(messages) == 3
    assert "image a.jpg: box 0: has 5 parts, expected 68" in messages[0]
    assert "image b.jpg: box 0" in messages[1] and "top='x'" in messages[1]
    assert "gone.jpg" in messages[2] and "not found" in messages[2]


def test_malformed_xml_and_folder_are_dataset_errors(tmp_path):
    (tmp_path / "bad.xml").write_text("<dataset><images><image file='a.jpg'>\n<box></images>")
    with pytest.raises(DatasetError, match=r"bad\.xml:2: malformed XML"):
        DlibXmlReader(tmp_path / "bad.xml")
    with pytest.raises(DatasetError, match="bad.xml"):
        DlibXmlReader(tmp_path)  # a folder: the error lists the XML files to choose from
