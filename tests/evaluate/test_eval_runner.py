"""The runner and summaries with a stub model whose answers are known: perfect, shifted, missed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperface.data.records import FaceRecord, ImageRecord
from hyperface.evaluate.references import matching_box, pose_reference
from hyperface.evaluate.report import to_markdown
from hyperface.evaluate.runner import run_models
from hyperface.evaluate.summary import summarize
from hyperface.inference.result import Face


def _image(tmp_path, name: str, size=(200, 200)) -> str:
    path = tmp_path / name
    Image.new("RGB", size, (120, 110, 100)).save(path)
    return path


def _points68(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(50, 150, size=(68, 2))
    pts[36], pts[45] = (50, 90), (150, 90)  # outer eye corners 100 pixels apart
    return pts


class StubModel:
    """Answers from tables keyed by image key; ``given`` returns ``given_answer(key, box)``."""

    name = "stub"
    tasks = ("detection", "landmarks", "pose", "gender")
    score_threshold = 0.5

    def __init__(self, point_set="ibug68", detect=None, detect_all=None, given=None, fail=()):
        self.point_set = point_set
        self._detect = detect or {}
        self._all = detect_all
        self._given = given
        self._fail = set(fail)
        self.given_boxes = []

    def detect(self, image, key=None):
        if key in self._fail:
            raise RuntimeError("boom")
        return self._detect.get(key, [])

    def detect_all(self, image, key=None):
        return (self._all or self._detect).get(key, [])

    def given(self, image, boxes, key=None):
        self.given_boxes.append(np.array(boxes))
        return [self._given(key, b) if self._given else None for b in boxes]


def _crop_record(tmp_path, name, pts, gender=0):
    path = _image(tmp_path, name)
    face = FaceRecord(box=[0, 0, 200, 200], landmarks=pts, point_set="ibug68", gender=gender)
    return ImageRecord(image=path, faces=(face,), source="pts:/x", group=name)


def test_perfect_shifted_and_missed_faces(tmp_path):
    p1, p2, p3 = _points68(1), _points68(2), _points68(3)
    r1 = _crop_record(tmp_path, "a.png", p1, gender=0)
    r2 = _crop_record(tmp_path, "b.png", p2, gender=1)
    r3 = _crop_record(tmp_path, "c.png", p3, gender=1)
    ref1, _ = pose_reference(r1.faces[0], (200, 200))
    ref2, _ = pose_reference(r2.faces[0], (200, 200))

    def box(p):
        return matching_box(r1, FaceRecord(box=[0, 0, 1, 1], landmarks=p, point_set="ibug68"), (200, 200))

    detect = {
        # perfect (pose off by a full turn in roll: no error after wrapping)
        r1.key: [Face(box=box(p1), score=0.9, landmarks=p1, point_set="ibug68", pose=ref1 + [360, 0, 0],
                      gender="male")],
        # every point moved by (3, 4): NME 5 / 100; yaw 10 degrees off; wrong gender. A second,
        # poorer face that also matches must not be used (lower IoU).
        r2.key: [Face(box=box(p2), score=0.8, landmarks=p2 + [3.0, 4.0], point_set="ibug68",
                      pose=ref2 + [0, 0, 10], gender="male"),
                 Face(box=box(p2) + [5, 5, 5, 5], score=0.95, landmarks=p2 + 30, point_set="ibug68",
                      pose=ref2, gender="female")],
        # only a face far away: missed
        r3.key: [Face(box=[0, 0, 20, 20], score=0.99, landmarks=p3, point_set="ibug68", pose=ref1,
                      gender="female")],
    }
    model = StubModel(detect=detect)
    (run,) = run_models([model], [r1, r2, r3], "toy", modes=["full"])
    s = summarize(run)
    lm = s["landmarks"]["ibug68"]
    assert lm["faces"] == 3 and lm["found"] == 2
    assert lm["mean"] == pytest.approx(0.025) and lm["median"] == pytest.approx(0.025)
    # (1 + (1 - 0.05 / 0.08) + 0) / 3
    assert lm["auc"] == pytest.approx((1 + 0.375) / 3)
    assert lm["failure"] == pytest.approx(1 / 3)
    # part by part, found faces only: every point of the second face 5 px off, the first exact
    assert lm["by_part"] == pytest.approx({k: 0.025 for k in ("jaw", "brows", "nose", "eyes", "mouth")})
    missed = [f for f in run.faces if f.nme is not None and not np.isfinite(f.nme)]
    assert len(missed) == 1 and missed[0].nme_parts is None
    assert "ibug68 NME by part (found faces): jaw 2.50%, brows 2.50%" in to_markdown([s])
    pose = s["pose"]["pnp"]
    assert pose["found"] == 2
    assert pose["roll"] == pytest.approx(0, abs=1e-9) and pose["yaw"] == pytest.approx(5.0)
    g = s["gender"]
    assert g["accuracy"] == pytest.approx(1 / 3) and g["accuracy_found"] == pytest.approx(1 / 2)
    assert "detection" not in s  # crops: no detection scoring


def test_box_mode_gives_the_ground_truth_box(tmp_path):
    pts = _points68(4)
    rec = _crop_record(tmp_path, "d.png", pts)
    five = np.array([[70, 80], [130, 80], [100, 110], [80, 140], [120, 140]], dtype=float)
    path = _image(tmp_path, "e.png")
    rec5 = ImageRecord(image=path, faces=(FaceRecord(box=[0, 0, 1, 1], landmarks=five, point_set="five",
                                                     gender=1, pose_class=3),), source="mtfl:/x", group="e")

    def answer(key, box):
        if key == rec.key:
            return Face(box=box, score=0.1, landmarks=pts, point_set="ibug68", pose=[0, 0, 0], gender="male")
        # A 68-point model on 5-point ground truth: eye centres (means of 36-41 / 42-47) 2 px low.
        p68 = np.zeros((68, 2))
        p68[36:42], p68[42:48] = five[0] + [0, 2], five[1] + [0, 2]
        p68[30], p68[48], p68[54] = five[2], five[3], five[4]
        return Face(box=box, score=0.1, landmarks=p68, point_set="ibug68", pose=[0, 0, -20], gender="female")

    model = StubModel(given=answer)
    (run,) = run_models([model], [rec, rec5], "toy", modes=["box"])
    np.testing.assert_allclose(model.given_boxes[0], [[pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(),
                                                       pts[:, 1].max()]])
    s = summarize(run)
    assert s["landmarks"]["ibug68"]["mean"] == 0.0 and s["landmarks"]["ibug68"]["auc"] == 1.0
    # two of five points off by 2 px over an eye distance of 60
    assert s["landmarks"]["five"]["mean"] == pytest.approx(2 * 2 / 5 / 60)
    assert s["landmarks"]["five"]["by_pose"]["frontal"]["faces"] == 1
    assert s["gender"]["accuracy"] == 1.0


def test_detection_on_a_whole_photo_and_face_assignment(tmp_path):
    path = _image(tmp_path, "group.png", (400, 200))
    gt = [[20, 20, 120, 120], [220, 20, 320, 120]]
    p = _points68(5) - 30  # landmarks for the first face only
    faces = (FaceRecord(box=gt[0], landmarks=p, point_set="ibug68"),
             FaceRecord(box=gt[1]),
             FaceRecord(box=[350, 150, 390, 190], attributes={"ignore": True}))
    rec = ImageRecord(image=path, faces=faces, source="dlib:/x", group="g", all_faces_annotated=True)
    tight = matching_box(rec, faces[0], (400, 200))
    default = [Face(box=tight, score=0.9, landmarks=p, point_set="ibug68", pose=[0, 0, 0], gender="male"),
               Face(box=[100, 100, 110, 110], score=0.6)]                      # false positive
    everything = default + [Face(box=gt[1], score=0.3),                       # found below the threshold
                            Face(box=[350, 150, 390, 190], score=0.2)]        # on the ignored box
    model = StubModel(detect={rec.key: default}, detect_all={rec.key: everything})
    (run,) = run_models([model], [rec], "photos", modes=["full"])
    s = summarize(run)
    d = s["detection"]
    assert d["ground_truth"] == 2
    assert d["recall"] == 0.5 and d["precision"] == 0.5
    # TP 0.9, FP 0.6, TP 0.3 over 2 faces: 0.5 * 1 + 0.5 * 2/3
    assert d["ap"] == pytest.approx(0.5 + 1 / 3)
    assert s["landmarks"]["ibug68"]["mean"] == 0.0  # the first face got its detection
    # recall by face height at the default threshold: the first face (100 px) found, the second not; the
    # ignore region counts nowhere
    assert d["found_by"] == {"height": {">=80": [1, 2]}}


def test_recall_by_face_height_and_by_the_dataset_attributes(tmp_path):
    """WIDER's attributes (blur, occlusion, ...) and the face height tell where a detector loses faces."""
    from hyperface.evaluate.report import to_markdown
    from hyperface.evaluate.summary import found_by

    rows = [({"blur": 0, "occlusion": 0}, 15.0, True), ({"blur": 2, "occlusion": 0}, 15.0, False),
            ({"blur": 2, "occlusion": 2}, 50.0, False), ({"blur": 0, "occlusion": 2}, 120.0, True),
            ({"blur": 0, "occlusion": 0, "ignore": True}, 8.0, True)]
    got = found_by(rows)
    assert got["height"] == {"0-10": [1, 1], "10-20": [1, 2], "40-80": [0, 1], ">=80": [1, 1]}
    assert got["blur"] == {"0": [3, 3], "2": [0, 2]} and got["occlusion"] == {"0": [2, 3], "2": [1, 2]}
    assert "ignore" not in got
    summary = {"model": "m", "dataset": "d", "mode": "full", "images": 1, "seconds": 0.1,
               "detection": {"true_positives": 3, "ground_truth": 5, "detections": 3, "threshold": 0.6, "ap": 0.5,
                             "found_by": got}}
    text = to_markdown([summary])
    assert "found by face height: 0-10 px: 1/1 (100%); 10-20 px: 1/2 (50%)" in text
    assert "found by blur: 0: 3/3 (100%); 2: 0/2 (0%)" in text


def test_a_failing_model_counts_faces_as_missed(tmp_path):
    rec = _crop_record(tmp_path, "f.png", _points68(6))
    model = StubModel(fail={rec.key})
    (run,) = run_models([model], [rec], "toy", modes=["full"])
    s = summarize(run)
    assert s["landmarks"]["ibug68"]["found"] == 0 and s["landmarks"]["ibug68"]["failure"] == 1.0
    assert s["gender"]["accuracy"] == 0.0
    assert any("boom" in p for p in s["problems"])


def test_unreadable_image_is_reported_and_skipped(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    rec = ImageRecord(image=bad, faces=(FaceRecord(box=[0, 0, 1, 1], gender=0),), source="utkface:/x", group="b")
    (run,) = run_models([StubModel()], [rec], "toy", modes=["full"])
    assert run.images == 0 and run.faces == []
    assert any("bad.png" in p for p in run.problems)


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="mode"):
        run_models([StubModel()], [], "toy", modes=["fast"])
