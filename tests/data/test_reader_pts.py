"""The iBUG .pts reader on generated folders: both file layouts, point sets, and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.pts import PTS_ORIGIN, AnnotationError, PtsReader, parse_pts, write_pts


def _problems_by_file(reader) -> dict[str, list]:
    out: dict[str, list] = {}
    for p in reader.problems:
        out.setdefault(Path(p.path).name, []).append(p)
    return out


def test_header_and_headerless_files_give_the_same_points(tmp_path, gen):
    pts = gen.points(68)
    gen.pts(tmp_path / "a.pts", pts, header=True)
    gen.pts(tmp_path / "b.pts", pts, header=False)
    np.testing.assert_allclose(parse_pts(tmp_path / "a.pts"), pts + PTS_ORIGIN, atol=1e-3)  # the file's numbers
    np.testing.assert_allclose(parse_pts(tmp_path / "b.pts"), pts + PTS_ORIGIN, atol=1e-3)


def test_folder_is_read_recursively_with_point_sets_boxes_and_groups(tmp_path, gen):
    p68, p21, p5 = gen.points(68, offset=(3, 4)), gen.points(21, offset=(7, 8)), gen.points(5, offset=(1, 2))
    gen.pts(tmp_path / "a" / "img68.pts", p68)
    gen.image(tmp_path / "a" / "img68.jpg")
    gen.pts(tmp_path / "b" / "c" / "img21.pts", p21, header=False)
    gen.image(tmp_path / "b" / "c" / "img21.PNG")  # suffix case does not matter
    gen.pts(tmp_path / "img5.pts", p5)
    gen.image(tmp_path / "img5.bmp")
    reader = PtsReader(tmp_path)
    records = {r.group: r for r in reader}
    assert reader.problems == []
    assert sorted(records) == ["a/img68.jpg", "b/c/img21.PNG", "img5.bmp"]
    face = records["a/img68.jpg"].faces[0]
    assert face.point_set == "ibug68" and face.landmarks.shape == (68, 2) and face.visibility is None
    np.testing.assert_allclose(face.box, [3, 4, 23, 24], atol=1e-3)  # tight box of the points
    assert records["b/c/img21.PNG"].faces[0].point_set == "aflw21"
    assert records["img5.bmp"].faces[0].point_set == "five"
    rec = records["a/img68.jpg"]
    assert rec.image == tmp_path / "a" / "img68.jpg" and rec.frame is None and not rec.all_faces_annotated


def test_one_based_coordinates_become_zero_based_and_write_pts_gives_them_back(tmp_path, gen):
    # 300-W files are 1-based (the first pixel's centre is (1, 1)); records are 0-based pixels.
    (tmp_path / "one.pts").write_text("version: 1\nn_points: 5\n{\n1 1\n2 1\n1.5 2\n1 3\n2 3\n}\n")
    gen.image(tmp_path / "one.jpg")
    (record,) = list(PtsReader(tmp_path))
    np.testing.assert_array_equal(record.faces[0].landmarks[0], [0.0, 0.0])
    np.testing.assert_array_equal(record.faces[0].box, [0, 0, 1, 2])
    (tmp_path / "copy").mkdir()
    write_pts(tmp_path / "copy" / "one.pts", record.faces[0].landmarks)
    assert (tmp_path / "copy" / "one.pts").read_text().splitlines()[3] == "1.000 1.000"  # 1-based again
    gen.image(tmp_path / "copy" / "one.jpg")
    (again,) = list(PtsReader(tmp_path / "copy"))
    np.testing.assert_array_equal(again.faces[0].landmarks, record.faces[0].landmarks)


def test_single_file_path(tmp_path, gen):
    gen.pts(tmp_path / "x.pts", gen.points(68))
    gen.image(tmp_path / "x.jpg")
    gen.pts(tmp_path / "y.pts", gen.points(68))
    gen.image(tmp_path / "y.jpg")
    records = list(open_dataset(f"pts:{tmp_path / 'x.pts'}"))
    assert [r.group for r in records] == ["x.jpg"]


def _write_bad_folder(root: Path, gen) -> None:
    good = gen.points(68)
    lines = [f"{x} {y}" for x, y in good]
    gen.pts(root / "good1.pts", good)
    gen.image(root / "good1.jpg")
    gen.pts(root / "good2.pts", good, header=False)
    gen.image(root / "good2.jpg")
    # header says 68, 67 follow: reported at the closing brace (line 71 = 3 header lines + 67 + 1)
    (root / "count.pts").write_text("\n".join(["version: 1", "n_points: 68", "{", *lines[:67], "}"]) + "\n")
    # NaN on the 10th point: line 3 + 10 = 13
    nan_lines = list(lines)
    nan_lines[9] = "nan 4.0"
    (root / "nan.pts").write_text("\n".join(["version: 1", "n_points: 68", "{", *nan_lines, "}"]) + "\n")
    inf_lines = list(lines)
    inf_lines[0] = "inf 2"
    (root / "inf.pts").write_text("\n".join(inf_lines) + "\n")  # headerless: line 1
    word_lines = list(lines)
    word_lines[4] = "12.0 abc"
    (root / "word.pts").write_text("\n".join(["version: 1", "n_points: 68", "{", *word_lines, "}"]) + "\n")
    (root / "header.pts").write_text("\n".join(["version: 1", "n_points: sixty", "{", *lines, "}"]) + "\n")
    (root / "nobrace.pts").write_text("\n".join(["version: 1", "n_points: 68", *lines, "}"]) + "\n")
    (root / "truncated.pts").write_text("\n".join(["version: 1", "n_points: 68", "{", *lines[:30]]) + "\n")
    (root / "odd.pts").write_text("\n".join(lines[:67]) + "\n")  # 67 points: no point set
    (root / "empty.pts").write_text("")
    for name in ("count", "nan", "inf", "word", "header", "nobrace", "truncated", "odd", "empty"):
        gen.image(root / f"{name}.jpg")
    gen.pts(root / "noimage.pts", good)


def test_each_bad_file_is_reported_with_its_line_and_the_rest_is_read(tmp_path, gen):
    _write_bad_folder(tmp_path, gen)
    reader = PtsReader(tmp_path)
    records = list(reader)
    assert sorted(r.group for r in records) == ["good1.jpg", "good2.jpg"]
    problems = _problems_by_file(reader)
    assert set(problems) == {"count.pts", "nan.pts", "inf.pts", "word.pts", "header.pts", "nobrace.pts",
                             "truncated.pts", "odd.pts", "empty.pts", "noimage.pts"}
    assert all(len(v) == 1 for v in problems.values())
    p = {name: v[0] for name, v in problems.items()}
    assert p["count.pts"].line == 71 and "n_points: 68" in p["count.pts"].message and "67" in p["count.pts"].message
    assert p["nan.pts"].line == 13 and "non-finite" in p["nan.pts"].message
    assert p["inf.pts"].line == 1
    assert p["word.pts"].line == 8 and "not a number" in p["word.pts"].message
    assert p["header.pts"].line == 2 and "bad header" in p["header.pts"].message
    assert "bad header" in p["nobrace.pts"].message
    assert "truncated" in p["truncated.pts"].message and p["truncated.pts"].line == 33
    assert "67 points" in p["odd.pts"].message
    assert "empty" in p["empty.pts"].message
    assert "no image" in p["noimage.pts"].message and p["noimage.pts"].line is None
    # The string form names file and line, as `data check` prints it.
    assert str(p["nan.pts"]) == f"{tmp_path / 'nan.pts'}:13: {p['nan.pts'].message}"


def test_parse_pts_raises_with_line(tmp_path):
    (tmp_path / "a.pts").write_text("version: 1\nn_points: 2\n{\n1 2\n3\n}\n")
    with pytest.raises(AnnotationError) as info:
        parse_pts(tmp_path / "a.pts")
    assert info.value.line == 5


def test_truncated_or_garbage_image_is_reported(tmp_path, gen):
    pts = gen.points(68)
    for name in ("ok", "cut", "junk"):
        gen.pts(tmp_path / f"{name}.pts", pts)
    gen.image(tmp_path / "ok.jpg")
    big = gen.image(tmp_path / "cut.jpg", size=(256, 256))
    data = big.read_bytes()
    big.write_bytes(data[: len(data) // 2])  # header intact, data cut off
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image")

    quick = PtsReader(tmp_path, verify_images=False)
    assert sorted(r.group for r in quick) == ["cut.jpg", "ok.jpg"]  # header-only read misses the cut
    assert [Path(p.path).name for p in quick.problems] == ["junk.jpg"]

    full = PtsReader(tmp_path, verify_images=True)
    assert [r.group for r in full] == ["ok.jpg"]
    assert sorted(Path(p.path).name for p in full.problems) == ["cut.jpg", "junk.jpg"]
    assert all("decode" in p.message for p in full.problems)


def test_missing_folder_and_wrong_file_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        PtsReader(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DatasetError, match="x.txt"):
        PtsReader(tmp_path / "x.txt")
