"""Crop geometry: both extraction paths give the prepared data's crops; landmark coordinates round-trip."""

from __future__ import annotations

import numpy as np
import torch

from hyperface.data.candidates import extract_crop
from hyperface.inference.crops import (
    extract_crops, extract_crops_cv2, image_to_relative, image_to_tensor, relative_to_image,
)


def test_crop_paths_agree_with_the_training_crops():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160]
    image = np.stack([xx * 1.5, yy * 2.0, (xx + yy) / 2], axis=2).astype(np.uint8)
    boxes = np.array([[20.0, 10, 60, 50], [100, 40, 170, 130], [-10, -5, 30, 25], [5, 5, 150, 115],
                      [30, 20, 110, 100]])
    cv = extract_crops_cv2(image, boxes, 32, context=1.25)
    for k, box in enumerate(boxes):
        np.testing.assert_array_equal(cv[k], extract_crop(image, box, 1.25, 32))
    ra = extract_crops(image_to_tensor(image), torch.tensor(boxes, dtype=torch.float32), 32, context=1.25)
    ra = ra.permute(0, 2, 3, 1).numpy()
    inside = [0, 4]  # enlarged boxes within the image: same geometry, slightly different filtering
    assert np.abs(ra[inside] - cv[inside].astype(np.float32)).mean() < 1.0
    # outside the image is black in both; the box (40 x 40 at context 1.25) spans the crop's centre 25.6 px
    assert cv[2, 0, 0].max() == 0 and ra[2, 0, 0].max() < 1
    noise = rng.integers(0, 255, size=image.shape, dtype=np.uint8)
    assert extract_crops_cv2(noise, boxes[:0], 32).shape == (0, 32, 32, 3)


def test_relative_coordinates_round_trip():
    boxes = torch.tensor([[10.0, 20, 50, 100], [0, 0, 8, 4]])
    rel = torch.tensor([[[-0.5, -0.5], [0.5, 0.5], [0.0, 0.25]]] * 2)
    pts = relative_to_image(rel, boxes)
    np.testing.assert_allclose(pts[0].numpy(), [[10, 20], [50, 100], [30, 80]])
    np.testing.assert_allclose(image_to_relative(pts, boxes).numpy(), rel.numpy(), atol=1e-6)
