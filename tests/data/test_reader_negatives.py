"""Negatives reader: every image a record with no face; unreadable files reported."""

from __future__ import annotations

from pathlib import Path

from hyperface.data.readers import open_dataset


def test_negatives_recursive_and_bad_file(tmp_path, gen):
    gen.image(tmp_path / "a.png", size=(32, 32))
    gen.image(tmp_path / "deep" / "b.jpg")
    (tmp_path / "deep" / "c.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    reader = open_dataset(f"negatives:{tmp_path}")
    records = list(reader)
    assert [r.group for r in records] == ["a.png", "deep/b.jpg"]
    assert all(r.faces == () and r.all_faces_annotated for r in records)
    assert [Path(p.path).name for p in reader.problems] == ["c.jpg"]
