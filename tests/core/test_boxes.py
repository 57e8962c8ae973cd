"""``hyperface.boxes``: the numpy box arithmetic of inference gives torchvision's answers (which training and the
pipeline before it used), suppression included."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.boxes import as_boxes, batched_nms, box_area, box_iou, box_size, inside_share, nms, scale_boxes

torch = pytest.importorskip("torch")
ops = pytest.importorskip("torchvision.ops")


def _random_boxes(rng: np.random.Generator, n: int, empty_share: float = 0.0) -> np.ndarray:
    """``n`` float32 boxes over a 500-pixel square, from half a pixel to 120 pixels a side, overlapping often;
    ``empty_share`` of them with no width or no height."""
    xy = rng.uniform(-50, 500, (n, 2))
    wh = rng.uniform(0.5, 120, (n, 2))
    empty = rng.random(n) < empty_share
    wh[empty, rng.integers(0, 2, int(empty.sum()))] = 0
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.3, 0.5, 0.7, 1.0])
def test_nms_keeps_what_torchvision_keeps_in_its_order(seed, threshold):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    boxes = _random_boxes(rng, n, empty_share=0.1 if seed % 2 else 0.0)
    scores = rng.random(n).astype(np.float32)
    want = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
    got = nms(boxes, scores, threshold)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    groups = rng.integers(0, 4, n)  # images or pyramid levels: never suppressed across groups
    want = ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), threshold)
    np.testing.assert_array_equal(batched_nms(boxes, scores, groups, threshold), want.numpy())


def test_nms_on_known_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [5, 5, 5, 9], [5, 5, 5, 9]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.8, 0.7])
    # box 0 overlaps the better box 1 by IoU 9/11; the two empty boxes overlap nothing, not even each other
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 3, 4, 2])
    np.testing.assert_array_equal(nms(boxes, scores, 0.9), [1, 3, 4, 0, 2])
    np.testing.assert_array_equal(batched_nms(boxes, scores, [0, 1, 0, 0, 0], 0.5), [1, 3, 4, 0, 2])
    assert nms(np.zeros((0, 4)), [], 0.5).shape == (0,) and batched_nms([], [], [], 0.5).shape == (0,)


def test_iou_and_area_are_torchvisions():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 40), _random_boxes(rng, 30)
    np.testing.assert_allclose(box_iou(a, b), ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(box_area(a), ops.box_area(torch.from_numpy(a)).numpy(), rtol=1e-5)
    empty = np.array([[3.0, 3, 3, 8]])
    assert box_iou(empty, empty)[0, 0] == 0.0 and box_area([[5, 5, 2, 9]])[0] == 0.0  # inverted: no area
    np.testing.assert_allclose(box_size([[0, 0, 4, 9], [5, 5, 2, 9]]), [6.0, 0.0])  # sqrt of the area
    assert box_iou(a, np.zeros((0, 4))).shape == (40, 0) and as_boxes([]).shape == (0, 4)


def test_inside_share_is_the_share_of_each_box_in_another():
    boxes = np.array([[0.0, 0, 10, 10], [5, 0, 15, 10], [2, 2, 4, 4], [7, 7, 7, 9]])
    share = inside_share(boxes)
    assert share[0, 1] == pytest.approx(0.5) and share[1, 0] == pytest.approx(0.5)
    assert share[0, 2] == 1.0 and share[2, 0] == pytest.approx(0.04) and share[1, 2] == 0.0
    assert share[0, 3] == 0.0 and np.allclose(np.diag(share)[:3], 1.0)  # an empty box lies in nothing


def test_scale_boxes_keeps_the_centre_and_scales_each_side():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 4.0, 2.0]])
    np.testing.assert_allclose(scale_boxes(boxes, 2.0), [[0.0, 0.0, 40.0, 80.0], [-2.0, -1.0, 6.0, 3.0]])
    np.testing.assert_allclose(scale_boxes(boxes[0], 1.25), [[7.5, 15.0, 32.5, 65.0]])  # one box, as (1, 4)
