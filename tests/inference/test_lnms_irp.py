"""IRP and L-NMS on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperface.inference.boxfit import fit_boxes
from hyperface.inference.candidates import Candidates
from hyperface.inference.crops import extract_crops, image_to_tensor
from hyperface.inference.irp import iterative_region_proposals
from hyperface.inference.lnms import landmark_nms
from hyperface.data.boxes import five_point_box

from inference_stubs import BlobNet, blob_image, expected_box


def square_points(cx: float, cy: float, half: float) -> torch.Tensor:
    """Five points (eyes, nose, mouth corners) whose ``five`` box is the square of side 2.2 * 2 * half."""
    return torch.tensor([[cx - half, cy - half], [cx + half, cy - half], [cx, cy],
                         [cx - half, cy + half], [cx + half, cy + half]], dtype=torch.float32)


def make(points, scores, image=None, extra=True) -> Candidates:
    lm = torch.stack(points)
    k = len(points)
    return Candidates(
        boxes=fit_boxes(lm, "five"), image=torch.zeros(k, dtype=torch.long) if image is None else torch.tensor(image),
        score=torch.tensor(scores, dtype=torch.float32), landmarks=lm,
        visibility=torch.linspace(0, 1, k).unsqueeze(1).repeat(1, 5) if extra else None,
        pose=torch.arange(k, dtype=torch.float32).unsqueeze(1).repeat(1, 3) if extra else None,
        gender=torch.stack([torch.tensor([p, 1 - p]) for p in np.linspace(0.1, 0.9, k)]).float() if extra else None)


def test_fit_boxes_follow_the_ground_truth_conventions():
    pts = square_points(50, 60, 10).unsqueeze(0)
    np.testing.assert_allclose(fit_boxes(pts, "five")[0].numpy(), five_point_box(pts[0].numpy()), atol=1e-5)
    np.testing.assert_allclose(fit_boxes(pts, "ibug68")[0].numpy(), [40, 50, 60, 70])  # tight box
    aflw = torch.zeros(1, 21, 2)
    aflw[0, [7, 10, 14, 17, 19]] = pts[0]  # eye centres, nose, mouth corners
    np.testing.assert_allclose(fit_boxes(aflw, "aflw21")[0].numpy(), five_point_box(pts[0].numpy()), atol=1e-4)


def test_lnms_groups_takes_top_k_and_medians():
    # face A: four candidates with noisy points, the worst-scoring one far off; face B: one candidate
    a = [square_points(100 + d, 100, 10) for d in (0.0, 2.0, -2.0, 9.0)]
    b = [square_points(300, 100, 12)]
    cands = make(a + b, [0.9, 0.8, 0.7, 0.6, 0.95])
    out = landmark_nms(cands, iou_threshold=0.3, top_k=3, point_set="five")
    assert len(out) == 2
    # best first: B (0.95) then A (0.9, the leader's score)
    np.testing.assert_allclose(out.score.numpy(), [0.95, 0.9])
    # A's landmarks: median of the top 3 (shifts 0, +2, -2) = no shift; the 0.6 outlier is not used
    np.testing.assert_allclose(out.landmarks[1].numpy(), square_points(100, 100, 10).numpy(), atol=1e-5)
    np.testing.assert_allclose(out.boxes[1].numpy(), [78, 78, 122, 122], atol=1e-4)
    np.testing.assert_allclose(out.boxes[0].numpy(), fit_boxes(b[0][None], "five")[0].numpy())
    # visibility / pose: medians of rows 0..2 of A; gender renormalised median
    np.testing.assert_allclose(out.pose[1].numpy(), [1, 1, 1])
    np.testing.assert_allclose(out.visibility[1].numpy(), np.full(5, 0.25), atol=1e-6)
    np.testing.assert_allclose(out.gender[1].sum().item(), 1.0, atol=1e-6)
    np.testing.assert_allclose(out.gender[1, 0].item(), 0.3, atol=1e-6)


def test_lnms_even_group_uses_the_true_median_and_top_k_all():
    pts = [square_points(100 + d, 100, 10) for d in (0.0, 1.0, 3.0, 4.0)]
    out = landmark_nms(make(pts, [0.9, 0.8, 0.7, 0.6], extra=False), iou_threshold=0.3, top_k=10, point_set="five")
    assert len(out) == 1
    np.testing.assert_allclose(out.landmarks[0, 2].numpy(), [102.0, 100.0], atol=1e-5)  # mean of 1 and 3
    assert out.visibility is None and out.pose is None and out.gender is None


def test_lnms_never_merges_across_images_and_keeps_empty():
    pts = [square_points(100, 100, 10), square_points(100, 100, 10)]
    out = landmark_nms(make(pts, [0.9, 0.8], image=[0, 1]), 0.3, 5, "five")
    assert sorted(out.image.tolist()) == [0, 1]
    empty = make(pts, [0.9, 0.8]).select(torch.zeros(2, dtype=torch.bool))
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


def test_irp_keeps_the_better_box_per_candidate():
    # a fake network: the candidate whose box is centred at x=100 scores 0.9, anything else 0.2
    def evaluate(boxes, image):
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        score = torch.where((cx - 100).abs() < 1, 0.9, 0.2)
        lm = torch.stack([square_points(100, 100, 10)] * len(boxes))
        return Candidates(boxes=boxes, image=image, score=score, landmarks=lm)

    lm = torch.stack([square_points(100, 100, 10), square_points(300, 100, 10), square_points(100, 100, 10)])
    boxes = torch.tensor([[60.0, 60, 120, 120], [280, 80, 320, 120], [0, 0, 10, 10]])
    cands = Candidates(boxes=boxes, image=torch.zeros(3, dtype=torch.long), score=torch.tensor([0.5, 0.5, 0.1]),
                       landmarks=lm)
    out = iterative_region_proposals(cands, evaluate, rounds=2, threshold=0.4, point_set="five")
    # row 0: its landmarks give the box centred at 100: score 0.9, box replaced
    np.testing.assert_allclose(out.boxes[0].numpy(), [78, 78, 122, 122], atol=1e-4)
    assert out.score[0].item() == pytest.approx(0.9)
    # row 1: the refit scored 0.2 < 0.5: kept as it was; row 2: under the threshold, never tried
    np.testing.assert_allclose(out.boxes[1:].numpy(), boxes[1:].numpy())
    np.testing.assert_allclose(out.score[1:].numpy(), [0.5, 0.1])
    assert iterative_region_proposals(cands, evaluate, rounds=0) is cands


def test_irp_moves_a_badly_placed_box_onto_the_blob():
    """End to end with a network that sees the pixels: a box covering half the blob converges onto it."""
    net = BlobNet().eval()
    image = blob_image(200, 160, [(100, 80, 20)])
    tensor = image_to_tensor(image)

    def evaluate(boxes, index):
        from hyperface.inference.candidates import decode_outputs

        crops = extract_crops(tensor, boxes, 32, net.context) / 255.0
        with torch.no_grad():
            return decode_outputs(net(crops), boxes, index)

    start = torch.tensor([[95.0, 60, 150, 115]])  # only the left part of the disk is inside
    cands = evaluate(start, torch.zeros(1, dtype=torch.long))
    out = iterative_region_proposals(cands, evaluate, rounds=3, threshold=0.0, point_set="five")
    assert out.score[0] > cands.score[0]
    np.testing.assert_allclose(out.boxes[0].numpy(), expected_box(100, 80, 20), atol=1.5)


def test_contained_marks_parts_boxed_inside_a_better_face_box():
    from hyperface.inference.lnms import contained

    boxes = torch.tensor([[0.0, 0, 100, 100], [20, 20, 60, 50], [90, 90, 150, 150], [200, 0, 240, 40]])
    score = torch.tensor([0.9, 0.6, 0.8, 0.95])
    # box 1 lies inside box 0, which scores higher: dropped; box 2 sticks out of box 0; box 3 is apart
    assert contained(boxes, score, 0.7).tolist() == [False, True, False, False]
    # a part that scores higher than the face box around it is kept (the box is the doubtful one)
    assert not contained(boxes, torch.tensor([0.5, 0.6, 0.8, 0.95]), 0.7).any()
