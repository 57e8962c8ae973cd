"""Readers against hostile-but-fair annotation files (issue 25, item 7): a stray quote costs one row, labels
outside their range and conflicting duplicates are reported by line, a byte-order mark is not a problem,
and no annotation makes a reader open an image outside its dataset."""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np

from hyperface.data.readers import open_dataset
from hyperface.data.readers.pts import read_pts

HEADER = "file,age,gender,race,service_test\n"


def _fairface(root: Path, gen, rows: list[str], *, bom: bool = False) -> Path:
    for n in range(1, 7):
        gen.image(root / "train" / f"{n}.jpg", size=(64, 64))
    text = HEADER + "".join(r + "\n" for r in rows)
    (root / "fairface_label_train.csv").write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    return root


def _problems(reader) -> dict[int | None, str]:
    return {p.line: p.message for p in reader.problems}


def test_fairface_a_stray_quote_costs_only_its_own_row(tmp_path, gen):
    root = _fairface(tmp_path, gen, ["train/1.jpg,3-9,Female,Black,FALSE",
                                     'train/2.jpg,"20-29,Male,White,TRUE',      # line 3: quote never closed
                                     "train/3.jpg,30-39,Male,White,TRUE",
                                     'train/4.jpg,40-49,Female,"East Asian",FALSE',
                                     '"train/5.jpg"x,40-49,Female,White,FALSE',  # line 6: text after a quote
                                     "train/6.jpg,0-2,Male,Indian,TRUE"])
    reader = open_dataset(f"fairface:{root}")
    assert [r.group for r in reader] == ["train/1.jpg", "train/3.jpg", "train/4.jpg", "train/6.jpg"]
    problems = _problems(reader)
    assert sorted(problems) == [3, 6] and all("malformed CSV row" in m for m in problems.values())
    assert all(p.path.name == "fairface_label_train.csv" for p in reader.problems)


def test_fairface_ages_outside_the_bins_and_conflicting_duplicates_are_reported_and_skipped(tmp_path, gen):
    root = _fairface(tmp_path, gen, ["train/1.jpg,3-9,Female,Black,FALSE",
                                     "train/2.jpg,200-300,Male,White,TRUE",  # line 3: no such bin
                                     "train/3.jpg,30-39,Male,White,TRUE",
                                     "train/3.jpg,30-39,Female,White,TRUE",  # line 5: conflicts with line 4
                                     "train/4.jpg,20-29,Male,White,TRUE",
                                     "train/4.jpg,20-29,Male,White,TRUE",    # line 7: a plain repeat
                                     "train/5.jpg,,Male,White,TRUE"])        # line 8: no age
    reader = open_dataset(f"fairface:{root}")
    records = list(reader)
    assert [(r.group, r.faces[0].attributes["age"]) for r in records] == [("train/1.jpg", 6), ("train/4.jpg", 25)]
    problems = _problems(reader)
    assert sorted(problems) == [3, 4, 5, 7, 8]
    assert "'200-300' is not a FairFace age bin" in problems[3] and "age '' is not" in problems[8]
    assert "conflicting labels on lines 4, 5" in problems[4] and "conflicting labels on lines 4, 5" in problems[5]
    assert "listed again (first on line 6)" in problems[7]


def test_a_byte_order_mark_is_not_a_problem(tmp_path, gen):
    root = _fairface(tmp_path / "ff", gen, ["train/1.jpg,3-9,Female,Black,FALSE"], bom=True)
    reader = open_dataset(f"fairface:{root}")
    assert len(list(reader)) == 1 and reader.problems == []

    points = gen.points(68, offset=(10, 5), scale=30)
    for header in (True, False):
        path = gen.pts(tmp_path / f"bom{header}.pts", points, header=header)
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
        np.testing.assert_allclose(read_pts(path)[0], points + 1, atol=1e-3)  # the file's 1-based numbers

    mtfl = tmp_path / "mtfl"
    gen.image(mtfl / "a.jpg", size=(128, 128))
    (mtfl / "training.txt").write_bytes(codecs.BOM_UTF8 + b"a.jpg 10 30 20 12 28 20 20 30 40 40 1 2 1 3\n")
    reader = open_dataset(f"mtfl:{mtfl}")
    assert len(list(reader)) == 1 and reader.problems == []


def test_mtfl_absurd_coordinates_name_the_list_and_line(tmp_path, gen):
    gen.image(tmp_path / "a.jpg", size=(128, 128))
    gen.image(tmp_path / "b.jpg", size=(128, 128))
    (tmp_path / "training.txt").write_text("a.jpg 10 30 20 12 28 20 20 30 40 40 1 2 1 3\n"
                                           "b.jpg 10 30 20 12 9000000 20 20 30 40 40 1 2 1 3\n")
    reader = open_dataset(f"mtfl:{tmp_path}")
    assert [r.group for r in reader] == ["a.jpg"]
    (problem,) = reader.problems
    assert (problem.path.name, problem.line) == ("training.txt", 2)
    assert "far outside the 128x128 image" in problem.message and "b.jpg skipped" in problem.message


def test_image_paths_outside_the_dataset_are_refused_with_file_and_line(tmp_path, gen):
    outside = gen.image(tmp_path / "outside.jpg", size=(128, 128))

    mtfl = tmp_path / "mtfl"
    gen.image(mtfl / "a.jpg", size=(128, 128))
    numbers = "10 30 20 12 28 20 20 30 40 40 1 2 1 3"
    (mtfl / "training.txt").write_text(f"a.jpg {numbers}\n..\\outside.jpg {numbers}\n{outside} {numbers}\n")
    reader = open_dataset(f"mtfl:{mtfl}")
    assert [r.group for r in reader] == ["a.jpg"]
    assert sorted(_problems(reader)) == [2, 3]
    assert all("leaves the dataset folder" in p.message and p.path.name == "training.txt" for p in reader.problems)

    ff = _fairface(tmp_path / "ff", gen, ["train/1.jpg,3-9,Female,Black,FALSE", "../outside.jpg,3-9,Male,Black,TRUE",
                                          f"{outside},3-9,Male,Black,TRUE",
                                          "train/../../outside.jpg,3-9,Male,Black,TRUE"])
    reader = open_dataset(f"fairface:{ff}")
    assert [r.group for r in reader] == ["train/1.jpg"]
    assert sorted(_problems(reader)) == [3, 4, 5]
    assert all("leaves the dataset folder" in p.message for p in reader.problems)

    voc = tmp_path / "voc"
    gen.image(voc / "JPEGImages" / "p.jpg", size=(100, 80))
    for name, filename in (("p", "p.jpg"), ("up", "../../outside.jpg"), ("abs", str(outside))):
        (voc / "Annotations").mkdir(parents=True, exist_ok=True)
        (voc / "Annotations" / f"{name}.xml").write_text(
            f"<annotation>\n  <folder>x</folder>\n  <filename>{filename}</filename>\n  <object><name>face</name>"
            "<bndbox><xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>\n</annotation>\n")
    reader = open_dataset(f"voc:{voc}")
    assert [r.image.name for r in reader] == ["p.jpg"]
    assert sorted((p.path.name, p.line) for p in reader.problems) == [("abs.xml", 3), ("up.xml", 3)]
    assert all("leaves the dataset folder" in p.message for p in reader.problems)
