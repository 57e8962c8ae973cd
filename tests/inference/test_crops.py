"""Crop geometry: stage one's crops are the prepared data's, the refine network's are ``roi_align``'s (within a
grey level); landmark coordinates round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from hyperface.data.candidates import extract_crop
from hyperface.inference.crops import extract_crops, image_to_relative, relative_to_image, sample_crops


def _gradient(width: int = 160, height: int = 120) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 1.5, yy * 2.0, (xx + yy) / 2], axis=2).astype(np.uint8)


def test_crops_are_the_training_crops():
    image = _gradient()
    boxes = np.array([[20.0, 10, 60, 50], [100, 40, 170, 130], [-10, -5, 30, 25], [5, 5, 150, 115],
                      [30.5, 20.25, 110, 100.75]])
    crops = extract_crops(image, boxes, 32, context=1.25)
    assert crops.shape == (5, 32, 32, 3) and crops.dtype == np.uint8
    for k, box in enumerate(boxes):
        np.testing.assert_array_equal(crops[k], extract_crop(image, box, 1.25, 32))
    # outside the image is black; the box (40 x 40 at context 1.25) spans the crop's centre 25.6 px
    assert crops[2, 0, 0].max() == 0 and crops[2, 31, 31].max() > 0
    assert extract_crops(image, boxes[:0], 32).shape == (0, 32, 32, 3)


def _roi_align(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """torchvision's crops (``aligned=False``, 2 x 2 samples a pixel), as the refine network was trained on."""
    whole = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    crops = roi_align(whole, [torch.tensor(boxes, dtype=torch.float32)], (size, size), 1.0, 2, aligned=False)
    return crops.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("image", ["noise", "gradient"])
def test_sampled_crops_are_roi_align_within_one_grey_level(image):
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8) if image == "noise" else _gradient(130, 90)
    boxes = np.array([[10.3, 20.7, 40.2, 60.9], [70, 12, 100, 50.5],  # inside
                      [-0.5, -0.5, 30, 35], [100, 60, 129.5, 89.5],  # at the corners
                      [-20, -12, 25, 30], [110, 70, 160, 120],  # more than a pixel outside: those samples count 0
                      [5, 5, 6.5, 7], [40, 40, 40.2, 40.1],  # tiny (roi_align takes them as 1 pixel wide)
                      [-30, -30, 170, 130]])  # larger than the image
    got = sample_crops(pixels, boxes, 24)
    want = _roi_align(pixels, boxes, 24)
    assert got.shape == want.shape == (len(boxes), 24, 24, 3) and got.dtype == np.uint8
    diff = np.abs(got.astype(np.float64) - want)
    assert diff.max() <= 1.0
    assert np.mean(np.abs(got.astype(np.float64) - np.round(want)) > 0) < 0.25  # most values exact
    assert (got[4, :4, :4] == 0).all() and (got[5, -4:, -4:] == 0).all()
    assert sample_crops(pixels, boxes[:0], 24).shape == (0, 24, 24, 3)


def test_relative_coordinates_round_trip():
    boxes = np.array([[10.0, 20, 50, 100], [0, 0, 8, 4]])
    rel = np.array([[[-0.5, -0.5], [0.5, 0.5], [0.0, 0.25]]] * 2)
    pts = relative_to_image(rel, boxes)
    np.testing.assert_allclose(pts[0], [[10, 20], [50, 100], [30, 80]])
    np.testing.assert_allclose(pts[1], [[0, 0], [8, 4], [4, 3]])
    np.testing.assert_allclose(image_to_relative(pts, boxes), rel, atol=1e-12)


def test_a_crowd_of_boxes_is_sampled_in_parts_with_the_same_crops():
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.stack([rng.uniform(0, 80, 700), rng.uniform(0, 60, 700)], axis=1)
    boxes = np.concatenate([boxes, boxes + rng.uniform(8, 60, (700, 2))], axis=1)  # 700 x 96 rows: over remap's limit
    crowd = sample_crops(pixels, boxes, 48)
    assert crowd.shape == (700, 48, 48, 3)
    np.testing.assert_array_equal(crowd[::97], np.concatenate([sample_crops(pixels, b[None], 48) for b in boxes[::97]]))
