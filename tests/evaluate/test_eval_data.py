"""Evaluation data: --data specs and labels, the prepare-compatible split, the VOC reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperface.data.prepare import split_of
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs
from hyperface.evaluate.voc import VocReader

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
    reader = VocReader(_voc_root(tmp_path))
    records = list(reader)
    assert [r.image.name for r in records] == ["p1.jpg", "p2.jpg"]
    r = records[0]
    assert r.all_faces_annotated and r.source.startswith("voc:")
    np.testing.assert_allclose([f.box for f in r.faces], [[10, 20, 50, 70], [60, 20, 90, 60]])  # no "person"
    problems = [str(p) for p in reader.problems]
    assert any("broken.xml" in p for p in problems) and any("nowhere.jpg" in p for p in problems)


def test_data_specs_labels_and_grouping():
    specs = parse_data_specs(["300w=pts:/d/300w/lfpw/trainset", "300w=pts:/d/300w/helen/trainset",
                              "mtfl:/d/mtfl?split=training", "dlib:/d/dlib_faces/testing.xml"])
    assert [s.label for s in specs] == ["300w", "300w", "mtfl", "dlib_faces/testing"]
    assert specs[2].spec == "mtfl:/d/mtfl?split=training"
    with pytest.raises(ValueError, match="FORMAT:PATH"):
        parse_data_specs(["just/a/path"])


def test_split_is_prepares_split(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    names = [f"img_{i:03d}" for i in range(60)]
    for n in names:
        Image.new("RGB", (8, 8)).save(root / f"{n}.png")
    data = lambda split, limit=None: EvalDataset("n", [f"negatives:{root}"], split=split, val_fraction=0.3,
                                                 limit=limit)
    val = {r.group for r in data("val")}
    train = {r.group for r in data("train")}
    everything = {r.group for r in data("all")}
    assert val == {g for g in everything if split_of(g, 0.3) == 1}
    assert val | train == everything and not val & train and 0 < len(val) < len(everything)
    assert len(list(data("all", limit=5))) == 5
    with pytest.raises(ValueError, match="split"):
        data("test")


def _write_pts(path, offset):
    pts = np.random.default_rng(int(offset)).uniform(0, 30, size=(68, 2)) + offset
    path.write_text("version: 1\nn_points: 68\n{\n" + "\n".join(f"{x:.2f} {y:.2f}" for x, y in pts) + "\n}\n")
    return pts


def test_pts_photos_groups_the_faces_of_a_photo(tmp_path):
    from hyperface.evaluate.pts_photos import PtsPhotosReader

    Image.new("RGB", (200, 100)).save(tmp_path / "group.jpg")
    Image.new("RGB", (100, 100)).save(tmp_path / "single.png")
    a = _write_pts(tmp_path / "group_1.pts", 10)
    b = _write_pts(tmp_path / "group_2.pts", 120)
    _write_pts(tmp_path / "single.pts", 40)
    _write_pts(tmp_path / "orphan_3.pts", 5)
    reader = PtsPhotosReader(tmp_path)
    records = {r.image.name: r for r in reader}
    assert sorted(records) == ["group.jpg", "single.png"]
    group = records["group.jpg"]
    assert group.all_faces_annotated and len(group.faces) == 2
    np.testing.assert_allclose(group.faces[0].box, [a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max()],
                               atol=0.01)
    np.testing.assert_allclose(group.faces[1].landmarks, b, atol=0.01)
    assert len(records["single.png"].faces) == 1
    assert any("orphan_3.pts" in str(p) for p in reader.problems)


def test_val_split_is_the_prepared_validation_split(shared_data, tmp_path):
    """``--split val --prepared DIR`` selects exactly the images ``prepare`` put in validation."""
    import shutil

    from hyperface.data.prepare import PrepareOptions, prepare
    from hyperface.data.shards import PreparedDataset
    from hyperface.evaluate.datasets import val_fraction_from_prepared

    src = tmp_path / "src"
    src.mkdir()
    for pts in sorted((shared_data / "300w" / "lfpw" / "trainset").glob("*.pts"))[:8]:
        shutil.copy(pts, src)
        shutil.copy(pts.with_suffix(".jpg"), src)
    options = PrepareOptions(ss_mode="none", val_fraction=0.4, crop_size=32, positives_per_face=1,
                             partials_per_face=0, negatives_per_face=0)
    prepare([f"pts:{src}"], tmp_path / "prepared", options, progress=False)
    prepared = PreparedDataset(tmp_path / "prepared", split="val")
    prepared_val = {prepared.info(i)["image"] for i in range(len(prepared))}

    fraction = val_fraction_from_prepared(tmp_path / "prepared")
    assert fraction == 0.4
    selected = {r.image.name for r in EvalDataset("x", [f"pts:{src}"], split="val", val_fraction=fraction)}
    assert selected == prepared_val and 0 < len(selected) < 8
