"""Property-based fuzzing (Hypothesis) of every annotation parser and reader, and of the boxes file.

Random text, random bytes and mutations of a valid file (characters inserted, deleted or replaced,
format tokens such as ``nan``, ``1e999``, a stray quote, ``../``, a byte-order mark spliced in) must
never make a parser raise anything but its documented error, nor a reader anything but
:class:`~hyperface.data.readers.DatasetError` (bad items are reported as problems), nor take long.

The default run tries 50 examples per parser, derandomised (the same ones every run, so CI is
stable); ``-m slow`` tries 1,000 fresh random ones each.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.aflw2000 import MatError, read_aflw2000_mat
from hyperface.data.readers.menpo import parse_ljson
from hyperface.data.readers.pts import AnnotationError, read_pts
from hyperface.data.readers.utkface import parse_utkface_name
from hyperface.inference.proposals.boxes import read_boxes_file

RUNS = [pytest.param(50, id="quick"), pytest.param(1000, id="1000", marks=pytest.mark.slow)]

# Tokens that mean something to one format or another, spliced into valid files.
TOKENS = ["", " ", "\t", "\n", "\r\n", "\r", "{", "}", "[", "]", ":", ",", ";", '"', "'", "#", "nan", "NaN",
          "inf", "-inf", "1e308", "-1e308", "1e999", "0", "-0", "-1", "68", "5", "21", "1_0", "\u00b2", "\u0663",
          "\ufeff", "\x00", "\u2028", "..", "../", "/", "\\", "..\\", "/etc/passwd", "<", ">", "&", "&amp;",
          "<!DOCTYPE x [<!ENTITY e 'x'>]>", "&e;", "]]>", "<![CDATA[", "null", "true", "{}", "[]", "[[", "]]",
          "n_points:", "version:", "Male", "Female", "more than 70", "3-9", "jpg", ".jpg", "x" * 300]

_CHARS = st.characters(exclude_categories=("Cs",))  # any character UTF-8 can encode


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for pos, drop, insert in edits:
        pos = pos % (len(text) + 1)
        text = text[:pos] + insert + text[pos + drop:]
    return text


def texts(valid: str) -> st.SearchStrategy[str]:
    """Mutations of ``valid``, token soup and plain random text."""
    edit = st.tuples(st.integers(0, 10_000), st.integers(0, 6),
                     st.one_of(st.sampled_from(TOKENS), st.text(_CHARS, max_size=6)))
    return st.one_of(
        st.lists(edit, min_size=1, max_size=8).map(lambda edits: _apply(valid, edits)),
        st.lists(st.sampled_from(TOKENS + valid.split()), max_size=40).map(" ".join),
        st.text(_CHARS, max_size=400),
    )


def contents(valid: str) -> st.SearchStrategy[bytes]:
    """File contents: :func:`texts` in UTF-8, or random bytes."""
    return st.one_of(texts(valid).map(lambda t: t.encode("utf-8")), st.binary(max_size=400))


def json_docs(keys: list[str]) -> st.SearchStrategy[bytes]:
    """Random JSON documents whose objects use the format's own ``keys``: right words, wrong structure."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**400), st.floats(),
                        st.text(_CHARS, max_size=8))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.sampled_from(keys) | st.text(max_size=4), inner, max_size=5)),
        max_leaves=40)
    nested = st.integers(1, 200_000).map(lambda depth: "[" * depth)  # deeper than Python's recursion limit
    return st.one_of(values.map(lambda v: json.dumps(v, allow_nan=True)), nested).map(str.encode)


def fuzz(examples: int, strategy: st.SearchStrategy, check: Callable, known: tuple = ()) -> None:
    """Run ``check`` on the ``known`` cases (inputs fuzzing found once) and on ``examples`` values of
    ``strategy`` (derandomised for the quick run)."""
    test = given(strategy)(check)
    for case in known:
        test = example(case)(test)
    settings(max_examples=examples, deadline=timedelta(seconds=10), database=None, derandomize=examples <= 50,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(test)()


@pytest.fixture
def folder():
    """A scratch folder for one test's examples (Hypothesis runs many examples in one test call)."""
    path = Path(tempfile.mkdtemp(prefix="hyperface-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _image(path: Path, size: tuple[int, int] = (96, 80)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 90, 60)).save(path)
    return path


def _read_all(spec: str) -> None:
    """Open and read a whole dataset: bad items become problems; only a DatasetError may escape."""
    try:
        reader = open_dataset(spec)
    except DatasetError:
        return
    try:
        list(reader)
    except DatasetError:
        return
    for problem in reader.problems:
        assert str(problem)  # every problem renders as a line naming its file


PTS = "version: 1\nn_points: 5\n{\n30 30\n60 30\n45 45\n35 60\n55 60\n}\n"
LJSON = '{"version": 3, "groups": {"LJSON": {"landmarks": {"points": [[30, 30], [30, 60], [45, 45], [60, 35], ' \
        '[60, 55]], "connectivity": []}, "labels": []}, "pupils": {"landmarks": {"points": [[1, 2]]}}}}'
MTFL = "img\\a.jpg 30 60 45 35 55 30 30 45 60 60 1 2 1 3\n img\\a.jpg 31 61 45 35 55 30 30 45 60 60 2 1 2 4\n"
FAIRFACE = ("file,age,gender,race,service_test\ntrain/1.jpg,3-9,Female,Black,FALSE\n"
            "train/1.jpg,20-29,Male,White,TRUE\ntrain/2.jpg,more than 70,Male,Indian,FALSE\n")
VOC = ("<annotation><folder>x</folder><filename>p.jpg</filename><size><width>96</width><height>80</height>"
       "</size><object><name>face</name><bndbox><xmin>10</xmin><ymin>12</ymin><xmax>50</xmax><ymax>60</ymax>"
       "</bndbox></object><object><name>hand</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5</xmax>"
       "<ymax>6</ymax></bndbox></object></annotation>")
DLIB = ("<?xml version='1.0'?><dataset><name>x</name><images><image file='p.jpg'><box top='10' left='12' "
        "width='40' height='40'><part name='00' x='15' y='20'/></box><box top='1' left='2' width='3' height='4' "
        "ignore='1'/></image><image file='sub/q.jpg'/></images></dataset>")
CELEBA = ("2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
          "rightmouth_y\n000001.jpg 30 30 60 30 45 45 35 60 55 60\n000002.jpg 1 2 3 4 5 6 7 8 9 10\n")
BOXES = "p.jpg 10 12 50 60 0.9\n\"my photo.jpg\" 1 2 3 4 # comment\nq.jpg,5,5,20,20\n"
BOXES_JSON = ('{"p.jpg": [[10, 12, 50, 60]], "q.jpg": []}\n', '[{"input": "p.jpg", "frame": 3, "faces": '
              '[{"box": [1, 2, 3, 4]}]}]', '{"input": "p.jpg", "boxes": [[1, 2, 3, 4]]}\n{"image": "q.jpg", '
              '"boxes": []}\n')


@pytest.mark.parametrize("examples", RUNS)
def test_pts_parser_and_reader(examples, folder):
    _image(folder / "a.png")

    def check(data: bytes) -> None:
        (folder / "a.pts").write_bytes(data)
        try:
            points, lines = read_pts(folder / "a.pts")
            assert len(points) == len(lines) and np.isfinite(points).all()
        except AnnotationError:
            pass
        _read_all(f"pts:{folder}")

    fuzz(examples, contents(PTS), check, known=(PTS.replace("n_points: 5", "n_points: \u00b2").encode(),))


@pytest.mark.parametrize("examples", RUNS)
def test_ljson_parser_and_reader(examples, folder):
    _image(folder / "a.png")

    def check(data: bytes) -> None:
        (folder / "a.ljson").write_bytes(data)
        try:
            points, visibility, _ = parse_ljson(folder / "a.ljson")
            assert points.shape[1] == 2 and (visibility is None or len(visibility) == len(points))
        except AnnotationError:
            pass
        _read_all(f"ljson:{folder}")

    fuzz(examples, contents(LJSON) | json_docs(["version", "groups", "LJSON", "landmarks", "points", "labels"]),
         check)


@pytest.mark.parametrize("examples", RUNS)
def test_utkface_names(examples):
    def check(name: str) -> None:
        try:
            age, gender, race = parse_utkface_name(name)
        except ValueError as exc:
            assert str(exc).startswith("malformed UTKFace name")
            return
        assert 0 <= age <= 130 and gender in (0, 1) and 0 <= race <= 4

    fuzz(examples, texts("25_1_3_20170116174525125.jpg.chip.jpg"), check, known=("2\u00b2_1_3_2017.jpg",))


WIDER = ("0--Parade/a.jpg\n2\n10 12 20 24 0 0 0 0 0 0 \n40 8 6 6 2 0 0 1 1 1 \n1--Handshaking/b.jpg\n0\n"
         "0 0 0 0 0 0 0 0 0 0 \n")


# Readers of one annotation file in a dataset folder: (specs read, images the folder holds, the fuzzed file,
# a valid file, known hostile files).
FILE_READERS = {
    "mtfl": (["mtfl:{folder}"], ["img/a.jpg"], "training.txt", MTFL, ()),
    "fairface": (["fairface:{folder}"], ["train/1.jpg", "train/2.jpg"], "fairface_label_train.csv", FAIRFACE,
                 (FAIRFACE.replace("train/1.jpg,3", "x" * 300 + "/1.jpg,3").encode(),)),
    "voc": (["voc:{folder}", "voc:{folder}?classes=face,hand&min_face=20"], ["JPEGImages/p.jpg"],
            "Annotations/p.xml", VOC, ()),
    "dlib": (["dlib:{folder}/faces.xml"], ["p.jpg", "sub/q.jpg"], "faces.xml", DLIB,
             (DLIB.replace("name='00'", "name='\u00b2'").encode(),)),
    "celeba": (["celeba:{folder}"], ["img_align_celeba/000001.jpg"], "list_landmarks_align_celeba.txt", CELEBA, ()),
    "wider": (["wider:{folder}", "wider:{folder}?min_face=10"], ["images/0--Parade/a.jpg", "images/1--Handshaking/b.jpg"],
              "wider_face_val_bbx_gt.txt", WIDER, ()),
}


@pytest.mark.parametrize("examples", RUNS)
@pytest.mark.parametrize("fmt", list(FILE_READERS))
def test_file_readers(fmt, examples, folder):
    specs, images, name, valid, known = FILE_READERS[fmt]
    for image in images:
        _image(folder / image)
    (folder / name).parent.mkdir(parents=True, exist_ok=True)

    def check(data: bytes) -> None:
        (folder / name).write_bytes(data)
        for spec in specs:
            _read_all(spec.format(folder=folder))

    fuzz(examples, contents(valid), check, known=known)


@pytest.mark.parametrize("examples", RUNS)
def test_boxes_file(examples, folder):
    def check(data: bytes) -> None:
        (folder / "boxes.txt").write_bytes(data)
        try:
            boxes = read_boxes_file(folder / "boxes.txt")
        except ValueError:
            return
        for name, array in boxes.items():
            assert isinstance(name, str) and array.dtype == np.float32 and array.shape[1:] == (4,)

    valid = st.sampled_from([BOXES, *BOXES_JSON]).flatmap(contents)
    fuzz(examples, valid | json_docs(["input", "image", "path", "frame", "boxes", "faces", "box", "p.jpg"]), check)


# AFLW2000-3D's .mat files: random fields of random shapes and kinds, and damaged bytes of a valid file.
_ARRAYS = st.one_of(
    st.sampled_from([(2, 21), (21, 2), (3, 68), (1, 7), (7,), (0,), (2, 20), (1, 1), (68, 3)]).flatmap(
        lambda shape: st.sampled_from([-1.0, 0.0, 1.0, 1e308, np.nan, np.inf]).map(
            lambda fill, s=shape: np.full(s, fill))),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50).map(np.array),
    st.text(_CHARS, max_size=20),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(-5, 5), max_size=2),
)


def _valid_mat() -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"pt2d": np.arange(42.0).reshape(2, 21), "Pose_Para": np.zeros((1, 7)),
                              "pt3d_68": np.ones((3, 68))})
    return buffer.getvalue()


@pytest.mark.parametrize("examples", RUNS)
def test_aflw2000_mat_reader(examples, folder):
    _image(folder / "a.jpg")
    valid = _valid_mat()
    fields = st.dictionaries(st.sampled_from(["pt2d", "Pose_Para", "pt3d_68", "other"]), _ARRAYS, max_size=4)
    damaged = st.lists(st.tuples(st.integers(0, len(valid)), st.integers(0, 8), st.binary(max_size=8)),
                       min_size=1, max_size=6).map(
        lambda edits: _apply(valid.decode("latin-1"), [(p, d, b.decode("latin-1")) for p, d, b in edits])
        .encode("latin-1"))

    def check(case) -> None:
        path = folder / "a.mat"
        if isinstance(case, bytes):
            path.write_bytes(case)
        else:
            try:
                scipy.io.savemat(str(path), case)
            except Exception:  # noqa: BLE001 - a value scipy itself cannot write: nothing to read
                return
        try:
            read_aflw2000_mat(path)
        except MatError:
            pass
        _read_all(f"aflw2000:{folder}")

    fuzz(examples, st.one_of(fields, damaged), check, known=({"pt2d": ":"}, {"pt2d": {"a": 0, "b": 0}}))

