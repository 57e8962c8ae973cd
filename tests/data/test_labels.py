"""Labels by overlap, candidate-relative landmarks and the masks of each kind of source."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.data.labels import (
    LabelOptions, assign_labels, face_coverage, face_targets, fill_labels, overlaps, to_pixels, to_relative,
)
from hyperface.data.records import FaceRecord
from hyperface.data.shards import POSE_SOURCES, label_dtype
from hyperface.points import convert_points, get_point_set
from hyperface.pose import pose_from_landmarks


def _face68(x0=100.0, y0=100.0, size=100.0) -> np.ndarray:
    """A plausible frontal 68-point face in the box (x0, y0, x0 + size, y0 + size)."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.5 * np.cos(t), 0.45 + 0.55 * np.sin(t)], axis=1)
    brows = np.stack([np.r_[np.linspace(0.1, 0.4, 5), np.linspace(0.6, 0.9, 5)], np.full(10, 0.25)], axis=1)
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.35, 0.55, 4)], axis=1)
    base = np.stack([np.linspace(0.4, 0.6, 5), np.full(5, 0.62)], axis=1)
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye_l = np.stack([0.3 - 0.08 * np.cos(ang), 0.38 + 0.03 * np.sin(ang)], axis=1)
    eye_r = np.stack([0.7 - 0.08 * np.cos(ang + np.pi), 0.38 + 0.03 * np.sin(ang)], axis=1)
    ang12 = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    mouth_o = np.stack([0.5 - 0.15 * np.cos(ang12), 0.78 - 0.06 * np.sin(ang12)], axis=1)
    ang8 = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    mouth_i = np.stack([0.5 - 0.1 * np.cos(ang8), 0.78 - 0.03 * np.sin(ang8)], axis=1)
    pts = np.concatenate([jaw, brows, bridge, base, eye_l, eye_r, mouth_o, mouth_i])
    pts[30] = (0.5, 0.58)  # nose tip
    assert pts.shape == (68, 2)
    return pts * size + [x0, y0]


def _opts(**kw) -> LabelOptions:
    return LabelOptions(**kw)


def test_labels_by_overlap_on_hand_made_boxes():
    face = FaceRecord(box=np.array([0.0, 0.0, 100.0, 100.0]))
    cands = np.array([
        [0, 0, 100, 100],     # IoU 1: face, all labels
        [0, 0, 100, 60],      # IoU 0.6: face
        [0, 0, 100, 45],      # IoU 0.45: detection ignored, landmarks yes, attributes no
        [0, 0, 100, 40],      # IoU 0.40: ignored, landmarks yes
        [0, 0, 100, 30],      # IoU 0.30: non-face, nothing else
        [200, 200, 300, 300],  # IoU 0: non-face
    ], dtype=float)
    a = assign_labels(cands, [face], _opts())
    np.testing.assert_allclose(a.iou, [1.0, 0.6, 0.45, 0.4, 0.3, 0.0])
    assert a.detection.tolist() == [1, 1, -1, -1, 0, 0]
    assert a.landmarks.tolist() == [True, True, True, True, False, False]
    assert a.attributes.tolist() == [True, True, False, False, False, False]
    assert not a.dropped.any()
    # Thresholds are options: the study's 0.1 for non-faces leaves 0.3 ignored.
    b = assign_labels(cands, [face], _opts(neg_iou=0.1))
    assert b.detection.tolist() == [1, 1, -1, -1, -1, 0]


def test_best_matching_face_and_contained_faces_dropped():
    f0 = FaceRecord(box=np.array([0.0, 0.0, 100.0, 100.0]), landmarks=_face68(0, 0, 100), point_set="ibug68")
    f1 = FaceRecord(box=np.array([150.0, 0.0, 200.0, 50.0]))  # box only
    cands = np.array([
        [160, 0, 210, 50],    # matches f1 (IoU 0.67)
        [0, 0, 210, 100],     # matches f0 (IoU 0.48) but covers all of f1: dropped
        [5, 5, 95, 95],       # matches f0, clean
        [140, -5, 320, 60],   # non-face for f1 (IoU < 0.35) covering all of it: dropped
        [300, 300, 400, 400],  # clean non-face
    ], dtype=float)
    a = assign_labels(cands, [f0, f1], _opts())
    assert a.face.tolist()[:3] == [1, 0, 0]
    assert a.dropped.tolist() == [False, True, False, True, False]
    np.testing.assert_allclose(overlaps(cands[:1], f1.box[None])[0, 0], 2000 / 3000)
    cover = face_coverage(cands, [f0, f1])
    assert cover[1, 1] == pytest.approx(1.0) and cover[2, 0] > 0.8 and cover[4].max() == 0


def test_landmark_normalisation_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x0, y0 = rng.uniform(-50, 300, 2)
        box = np.array([x0, y0, x0 + rng.uniform(10, 400), y0 + rng.uniform(10, 400)])
        pts = rng.uniform(-100, 700, (68, 2))
        rel = to_relative(pts, box)
        np.testing.assert_allclose(to_pixels(rel, box), pts, atol=1e-9)
    box = np.array([10.0, 20.0, 110.0, 70.0])
    np.testing.assert_allclose(to_relative([[60.0, 45.0], [10.0, 20.0], [110.0, 70.0]], box),
                               [[0, 0], [-0.5, -0.5], [0.5, 0.5]])


def _row(face, cand, image_size=(400, 300), point_set="ibug68"):
    a = assign_labels(np.asarray([cand], dtype=float), [face], _opts())
    t = face_targets(face, point_set, image_size)
    row = np.zeros(1, dtype=label_dtype(get_point_set(point_set).num_points))
    fill_labels(row[0], np.asarray(cand, dtype=float), a, 0, t)
    return row[0]


def test_masks_68_point_source_with_pnp_pose():
    pts = _face68(100, 100, 100)
    face = FaceRecord(box=np.array([100.0, 100.0, 200.0, 200.0]), landmarks=pts, point_set="ibug68")
    row = _row(face, [100, 100, 200, 200], image_size=(400, 300))
    assert row["detection_mask"] and row["detection"] == 1
    assert row["landmarks_mask"].all()
    np.testing.assert_allclose(row["landmarks"], to_relative(pts, face.box), atol=1e-6)
    assert not row["visibility_mask"].any()  # 300-W style: no visibility labels
    five, _ = convert_points(pts, None, "ibug68", "five")
    assert row["landmarks5_mask"].all()
    np.testing.assert_allclose(row["landmarks5"], to_relative(five, face.box), atol=1e-6)
    assert row["pose_mask"] and POSE_SOURCES[row["pose_source"]] == "pnp"
    np.testing.assert_allclose(row["pose"], pose_from_landmarks(pts, (400, 300)), atol=1e-4)
    assert not row["gender_mask"] and row["gender"] == 0
    # A loose candidate (0.35 < IoU <= 0.5) keeps landmarks but no detection, pose or gender.
    loose = _row(face, [100, 100, 200, 145])
    assert not loose["detection_mask"] and loose["landmarks_mask"].all() and not loose["pose_mask"]


def test_masks_five_point_source_with_gender():
    pts5 = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])
    face = FaceRecord(box=np.array([0.0, 0.0, 100.0, 110.0]), landmarks=pts5, point_set="five", gender=1,
                      pose_class=3)
    row = _row(face, [0, 0, 100, 110])
    assert not row["landmarks_mask"].any() and not row["landmarks"].any()  # 5 -> 68: no conversion
    assert row["landmarks5_mask"].all()
    np.testing.assert_allclose(row["landmarks5"], to_relative(pts5, face.box), atol=1e-6)
    assert row["gender_mask"] and row["gender"] == 1
    assert not row["pose_mask"] and POSE_SOURCES[row["pose_source"]] == "none"
    # Targeting the five-point set itself, landmarks and landmarks5 agree.
    row5 = _row(face, [0, 0, 100, 110], point_set="five")
    assert row5["landmarks_mask"].all()
    np.testing.assert_allclose(row5["landmarks"], row5["landmarks5"])


def test_masks_whole_image_gender_only_and_annotated_pose_and_visibility():
    utk = FaceRecord(box=np.array([0.0, 0.0, 200.0, 200.0]), gender=0)
    row = _row(utk, [0, 0, 200, 200])
    assert row["gender_mask"] and row["gender"] == 0 and row["detection"] == 1
    assert not row["landmarks_mask"].any() and not row["landmarks5_mask"].any() and not row["pose_mask"]
    # AFLW-like: 21 points with visibility and an annotated pose.
    pts = np.random.default_rng(1).uniform(10, 90, (21, 2))
    vis = np.ones(21, dtype=bool)
    vis[[0, 6, 12]] = False
    aflw = FaceRecord(box=np.array([0.0, 0.0, 100.0, 100.0]), landmarks=pts, point_set="aflw21",
                      visibility=vis, pose=np.array([1.0, -2.0, 30.0]), gender=1)
    r = _row(aflw, [0, 0, 100, 100], point_set="aflw21")
    assert r["visibility_mask"].all() and r["visibility"].tolist() == vis.astype(float).tolist()
    assert r["landmarks_mask"].tolist() == vis.tolist()
    assert not r["landmarks"][~vis].any()
    assert r["pose_mask"] and POSE_SOURCES[r["pose_source"]] == "annotated"
    np.testing.assert_allclose(r["pose"], [1.0, -2.0, 30.0])
    # aflw21 -> ibug68 has no conversion: unlabelled, but 5 points come from the 21.
    r68 = _row(aflw, [0, 0, 100, 100])
    assert not r68["landmarks_mask"].any() and r68["landmarks5_mask"].sum() == 5


def test_masks_negative_sample_carry_nothing_else():
    face = FaceRecord(box=np.array([0.0, 0.0, 50.0, 50.0]), landmarks=_face68(0, 0, 50), point_set="ibug68",
                      gender=1)
    row = _row(face, [200, 200, 260, 260])
    assert row["detection_mask"] and row["detection"] == 0
    for key in ("landmarks_mask", "visibility_mask", "landmarks5_mask"):
        assert not row[key].any()
    assert not row["pose_mask"] and not row["gender_mask"] and not row["landmarks"].any()
    # No face at all (a negatives folder image): a plain non-face.
    a = assign_labels(np.array([[0.0, 0.0, 10.0, 10.0]]), [], _opts())
    assert a.detection.tolist() == [0] and a.face.tolist() == [-1] and not a.dropped.any()


def test_label_options_validated():
    with pytest.raises(ValueError, match="neg_iou"):
        LabelOptions(pos_iou=0.3, neg_iou=0.4)
    with pytest.raises(ValueError, match="landmark_iou"):
        LabelOptions(landmark_iou=1.5)


def test_degenerate_68_points_leave_the_pose_unlabelled_instead_of_failing_the_image():
    """Points that coincide (a collapsed annotation) have no PnP pose: the face keeps its other labels."""
    face = FaceRecord(box=np.array([0.0, 0.0, 100.0, 100.0]), landmarks=np.full((68, 2), 50.0),
                      point_set="ibug68")
    row = _row(face, [0, 0, 100, 100])
    assert not row["pose_mask"] and POSE_SOURCES[row["pose_source"]] == "none"
    assert row["detection_mask"] and row["landmarks_mask"].all()
