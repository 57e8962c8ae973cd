"""IRP and L-NMS on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.data.boxes import five_point_box
from hyperface.inference.boxfit import fit_boxes
from hyperface.inference.candidates import Candidates, decode_outputs
from hyperface.inference.crops import extract_crops
from hyperface.inference.irp import iterative_region_proposals
from hyperface.inference.lnms import contained, landmark_nms
from hyperface.runtime import RuntimeOptions, load_runtime

from inference_stubs import BlobNet, blob_image, expected_box


def square_points(cx: float, cy: float, half: float) -> np.ndarray:
    """Five points (eyes, nose, mouth corners) whose ``five`` box is the square of side 2.2 * 2 * half."""
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx, cy],
                     [cx - half, cy + half], [cx + half, cy + half]], dtype=np.float32)


def make(points, scores, image=None, extra=True) -> Candidates:
    lm = np.stack(points)
    k = len(points)
    return Candidates(
        boxes=fit_boxes(lm, "five"), image=np.zeros(k, np.int64) if image is None else np.array(image, np.int64),
        score=np.array(scores, dtype=np.float32), landmarks=lm,
        visibility=np.repeat(np.linspace(0, 1, k, dtype=np.float32)[:, None], 5, axis=1) if extra else None,
        pose=np.repeat(np.arange(k, dtype=np.float32)[:, None], 3, axis=1) if extra else None,
        gender=np.array([[p, 1 - p] for p in np.linspace(0.1, 0.9, k)], np.float32) if extra else None)


def test_fit_boxes_follow_the_ground_truth_conventions():
    pts = square_points(50, 60, 10)[None]
    np.testing.assert_allclose(fit_boxes(pts, "five")[0], five_point_box(pts[0]), atol=1e-5)
    np.testing.assert_allclose(fit_boxes(pts, "ibug68")[0], [40, 50, 60, 70])  # tight box
    np.testing.assert_allclose(fit_boxes(pts, None)[0], [40, 50, 60, 70])  # any other set: tight box
    aflw = np.zeros((1, 21, 2), np.float32)
    aflw[0, [7, 10, 14, 17, 19]] = pts[0]  # eye centres, nose, mouth corners
    np.testing.assert_allclose(fit_boxes(aflw, "aflw21")[0], five_point_box(pts[0]), atol=1e-4)
    assert fit_boxes(pts, "five").dtype == np.float32 and fit_boxes(pts[:0], "five").shape == (0, 4)


def test_lnms_groups_takes_top_k_and_medians():
    # face A: four candidates with noisy points, the worst-scoring one far off; face B: one candidate
    a = [square_points(100 + d, 100, 10) for d in (0.0, 2.0, -2.0, 9.0)]
    b = [square_points(300, 100, 12)]
    cands = make(a + b, [0.9, 0.8, 0.7, 0.6, 0.95])
    out = landmark_nms(cands, iou_threshold=0.3, top_k=3, point_set="five")
    assert len(out) == 2
    # best first: B (0.95) then A (0.9, the leader's score)
    np.testing.assert_allclose(out.score, [0.95, 0.9])
    # A's landmarks: median of the top 3 (shifts 0, +2, -2) = no shift; the 0.6 outlier is not used
    np.testing.assert_allclose(out.landmarks[1], square_points(100, 100, 10), atol=1e-5)
    np.testing.assert_allclose(out.boxes[1], [78, 78, 122, 122], atol=1e-4)
    np.testing.assert_allclose(out.boxes[0], fit_boxes(b[0][None], "five")[0])
    # visibility / pose: medians of rows 0..2 of A; gender renormalised median
    np.testing.assert_allclose(out.pose[1], [1, 1, 1])
    np.testing.assert_allclose(out.visibility[1], np.full(5, 0.25), atol=1e-6)
    np.testing.assert_allclose(out.gender[1].sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(out.gender[1, 0], 0.3, atol=1e-6)


def test_lnms_even_group_uses_the_true_median_and_top_k_all():
    pts = [square_points(100 + d, 100, 10) for d in (0.0, 1.0, 3.0, 4.0)]
    out = landmark_nms(make(pts, [0.9, 0.8, 0.7, 0.6], extra=False), iou_threshold=0.3, top_k=10, point_set="five")
    assert len(out) == 1
    np.testing.assert_allclose(out.landmarks[0, 2], [102.0, 100.0], atol=1e-5)  # mean of 1 and 3
    assert out.visibility is None and out.pose is None and out.gender is None


def test_lnms_never_merges_across_images_and_keeps_empty():
    pts = [square_points(100, 100, 10), square_points(100, 100, 10)]
    out = landmark_nms(make(pts, [0.9, 0.8], image=[0, 1]), 0.3, 5, "five")
    assert sorted(out.image.tolist()) == [0, 1]
    empty = make(pts, [0.9, 0.8]).select(np.zeros(2, dtype=bool))
    assert len(landmark_nms(empty, 0.3, 5, "five")) == 0
    with pytest.raises(ValueError, match="top_k"):
        landmark_nms(make(pts, [0.9, 0.8]), 0.3, 0, "five")


def test_lnms_drops_a_box_around_a_higher_scoring_face_only():
    # a face (half 10) and, around it, a face-like region four times as wide (helmet): IoU 1/16
    face, helmet = square_points(100, 100, 10), square_points(104, 100, 40)
    out = landmark_nms(make([face, helmet], [0.99, 0.95]), iou_threshold=0.3)
    assert len(out) == 1 and out.score.tolist() == pytest.approx([0.99])
    # the larger box scoring higher stays (the smaller one may be a part of it); so does either one
    # with the rule off, and two faces side by side, and the same pair in different images
    assert len(landmark_nms(make([face, helmet], [0.9, 0.95]))) == 2
    assert len(landmark_nms(make([face, helmet], [0.99, 0.95]), contain_threshold=None)) == 2
    side = square_points(150, 100, 10)
    assert len(landmark_nms(make([face, side], [0.99, 0.95]))) == 2
    assert len(landmark_nms(make([face, helmet], [0.99, 0.95], image=[0, 1]))) == 2
    with pytest.raises(ValueError, match="containment"):
        landmark_nms(make([face, helmet], [0.99, 0.95]), contain_threshold=1.5)


def _score_at_100(boxes, image):
    """A fake network: the candidate whose box is centred at x=100 scores 0.9, anything else 0.2."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    score = np.where(np.abs(cx - 100) < 1, 0.9, 0.2).astype(np.float32)
    lm = np.stack([square_points(100, 100, 10)] * len(boxes))
    return Candidates(boxes=boxes, image=image, score=score, landmarks=lm)


def test_irp_keeps_the_better_box_per_candidate():
    lm = np.stack([square_points(100, 100, 10), square_points(300, 100, 10), square_points(100, 100, 10)])
    boxes = np.array([[60.0, 60, 120, 120], [280, 80, 320, 120], [0, 0, 10, 10]], np.float32)
    cands = Candidates(boxes=boxes, image=np.zeros(3, np.int64), score=np.array([0.5, 0.5, 0.1], np.float32),
                       landmarks=lm)
    out = iterative_region_proposals(cands, _score_at_100, rounds=2, threshold=0.4, point_set="five")
    # row 0: its landmarks give the box centred at 100: score 0.9, box replaced
    np.testing.assert_allclose(out.boxes[0], [78, 78, 122, 122], atol=1e-4)
    assert out.score[0] == pytest.approx(0.9)
    # row 1: the refit scored 0.2 < 0.5: kept as it was; row 2: under the threshold, never tried
    np.testing.assert_allclose(out.boxes[1:], boxes[1:])
    np.testing.assert_allclose(out.score[1:], [0.5, 0.1])
    np.testing.assert_array_equal(cands.boxes, boxes)  # the input is not changed
    assert iterative_region_proposals(cands, _score_at_100, rounds=0) is cands
    with pytest.raises(ValueError, match="rounds"):
        iterative_region_proposals(cands, _score_at_100, rounds=-1)


def test_irp_takes_a_threshold_per_candidate():
    """Given boxes are refined from score 0, the source's from the threshold: one array says which."""
    lm = np.stack([square_points(100, 100, 10)] * 2)
    boxes = np.array([[60.0, 60, 120, 120], [60, 60, 120, 120]], np.float32)
    cands = Candidates(boxes=boxes, image=np.array([0, 1]), score=np.array([0.1, 0.1], np.float32), landmarks=lm)
    out = iterative_region_proposals(cands, _score_at_100, threshold=np.array([0.0, 0.5]), point_set="five")
    np.testing.assert_allclose(out.score, [0.9, 0.1])
    np.testing.assert_allclose(out.boxes[1], boxes[1])


def test_irp_moves_a_badly_placed_box_onto_the_blob():
    """End to end with a network that sees the pixels: a box covering half the blob converges onto it."""
    net = BlobNet().eval()
    runtime = load_runtime(net, RuntimeOptions("torch"))
    image = blob_image(200, 160, [(100, 80, 20)])

    def evaluate(boxes, index):
        return decode_outputs(runtime(extract_crops(image, boxes, 32, net.context)), boxes, index)

    start = np.array([[95.0, 60, 150, 115]], np.float32)  # only the left part of the disk is inside
    cands = evaluate(start, np.zeros(1, np.int64))
    out = iterative_region_proposals(cands, evaluate, rounds=3, threshold=0.0, point_set="five")
    assert out.score[0] > cands.score[0]
    np.testing.assert_allclose(out.boxes[0], expected_box(100, 80, 20), atol=1.5)


def test_contained_marks_parts_boxed_inside_a_better_face_box():
    boxes = np.array([[0.0, 0, 100, 100], [20, 20, 60, 50], [90, 90, 150, 150], [200, 0, 240, 40]])
    score = np.array([0.9, 0.6, 0.8, 0.95])
    # box 1 lies inside box 0, which scores higher: dropped; box 2 sticks out of box 0; box 3 is apart
    assert contained(boxes, score, 0.7).tolist() == [False, True, False, False]
    # a part that scores higher than the face box around it is kept (the box is the doubtful one)
    assert not contained(boxes, np.array([0.5, 0.6, 0.8, 0.95]), 0.7).any()
