"""Each evaluation metric against a hand computation (evaluation.md)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from hyperface.evaluate import metrics as M


def _face68(scale: float = 100.0) -> np.ndarray:
    """68 points with the outer eye corners 36 and 45 exactly ``scale`` apart."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, scale, size=(68, 2))
    pts[36] = (10.0, 40.0)
    pts[45] = (10.0 + scale, 40.0)
    return pts


# ---------------------------------------------------------------------------------------- matching

def test_match_centre_on_border_and_size_ratio_limits():
    g = [0, 0, 10, 10]
    # Centre exactly on the right border (x = 10), same size: matches.
    assert M.match_matrix([[5, 0, 15, 10]], g)[0, 0]
    # Centre on a corner: matches.
    assert M.match_matrix([[5, 5, 15, 15]], g)[0, 0]
    # Centre just outside: no match.
    assert not M.match_matrix([[5.01, 0, 15.01, 10]], g)[0, 0]
    # sqrt(area ratio) exactly 0.5 and exactly 2: both match.
    assert M.match_matrix([[2.5, 2.5, 7.5, 7.5]], g)[0, 0]
    assert M.match_matrix([[-5, -5, 15, 15]], g)[0, 0]
    # Just beyond either end: no match.
    assert not M.match_matrix([[2.6, 2.6, 7.4, 7.4]], g)[0, 0]
    assert not M.match_matrix([[-5.1, -5.1, 15.1, 15.1]], g)[0, 0]
    # Non-square detection with the same area as g: ratio 1.
    assert M.match_matrix([[0, 2.5, 20, 7.5]], g)[0, 0]


def test_iou_hand_values():
    iou = M.box_iou([[0, 0, 10, 10], [5, 0, 15, 10]], [[0, 0, 10, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou, [[1.0, 0.0], [50 / 150, 0.0]])


def test_select_face_highest_iou_among_matching_faces_with_output():
    g = [0, 0, 100, 100]
    boxes = [
        [200, 200, 300, 300],  # does not match
        [10, 10, 110, 110],    # matches, IoU 0.68
        [2, 2, 102, 102],      # matches, IoU 0.92 but carries no output in the second call
    ]
    assert M.select_face(boxes, g) == 2
    assert M.select_face(boxes, g, carries=[True, True, False]) == 1
    assert M.select_face(boxes, g, carries=[True, False, False]) is None
    assert M.select_face([], g) is None
    # A box with much higher IoU than the rest but failing the size rule is not used.
    assert M.select_face([[0, 0, 100, 100.0]], [0, 0, 300, 300]) is None


# --------------------------------------------------------------------------------------- landmarks

def test_nme68_perfect_and_known_shift():
    g = _face68(100.0)
    assert M.nme_68(g, g) == 0.0
    # Every point moved by (3, 4): 5 pixels over an outer-eye distance of 100.
    assert M.nme_68(g + [3.0, 4.0], g) == pytest.approx(0.05)
    # Only one point off by 68 pixels: mean error 1 pixel.
    p = g.copy()
    p[0, 0] += 68.0
    assert M.nme_68(p, g) == pytest.approx(0.01)


def test_nme_by_part_tells_where_the_error_is_and_weights_back_to_the_face_nme():
    g = _face68(100.0)
    p = g.copy()
    p[:17, 0] += 6.0  # the jaw 6 pixels off, the rest exact
    p[48, 1] += 20.0  # one mouth corner 20 pixels off
    parts = M.face_nme_parts(p, g, "ibug68")
    assert list(parts) == ["jaw", "brows", "nose", "eyes", "mouth"]
    assert parts["jaw"] == pytest.approx(0.06) and parts["mouth"] == pytest.approx(0.2 / 20)
    assert parts["brows"] == parts["nose"] == parts["eyes"] == 0.0
    sizes = {"jaw": 17, "brows": 10, "nose": 9, "eyes": 12, "mouth": 20}
    assert sum(parts[k] * n for k, n in sizes.items()) / 68 == pytest.approx(M.nme_68(p, g))
    g_hidden = g.copy()
    g_hidden[:17] = np.nan  # a part with no annotated point is left out
    assert "jaw" not in M.face_nme_parts(p, g_hidden, "ibug68")
    five = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=float)
    assert M.face_nme_parts(five, five, "five") == {}  # a set without parts
    with pytest.raises(ValueError, match="68 x 2"):
        M.face_nme_parts(p[:60], g[:60], "ibug68")


def test_nme5_known_shift():
    g = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=float)  # eye distance 40
    assert M.nme_5(g, g) == 0.0
    assert M.nme_5(g + [0, 2.0], g) == pytest.approx(2 / 40)


def test_summary_perfect_prediction_scores_auc_one():
    s = M.landmark_summary([0.0, 0.0, 0.0], limit=0.08)
    assert s["faces"] == 3 and s["found"] == 3
    assert s["mean"] == 0.0 and s["median"] == 0.0
    assert s["auc"] == 1.0 and s["failure"] == 0.0


def test_summary_known_values_and_misses():
    # NME 0.05 at limit 0.08: AUC contribution 1 - 0.05 / 0.08 = 0.375.
    assert M.landmark_summary([0.05], 0.08)["auc"] == pytest.approx(0.375)
    s = M.landmark_summary([0.02, 0.09, np.nan, 0.04], limit=0.08)
    assert s["faces"] == 4 and s["found"] == 3
    assert s["mean"] == pytest.approx(0.05)
    assert s["median"] == pytest.approx(0.04)
    # (0.75 + 0 + 0 (miss) + 0.5) / 4
    assert s["auc"] == pytest.approx(1.25 / 4)
    # 0.09 above the limit and the miss: 2 of 4.
    assert s["failure"] == pytest.approx(0.5)
    # Everything missed.
    s = M.landmark_summary([np.nan, np.nan], 0.1)
    assert s["found"] == 0 and s["mean"] is None and s["auc"] == 0.0 and s["failure"] == 1.0


def test_ced_curve_area_equals_auc():
    nmes = np.array([0.01, 0.03, 0.05, 0.2, np.nan])
    t, frac = M.ced_curve(nmes, 0.08, steps=8001)
    assert frac[-1] == pytest.approx(3 / 5)  # three of five faces at or below the limit
    area = np.trapezoid(frac, t) / 0.08 if hasattr(np, "trapezoid") else np.trapz(frac, t) / 0.08
    assert area == pytest.approx(M.landmark_summary(nmes, 0.08)["auc"], abs=1e-3)


# --------------------------------------------------------------------------------------- head pose

def test_pose_error_wraps_per_angle():
    e = M.pose_errors([[179.0, 10.0, -90.0]], [[-179.0, -10.0, 90.0]])
    np.testing.assert_allclose(e, [[2.0, 20.0, 180.0]])
    e = M.pose_errors([[350.0, 0.0, 0.0]], [[-5.0, 0.0, 0.0]])
    np.testing.assert_allclose(e, [[5.0, 0.0, 0.0]])
    # near the +-180 seam from both sides, and whole turns away
    e = M.pose_errors([[-179.9, 180.0, 179.0], [-180.0, 719.0, -541.0]],
                      [[179.9, -180.0, -178.0], [180.0, -1.0, 180.0]])
    np.testing.assert_allclose(e, [[0.2, 0.0, 3.0], [0.0, 0.0, 1.0]], atol=1e-9)
    assert np.isnan(M.pose_errors([[np.nan, 0.0, 0.0]], [[0.0, 0.0, 0.0]])[0, 0])  # a miss stays a miss


def test_pose_summary_mae_and_misses():
    errors = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [np.nan] * 3])
    s = M.pose_summary(errors)
    assert s["faces"] == 3 and s["found"] == 2
    assert (s["roll"], s["pitch"], s["yaw"]) == (2.0, 3.0, 4.0)
    assert s["mean"] == pytest.approx(3.0)


def test_spearman_sign_follows_mtfl_classes():
    # Class 1-2 ("left") is yaw > 0: a correct model correlates -yaw positively with the class.
    classes = [1, 2, 3, 4, 5]
    assert M.spearman_yaw_class([80, 30, 0, -30, -80], classes) == pytest.approx(1.0)
    assert M.spearman_yaw_class([-80, -30, 0, 30, 80], classes) == pytest.approx(-1.0)
    assert M.spearman_yaw_class([80, np.nan, 0, -30, -80], classes) == pytest.approx(1.0)
    assert M.spearman_yaw_class([1.0], [3]) is None


# ------------------------------------------------------------------------------------------ gender

def test_gender_misses_count_wrong():
    # truth: male, male, female, female; predicted: male (right), female (wrong), missed, male (wrong)
    s = M.gender_summary([0, 1, -1, 0], [0, 0, 1, 1])
    assert s["faces"] == 4 and s["found"] == 3
    assert s["accuracy"] == pytest.approx(0.25)
    assert s["accuracy_found"] == pytest.approx(1 / 3)
    assert s["per_class"] == {"male": 0.5, "female": 0.0}
    assert s["per_class_found"] == {"male": 0.5, "female": 0.0}
    perfect = M.gender_summary([0, 1], [0, 1])
    assert perfect["accuracy"] == 1.0 and perfect["per_class"] == {"male": 1.0, "female": 1.0}


# --------------------------------------------------------------------------------------- detection

def test_greedy_matching_by_score_and_iou():
    gt = [[0, 0, 100, 100], [90, 0, 190, 100]]
    det = [
        [45, 0, 145, 100],  # score 0.5: centre (95, 50) inside both; only gt0 left for it
        [85, 0, 185, 100],  # score 0.9: takes gt1 (IoU 0.90) first
        [88, 0, 188, 100],  # score 0.8: matches gt1 only (centre x=138), already taken -> false positive
    ]
    m = M.match_detections(det, [0.5, 0.9, 0.8], gt)
    np.testing.assert_allclose(m.scores, [0.9, 0.8, 0.5])
    np.testing.assert_array_equal(m.matched, [1, -1, 0])
    assert m.num_ground_truth == 2
    # One detection matching two free boxes takes the one of higher IoU (gt1: 0.43 against 0.33).
    one = M.match_detections([[50, 0, 150, 100]], [0.5], gt)
    np.testing.assert_array_equal(one.matched, [1])


def test_ignored_boxes_are_neither_face_nor_false_positive():
    gt = [[0, 0, 10, 10]]
    ignore = [[50, 50, 60, 60]]
    m = M.match_detections([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], [0.9, 0.8, 0.7], gt, ignore)
    np.testing.assert_allclose(m.scores, [0.9, 0.7])  # the one on the ignored box is dropped
    np.testing.assert_array_equal(m.matched, [0, -1])
    assert m.num_ground_truth == 1


def test_average_precision_hand_list():
    # 3 ground-truth faces; detections by score: TP, FP, TP, FP.
    recall = np.array([1, 1, 2, 2]) / 3
    precision = np.array([1, 1 / 2, 2 / 3, 2 / 4])
    # Monotone from the right: 1, 2/3, 2/3, 1/2; recall steps 1/3 at precision 1 and 1/3 at 2/3.
    assert M.average_precision(recall, precision) == pytest.approx(1 / 3 + 2 / 9)
    assert M.average_precision([], []) == 0.0


def test_detection_summary_over_images():
    gt_a = [[0, 0, 10, 10], [20, 0, 30, 10]]
    gt_b = [[0, 0, 10, 10]]
    a = M.match_detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], gt_a)  # TP 0.9, FP 0.8
    b = M.match_detections([[0, 0, 10, 10], [100, 0, 110, 10]], [0.7, 0.6], gt_b)  # TP 0.7, FP 0.6
    s = M.detection_summary([a, b], threshold=0.75)
    assert s["ground_truth"] == 3 and s["detections"] == 2 and s["true_positives"] == 1
    assert s["recall"] == pytest.approx(1 / 3) and s["precision"] == pytest.approx(0.5)
    # Same hand list as above: TP, FP, TP, FP over 3 faces.
    assert s["ap"] == pytest.approx(1 / 3 + 2 / 9)
    # A perfect detector: AP 1, recall 1, precision 1.
    p = M.detection_summary([M.match_detections(gt_a, [0.9, 0.8], gt_a)], threshold=0.5)
    assert (p["recall"], p["precision"], p["ap"]) == (1.0, 1.0, 1.0)
    # No detection at all: recall 0, precision undefined, AP 0.
    n = M.detection_summary([M.match_detections([], [], gt_a)], threshold=0.5)
    assert n["recall"] == 0.0 and n["precision"] is None and n["ap"] == 0.0


def test_recall_at_precision_is_the_most_recall_a_threshold_keeps_above_the_floor():
    gt_a = [[0, 0, 10, 10], [20, 0, 30, 10]]
    a = M.match_detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], gt_a)
    b = M.match_detections([[0, 0, 10, 10], [100, 0, 110, 10]], [0.7, 0.6], [[0, 0, 10, 10]])
    curve = M.detection_curve([a, b])  # TP, FP, TP, FP over 3 faces: precision 1, 1/2, 2/3, 1/2
    assert M.recall_at_precision(*curve, floor=0.9) == (pytest.approx(1 / 3), 0.9)
    assert M.recall_at_precision(*curve, floor=0.6) == (pytest.approx(2 / 3), 0.7)
    assert M.recall_at_precision(*curve, floor=0.5) == (pytest.approx(2 / 3), 0.7)  # the highest threshold
    assert M.recall_at_precision(*M.detection_curve([b]), floor=0.9) == (1.0, 0.7)
    only_false = M.match_detections([[50, 50, 60, 60]], [0.9], gt_a)
    assert M.recall_at_precision(*M.detection_curve([only_false])) == (0.0, None)
    s = M.detection_summary([a, b], threshold=0.75)["recall_at_precision"]
    assert s == {"precision": M.RECALL_AT_PRECISION, "recall": pytest.approx(1 / 3), "score": 0.9}


def test_detection_summary_with_operating_point_list():
    gt = [[0, 0, 10, 10]]
    everything = [M.match_detections([[0, 0, 10, 10], [40, 40, 50, 50]], [0.3, 0.2], gt)]
    at_default = [M.match_detections([[0, 0, 10, 10]], [0.95], gt)]
    s = M.detection_summary(everything, threshold=0.5, at_threshold=at_default)
    assert s["recall"] == 1.0 and s["precision"] == 1.0 and s["ap"] == pytest.approx(1.0)


def test_match_subset_requires_a_score_cut():
    m = M.match_detections([[0, 0, 10, 10], [40, 40, 50, 50]], [0.9, 0.2], [[0, 0, 10, 10]])
    assert len(M.match_subset(m, m.scores >= 0.5).scores) == 1
    with pytest.raises(ValueError):
        M.match_subset(m, np.array([False, True]))


def test_the_shared_metrics_never_import_torch():
    """Training uses this module with tensors; evaluation (and an install without torch) must not
    pull torch in, neither at import nor on numpy input."""
    code = ("import sys; import numpy as np; from hyperface.evaluate import metrics as M; "
            "g = np.random.default_rng(0).uniform(0, 100, (68, 2)); M.nme_68(g + 1, g); "
            "M.nme_per_face(g[None, :5], g[None, :5], 'five', [[True] * 5]); "
            "M.landmark_summary([0.01, float('nan')], M.NME_LIMITS['ibug68']); "
            "M.pose_errors([[1, 2, 3]], [[3, 2, 1]]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_landmark_nme_on_a_batch_with_masks():
    """Batched (..., N, 2) NMEs: each face normalised by its own pair; faces whose pair is not
    marked can not be measured (NaN, not valid); unmarked points may hold anything."""
    g = np.stack([_face68(100.0), _face68(50.0), _face68(80.0)])
    mask = np.ones((3, 68), dtype=bool)
    mask[1, 60:] = False
    mask[2, 45] = False
    g[1, 60:] = 1e6  # garbage where unlabelled
    p = g + [3.0, 4.0]
    p[1, 60:] = 0.0
    nmes, valid = M.nme_per_face(p, g, "ibug68", mask)
    assert valid.tolist() == [True, True, False]
    np.testing.assert_allclose(nmes[:2], [0.05, 0.1])
    assert np.isnan(nmes[2])
    with pytest.raises(ValueError, match="no NME of its own"):
        M.nme_per_face(np.zeros((21, 2)), np.ones((21, 2)), "aflw21")


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="68 x 2"):
        M.nme_68(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="positive"):
        M.nme_5(np.zeros((5, 2)), np.zeros((5, 2)))
    assert math.isclose(M.box_area([[0, 0, 2, 3]])[0], 6.0)
