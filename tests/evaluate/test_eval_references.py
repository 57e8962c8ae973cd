"""Ground-truth boxes, landmark targets and pose references of evaluation.md."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hyperface.data.boxes import five_point_box
from hyperface.data.records import FaceRecord, ImageRecord
from hyperface.evaluate.references import (
    convert_prediction,
    detection_box,
    landmark_target,
    matching_box,
    pose_bin,
    pose_reference,
)
from hyperface.pose import MODEL3D, PNP_POINTS, pose_to_rotation


def _record(source: str, faces, all_faces: bool = False) -> ImageRecord:
    return ImageRecord(image="x.jpg", faces=tuple(faces), source=f"{source}:/data", group="x.jpg",
                       all_faces_annotated=all_faces)


def _points68(seed: int = 0) -> np.ndarray:
    pts = np.random.default_rng(seed).uniform(40, 160, size=(68, 2))
    pts[36], pts[45] = (60, 80), (140, 80)
    return pts


FIVE = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=float)


def test_matching_boxes_follow_the_document():
    pts = _points68()
    f68 = FaceRecord(box=[0, 0, 10, 10], landmarks=pts, point_set="ibug68")
    np.testing.assert_allclose(matching_box(_record("pts", [f68]), f68, (200, 200)),
                               [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
    f5 = FaceRecord(box=[0, 0, 1, 1], landmarks=FIVE, point_set="five")
    # MTFL square: centre (50, 60), side 2.2 * max(40, 40) = 88.
    np.testing.assert_allclose(matching_box(_record("mtfl", [f5]), f5, (150, 150)), [6, 16, 94, 104])
    np.testing.assert_allclose(five_point_box(FIVE), [6, 16, 94, 104])
    utk = FaceRecord(box=[10, 10, 20, 20], gender=1)
    np.testing.assert_allclose(matching_box(_record("utkface", [utk]), utk, (200, 180)), [0, 0, 200, 180])


def test_detection_uses_annotated_boxes_where_drawn():
    pts = _points68()
    face = FaceRecord(box=[50, 60, 170, 180], landmarks=pts, point_set="ibug68")
    dlib = _record("dlib", [face], all_faces=True)
    np.testing.assert_allclose(detection_box(dlib, face, (300, 300)), [50, 60, 170, 180])
    # The same face in a .pts photo: the tight box of its points.
    pts_photo = _record("pts", [face], all_faces=True)
    np.testing.assert_allclose(detection_box(pts_photo, face, (300, 300)), matching_box(pts_photo, face, (300, 300)))


def test_landmark_targets_and_conversion_68_to_5():
    pts = _points68()
    f68 = FaceRecord(box=[0, 0, 1, 1], landmarks=pts, point_set="ibug68")
    t = landmark_target(f68, "ibug68")
    assert t.point_set == "ibug68" and np.array_equal(t.points, pts)
    # A 5-point model on 68-point ground truth: both on 5 points.
    t = landmark_target(f68, "five")
    assert t.point_set == "five"
    np.testing.assert_allclose(t.points[0], pts[36:42].mean(axis=0))
    np.testing.assert_allclose(t.points[1], pts[42:48].mean(axis=0))
    np.testing.assert_allclose(t.points[2:], pts[[30, 48, 54]])
    # A 68-point model on 5-point ground truth: its points converted by hand to the MTFL order.
    f5 = FaceRecord(box=[0, 0, 1, 1], landmarks=FIVE, point_set="five")
    t = landmark_target(f5, "ibug68")
    assert t.point_set == "five" and np.array_equal(t.points, FIVE)
    pred = convert_prediction(pts, "ibug68", "five")
    np.testing.assert_allclose(pred, [pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
    # Nothing to score: no landmarks, or a model without landmarks.
    assert landmark_target(FaceRecord(box=[0, 0, 1, 1], gender=0), "ibug68") is None
    assert landmark_target(f68, None) is None


def test_aflw21_with_a_hidden_eye_cannot_be_normalised():
    pts = np.random.default_rng(1).uniform(0, 100, size=(21, 2))
    vis = np.ones(21, dtype=bool)
    face = FaceRecord(box=[0, 0, 1, 1], landmarks=pts, point_set="aflw21", visibility=vis)
    t = landmark_target(face, "aflw21")
    assert t.point_set == "five"
    np.testing.assert_allclose(t.points, pts[[7, 10, 14, 17, 19]])
    vis[7] = False  # left eye centre hidden: no eye distance
    face = FaceRecord(box=[0, 0, 1, 1], landmarks=pts, point_set="aflw21", visibility=vis)
    assert landmark_target(face, "aflw21") is None


def _projected_face(pose, size=(400, 300)) -> np.ndarray:
    """68 points whose six PnP points are MODEL3D seen at ``pose`` through evaluation.md's camera."""
    w, h = size
    camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    rvec, _ = cv2.Rodrigues(pose_to_rotation(pose))
    tvec = np.array([0.0, 0.0, 3000.0])
    proj, _ = cv2.projectPoints(MODEL3D, rvec, tvec, camera, None)
    pts = np.full((68, 2), 200.0)
    pts[list(PNP_POINTS)] = proj.reshape(-1, 2)
    return pts


def test_pose_reference_annotated_first_else_pnp():
    pts = _projected_face((10.0, -5.0, 30.0))
    face = FaceRecord(box=[0, 0, 1, 1], landmarks=pts, point_set="ibug68")
    ref, source = pose_reference(face, (400, 300))
    assert source == "pnp"
    np.testing.assert_allclose(ref, [10.0, -5.0, 30.0], atol=1e-3)
    annotated = FaceRecord(box=[0, 0, 1, 1], landmarks=pts, point_set="ibug68", pose=[1.0, 2.0, 3.0])
    ref, source = pose_reference(annotated, (400, 300))
    assert source == "annotated" and ref.tolist() == [1.0, 2.0, 3.0]
    assert pose_reference(FaceRecord(box=[0, 0, 1, 1], landmarks=FIVE, point_set="five"), (100, 100)) is None


@pytest.mark.parametrize("kwargs, expected", [
    ({"pose_class": 3}, "frontal"), ({"pose_class": 2}, "half-profile"), ({"pose_class": 5}, "profile"),
    ({"pose": [0, 0, -20]}, "frontal"), ({"pose": [0, 0, 45]}, "half-profile"), ({"pose": [0, 0, -75]}, "profile"),
    ({}, None),
])
def test_pose_bins_where_the_data_says(kwargs, expected):
    assert pose_bin(FaceRecord(box=[0, 0, 1, 1], **kwargs)) == expected
