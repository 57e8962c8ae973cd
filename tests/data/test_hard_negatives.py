"""``prepare --mode hard-negatives``: a detector's false positives become non-face samples.

The detector here is a stub that reports every bright blob of an image (a connected component), so
the tests say which blobs are annotated faces, ignored faces or nothing, and know what is mined.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hyperface.data import hard_negatives
from hyperface.data.hard_negatives import mine_hard_negatives, model_detector
from hyperface.data.labels import overlaps
from hyperface.data.prepare import PrepareOptions, prepare
from hyperface.data.records import FaceRecord, ImageRecord
from hyperface.data.shards import PreparedDataset, read_shard_json

OPTS = PrepareOptions(mode="hard-negatives", teacher="bundled", crop_size=32, ss_mode="none", images_per_shard=2)


def disks(width: int, height: int, *circles: tuple[int, int, int]) -> np.ndarray:
    """A black RGB image with white disks (cx, cy, r)."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    for cx, cy, r in circles:
        cv2.circle(img, (cx, cy), r, (255, 255, 255), -1)
    return img


def blob_detector(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every bright blob's box, scored by its area (bigger blobs first)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((image.mean(axis=2) > 128).astype(np.uint8))
    x, y, w, h, area = stats[1:].T.astype(np.float64)
    boxes = np.stack([x, y, x + w, y + h], axis=1).reshape(-1, 4)
    scores = 0.5 + area / 1e4
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


def disk_box(cx: int, cy: int, r: int) -> np.ndarray:
    """The box ``blob_detector`` gives a disk."""
    (box,), _ = blob_detector(disks(cx + r + 5, cy + r + 5, (cx, cy, r)))
    return box


class Counting:
    """A detector that counts its calls."""

    def __init__(self, detect=blob_detector) -> None:
        self.detect, self.calls = detect, 0

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return self.detect(image)


def _record(*faces: FaceRecord, complete: bool = True) -> ImageRecord:
    return ImageRecord(image=Path("x.png"), faces=faces, source="test", group="x", all_faces_annotated=complete)


IMAGE = disks(120, 80, (30, 40, 12), (90, 40, 12))
FACE_A = FaceRecord(box=disk_box(30, 40, 12))
BLOB_B = disk_box(90, 40, 12)


def test_an_unannotated_blob_is_a_non_face_and_an_annotated_one_is_not():
    boxes, labels, scores = mine_hard_negatives(IMAGE, _record(FACE_A), blob_detector, OPTS)
    np.testing.assert_array_equal(boxes, [BLOB_B])
    row = labels[0]
    assert row["detection"] == 0 and row["detection_mask"]
    for task in ("landmarks", "landmarks5", "visibility"):
        assert not row[f"{task}_mask"].any(), task
    assert not row["pose_mask"] and not row["gender_mask"]
    assert row["face"] == 0 and row["iou"] == 0.0  # matched to A, without any overlap
    np.testing.assert_allclose(row["box"], BLOB_B)
    _, all_scores = blob_detector(IMAGE)
    np.testing.assert_allclose(scores, [all_scores[1]])  # B's own score, not A's


def test_a_face_free_image_gives_every_detection():
    boxes, labels, scores = mine_hard_negatives(IMAGE, _record(), blob_detector, OPTS)
    assert len(boxes) == 2 and (labels["face"] == -1).all() and (labels["detection"] == 0).all()
    assert len(scores) == 2


def test_a_blob_on_an_ignored_face_is_not_mined():
    ignored = FaceRecord(box=BLOB_B + [1, -1, 1, 1], attributes={"ignore": True})
    boxes, _, _ = mine_hard_negatives(IMAGE, _record(FACE_A, ignored), blob_detector, OPTS)
    assert len(boxes) == 0


def test_overlap_with_a_face_decides_by_neg_iou_and_boxes_around_a_face_are_dropped():
    a = FACE_A.box
    shifted = [a + [13, 0, 13, 0], a + [10, 0, 10, 0]]  # IoU 0.32 and 0.43 with A (sides 25)
    around = np.array([0.0, 0.0, 120.0, 80.0])  # IoU ~0.07, but it holds the whole of A
    given = np.array([*shifted, around])
    iou = overlaps(given, a[None])[:, 0]
    assert iou[0] < OPTS.neg_iou < iou[1] and iou[2] < OPTS.neg_iou

    def detector(image):
        return given, np.array([0.9, 0.8, 0.7])

    boxes, labels, scores = mine_hard_negatives(IMAGE, _record(FACE_A), detector, OPTS)
    np.testing.assert_array_equal(boxes, [shifted[0]])
    assert labels["iou"][0] == pytest.approx(iou[0], abs=1e-6) and scores.tolist() == [0.9]


def test_an_image_not_all_annotated_gives_nothing_and_is_not_searched():
    detector = Counting()
    boxes, labels, scores = mine_hard_negatives(IMAGE, _record(FACE_A, complete=False), detector, OPTS)
    assert len(boxes) == len(labels) == len(scores) == 0 and detector.calls == 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="hard-negatives needs a detector"):
        PrepareOptions(mode="hard-negatives")
    with pytest.raises(ValueError, match="teacher_threshold"):
        PrepareOptions(mode="hard-negatives", teacher="bundled", teacher_threshold=1.5)
    with pytest.raises(ValueError, match="teacher_min_face"):
        PrepareOptions(mode="hard-negatives", teacher="bundled", teacher_min_face=0)


def test_the_defaults_are_the_analyzers():
    import inspect

    from hyperface.inference.analyzer import DEFAULT_SCORE_THRESHOLD
    from hyperface.inference.proposals.fast import FastProposals

    assert OPTS.teacher_threshold == DEFAULT_SCORE_THRESHOLD
    assert OPTS.teacher_min_face == inspect.signature(FastProposals).parameters["min_face"].default


# -- the prepare job ----------------------------------------------------------------------------

_VOC = """<annotation><filename>p1.png</filename>
  <object><name>face</name><bndbox><xmin>{a[0]:g}</xmin><ymin>{a[1]:g}</ymin><xmax>{a[2]:g}</xmax><ymax>{a[3]:g}</ymax></bndbox></object>
  <object><name>face</name><bndbox><xmin>{c[0]:g}</xmin><ymin>{c[1]:g}</ymin><xmax>{c[2]:g}</xmax><ymax>{c[3]:g}</ymax></bndbox></object>
</annotation>"""


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> dict[str, str]:
    """A VOC photo (face A annotated, blob B not, face C annotated but under min_face: ignored),
    a face-free folder (one blob, one black image) and a .pts folder (faces not all annotated)."""
    root = tmp_path_factory.mktemp("pool")
    voc, neg, pts = root / "voc", root / "neg", root / "pts"
    for d in (voc / "Annotations", voc / "JPEGImages", neg, pts):
        d.mkdir(parents=True)
    Image.fromarray(disks(160, 120, (40, 50, 14), (110, 50, 14), (130, 100, 7))).save(voc / "JPEGImages" / "p1.png")
    (voc / "Annotations" / "p1.xml").write_text(_VOC.format(a=disk_box(40, 50, 14), c=disk_box(130, 100, 7)))
    Image.fromarray(disks(64, 64, (32, 32, 10))).save(neg / "n1.png")
    Image.fromarray(disks(64, 64)).save(neg / "n2.png")
    Image.fromarray(disks(120, 100, (90, 50, 12))).save(pts / "f1.png")
    points = np.random.default_rng(0).uniform(10, 45, size=(68, 2))
    (pts / "f1.pts").write_text("\n".join(f"{x:.2f} {y:.2f}" for x, y in points) + "\n")
    return {"voc": f"voc:{voc}?min_face=20", "negatives": f"negatives:{neg}", "pts": f"pts:{pts}"}


@pytest.fixture
def stub(monkeypatch):
    """``model_detector`` replaced by the counting blob detector; the factory's calls recorded."""
    detector = Counting()
    detector.made = []

    def make(spec: str, threshold: float, min_face: float, proposals: str = "fast"):
        detector.made.append((spec, threshold, min_face, proposals))
        return detector

    hard_negatives.detector_for.cache_clear()
    monkeypatch.setattr(hard_negatives, "model_detector", make)
    yield detector
    hard_negatives.detector_for.cache_clear()


def test_prepare_mines_the_unannotated_blobs_of_complete_images(pool, stub, tmp_path):
    manifest = prepare(list(pool.values()), tmp_path / "hn", OPTS, progress=False)
    assert manifest["complete"] and stub.calls == 3  # p1, n1, n2: the .pts image is not searched
    assert stub.made == [("bundled", 0.5, 20.0, "fast")]
    by_source = manifest["counts"]["by_source"]
    assert [(s["samples"], s["searched"]) for s in by_source.values()] == [(1, 1), (1, 2), (0, 0)]
    assert [s["train"]["searched"] + s["val"]["searched"] for s in by_source.values()] == [1, 2, 0]
    ds = PreparedDataset(tmp_path / "hn", split=None)
    assert len(ds) == 2 and ds.tasks_present == ("detection",)
    infos = sorted((ds.info(i)["image"], i) for i in range(len(ds)))
    assert [name for name, _ in infos] == ["JPEGImages/p1.png", "n1.png"]
    (_, voc_i), (_, neg_i) = infos
    np.testing.assert_allclose(ds.info(voc_i)["box"], disk_box(110, 50, 14))  # blob B
    np.testing.assert_allclose(ds.info(neg_i)["box"], disk_box(32, 32, 10))
    _, scores = blob_detector(disks(64, 64, (32, 32, 10)))
    assert ds.info(neg_i)["score"] == pytest.approx(scores[0])
    from hyperface.data.preview import draw_tile

    info = ds.info(neg_i)  # the contact sheet writes the score under the tile
    assert not np.array_equal(draw_tile(ds[neg_i], info, ds.context, 64),
                              draw_tile(ds[neg_i], dict(info, score=None), ds.context, 64))
    for i in range(len(ds)):
        s = ds[i]
        assert s["detection"] == 0 and s["detection_mask"] and not s["landmarks_mask"].any()
        assert s["image"].shape == (32, 32, 3) and s["image"].mean() > 40  # the blob is in the crop


def test_the_crop_is_the_candidates_modes_crop_of_the_same_box(pool, stub, tmp_path):
    candidates = replace_mode(OPTS, "candidates")
    prepare([pool["negatives"]], tmp_path / "cand", candidates, progress=False)
    cand = PreparedDataset(tmp_path / "cand", split=None)
    k = next(i for i in range(len(cand)) if cand.info(i)["image"] == "n1.png" and cand[i]["image"].mean() > 20)
    box = cand.info(k)["box"]
    stub.detect = lambda image: (box[None], np.array([0.9]))
    prepare([pool["negatives"]], tmp_path / "hn", OPTS, progress=False)
    hn = PreparedDataset(tmp_path / "hn", split=None)
    j = next(i for i in range(len(hn)) if hn.info(i)["image"] == "n1.png")
    np.testing.assert_allclose(hn.info(j)["box"], box)
    diff = np.abs(hn[j]["image"].astype(int) - cand[k]["image"].astype(int))
    assert diff.max() <= 1  # the same crop (the stored box is float32; the candidate's was float64)


def replace_mode(opts: PrepareOptions, mode: str) -> PrepareOptions:
    from dataclasses import replace

    return replace(opts, mode=mode, teacher="none")


def test_a_rerun_is_a_no_op(pool, stub, tmp_path):
    out = tmp_path / "hn"
    first = prepare(list(pool.values()), out, OPTS, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "shards").rglob("*") if p.is_file()}
    calls, finished = stub.calls, []
    second = prepare(list(pool.values()), out, OPTS, progress=False, on_shard=finished.append)
    assert stub.calls == calls and finished == []
    assert {p: p.stat().st_mtime_ns for p in (out / "shards").rglob("*") if p.is_file()} == stamps
    assert second["shards"] == first["shards"] and second["counts"] == first["counts"]
    scores = [read_shard_json(out / s["path"])["scores"] for s in second["shards"]]
    assert sum(len(x) for x in scores) == 2


def test_a_job_written_before_the_teacher_options_resumes(pool, tmp_path):
    opts = replace_mode(OPTS, "candidates")
    out = tmp_path / "old"
    prepare([pool["negatives"]], out, opts, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("teacher_threshold", "teacher_min_face"):
        del manifest["options"][key]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert prepare([pool["negatives"]], out, opts, progress=False)["complete"]
    with pytest.raises(ValueError, match="other options \\(teacher_threshold\\)"):
        from dataclasses import replace

        prepare([pool["negatives"]], out, replace(opts, teacher_threshold=0.7), progress=False)


def _cli(monkeypatch, *argv: str) -> int:
    from hyperface.cli.main import main

    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    return main(list(argv))


def test_cli(pool, stub, tmp_path, monkeypatch, capsys):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"stub")  # the stub detector stands in for the model it names
    out = tmp_path / "hn"
    rc = _cli(monkeypatch, "prepare", "--mode", "hard-negatives", "--teacher", str(weights),
              "--teacher-threshold", "0.7", "--teacher-min-face", "30", "--crop-size", "32",
              "--teacher-proposals", "fast:weights/cascade",
              "--source", pool["voc"], "--source", pool["negatives"], "--out", str(out), "--no-progress")
    text = capsys.readouterr().out
    assert rc == 0 and stub.made == [(str(weights), 0.7, 30.0, "fast:weights/cascade")]
    # every image of this pool falls in the train split
    assert "1 false positives on 1 images with every face annotated (per image: 1.000 train, 0.000 val)" in text
    assert "1 false positives on 2 images with every face annotated (per image: 0.500 train, 0.000 val)" in text
    assert len(PreparedDataset(out, split=None)) == 2
    assert _cli(monkeypatch, "prepare", "preview", str(out), "--out", str(tmp_path / "fp.png"), "--split", "all") == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 2 and (tmp_path / "fp.png").stat().st_size > 0

    rc = _cli(monkeypatch, "prepare", "--mode", "hard-negatives", "--source", pool["negatives"],
              "--out", str(tmp_path / "x"), "--no-progress")
    assert rc == 1 and "needs a detector" in capsys.readouterr().err
    missing = tmp_path / "nowhere.safetensors"
    rc = _cli(monkeypatch, "prepare", "--mode", "hard-negatives", "--teacher", str(missing),
              "--source", pool["negatives"], "--out", str(tmp_path / "y"), "--no-progress")
    assert rc == 1 and f"{missing}: weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "y" / "manifest.json").exists()


def test_the_bundled_detector_loads_and_reports_faces():
    from hyperface.data.images import load_image
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

    try:
        image = load_image(asset_path(EXAMPLE_IMAGE))
        asset_path("hyperface-compact.safetensors")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    detector = model_detector("bundled", 0.5, 20.0)
    boxes, scores = detector(image)
    assert boxes.shape == (len(scores), 4) and len(scores) >= 1 and (scores >= 0.5).all()
    _, _, mined = mine_hard_negatives(image, _record(), detector, OPTS)
    np.testing.assert_allclose(mined, scores)  # face-free by its annotation: every detection is mined
    faces = tuple(FaceRecord(box=b) for b in boxes)
    assert len(mine_hard_negatives(image, _record(*faces), detector, OPTS)[0]) == 0
