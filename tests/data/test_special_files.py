"""Only regular files are read from datasets and folders: a FIFO named like an annotation or an image
(which blocks whoever opens it until a writer appears) is reported by name and skipped, never opened.

Each command runs in a daemon thread with a deadline; on exit :func:`hostile_files.fifos` releases any
reader still blocked, so code that hangs fails the test instead of hanging the run.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from hostile_files import fifos
from hyperface.cli.main import main
from hyperface.data.images import ImageReadError, image_size, load_image
from hyperface.data.prepare import PrepareOptions, prepare
from hyperface.data.readers import DatasetError, open_dataset

DEADLINE_S = 60
OPTS = PrepareOptions(crop_size=32, ss_mode="none", images_per_shard=8, min_box=6, val_fraction=0.0)


def _finishes(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``'s result, or a test failure when it is still running after the deadline."""
    out: dict = {}

    def target() -> None:
        try:
            out["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(DEADLINE_S)
    assert not worker.is_alive(), f"{getattr(fn, '__name__', fn)} still running after {DEADLINE_S} s (a FIFO read?)"
    if "error" in out:
        raise out["error"]
    return out["result"]


def _check_json(spec: str, capsys) -> dict:
    assert _finishes(main, ["data", "check", "--json", spec]) == 0
    return json.loads(capsys.readouterr().out)["datasets"][0]


def _problems(doc: dict) -> dict[str, str]:
    return {Path(p["path"]).name: p["message"] for p in doc["problems"]}


def test_a_fifo_annotation_in_a_pts_folder_is_reported_and_skipped(tmp_path, gen, capsys):
    gen.pts(tmp_path / "good.pts", gen.points(68, offset=(10, 5), scale=30))
    gen.image(tmp_path / "good.jpg", size=(64, 48))
    gen.pts(tmp_path / "x.pts", gen.points(68, offset=(10, 5), scale=30))
    with fifos(tmp_path / "a.pts", tmp_path / "x.jpg"):
        doc = _check_json(f"pts:{tmp_path}", capsys)
    assert doc["images"] == 1
    problems = _problems(doc)
    assert "not a regular file (a named pipe (FIFO))" in problems["a.pts"]
    assert "no image next to it" in problems["x.pts"]  # x.jpg, a FIFO, is not taken for an image


def test_a_fifo_image_in_an_image_folder_is_reported_and_skipped(tmp_path, gen, capsys):
    gen.image(tmp_path / "20_1_0_20170109142408075.jpg.chip.jpg")
    with fifos(tmp_path / "21_0_0_20170109142408075.jpg.chip.jpg", tmp_path / "sub" / "x.jpg"):
        utk = _check_json(f"utkface:{tmp_path}", capsys)
        negatives = _check_json(f"negatives:{tmp_path}", capsys)
    assert utk["images"] == 1 and "a named pipe (FIFO)" in _problems(utk)["21_0_0_20170109142408075.jpg.chip.jpg"]
    assert negatives["images"] == 1 and set(_problems(negatives)) == {"21_0_0_20170109142408075.jpg.chip.jpg",
                                                                       "x.jpg"}


def test_a_fifo_xml_in_a_voc_folder_is_reported_and_skipped(tmp_path, gen, capsys):
    ann = tmp_path / "Annotations"
    ann.mkdir()
    gen.image(tmp_path / "JPEGImages" / "p.jpg", size=(100, 80))
    (ann / "p.xml").write_text("<annotation><filename>p.jpg</filename><object><name>face</name><bndbox>"
                               "<xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>"
                               "</annotation>")
    with fifos(ann / "a.xml"):
        doc = _check_json(f"voc:{tmp_path}", capsys)
    assert doc["images"] == 1 and doc["faces"] == 1
    assert "a named pipe (FIFO)" in _problems(doc)["a.xml"]


def test_a_fifo_named_by_an_annotation_is_refused_as_an_image(tmp_path, gen):
    (tmp_path / "faces.xml").write_text("<dataset><images><image file='x.jpg'><box top='5' left='5' width='20' "
                                        "height='20'/></image><image file='ok.jpg'/></images></dataset>")
    gen.image(tmp_path / "ok.jpg")
    with fifos(tmp_path / "x.jpg", tmp_path / "given.xml") as (fifo, given):
        for read in (image_size, load_image):
            with pytest.raises(ImageReadError, match="not a regular file"):
                _finishes(read, fifo)
        reader = open_dataset(f"dlib:{tmp_path / 'faces.xml'}")
        records = _finishes(list, reader)
        with pytest.raises(DatasetError, match="not a regular file or a folder"):
            _finishes(open_dataset, f"dlib:{given}")
    assert [r.image.name for r in records] == ["ok.jpg"]
    assert [(p.path.name, "not a regular file" in p.message) for p in reader.problems] == [("x.jpg", True)]


def test_prepare_with_fifos_in_a_source_finishes_and_names_them(tmp_path, gen):
    src = tmp_path / "src"
    good = gen.points(68, offset=(20, 15), scale=40)
    gen.pts(src / "good.pts", good)
    gen.image(src / "good.png", size=(96, 80))
    with fifos(src / "a.pts", src / "other" / "b.pts"):
        manifest = _finishes(prepare, [f"pts:{src}"], tmp_path / "out", OPTS, progress=False)
    assert manifest["complete"] and manifest["counts"]["images"] == 1
    skipped = {Path(s["path"]).name: s["message"] for s in manifest["skipped"]}
    assert set(skipped) == {"a.pts", "b.pts"} and all("not a regular file" in m for m in skipped.values())
