"""Candidate generation and the crop geometry that the stored landmarks rely on."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.data.candidates import (
    crop_matrix, extract_crop, jitter_boxes, random_boxes, selective_search,
)
from hyperface.data.labels import overlaps, to_relative
from hyperface.data.shards import crop_to_relative, relative_to_crop


def _dots_image(w=640, h=480, points=((100, 150), (321, 77), (250, 300), (500, 400))):
    img = np.zeros((h, w, 3), dtype=np.uint8)
    for x, y in points:
        img[y, x] = 255
    return img


@pytest.mark.parametrize("box", [(50.0, 40.0, 400.0, 380.0),      # strong reduction: area path
                                 (200.0, 50.0, 360.0, 200.0),     # about 1:1
                                 (90.3, 140.7, 110.2, 160.1),     # enlargement
                                 (-60.0, -30.0, 420.0, 330.0)])   # partly outside the image
def test_a_source_pixel_lands_where_the_relative_landmark_says(box):
    """Draw a dot at a source pixel; it must appear at relative_to_crop(to_relative(dot, box))."""
    context, size = 1.25, 160
    points = ((100, 150), (321, 77), (250, 300), (130, 60))
    for x, y in points:
        img = _dots_image(points=((x, y),))
        crop = extract_crop(img, np.array(box), context, size).astype(float)[..., 0]
        rel = to_relative(np.array([[x, y]], dtype=float), np.array(box))[0]
        u, v = relative_to_crop(rel, context, size)
        np.testing.assert_allclose(crop_matrix(np.array(box), context, size) @ [x, y, 1], [u, v], atol=1e-9)
        if not (2 <= u < size - 2 and 2 <= v < size - 2):
            continue
        assert crop.max() > 0, "dot lost"
        yy, xx = np.mgrid[0:size, 0:size]
        cu, cv = (crop * xx).sum() / crop.sum(), (crop * yy).sum() / crop.sum()
        assert abs(cu - u) < 0.6 and abs(cv - v) < 0.6, (box, (x, y), (u, v), (cu, cv))
        np.testing.assert_allclose(crop_to_relative([u, v], context, size), rel, atol=1e-9)


def test_crop_places_the_candidate_box_as_the_centred_square():
    img = np.zeros((300, 400, 3), dtype=np.uint8)
    img[100:200, 50:250] = 200  # the candidate box itself, filled
    # Pixel centres are at integers, so pixels 50..249 span x in [49.5, 249.5].
    crop = extract_crop(img, np.array([49.5, 99.5, 249.5, 199.5]), 1.25, 160)
    inside = crop[..., 0] > 100
    rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    # Box side in the crop = 160 / 1.25 = 128, centred: pixels 16 .. 143.
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (16, 143, 16, 143)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    assert crop[0, 0].tolist() == [0, 0, 0]


def test_jitter_boxes_stay_in_their_iou_band():
    rng = np.random.default_rng(0)
    box = np.array([10.0, 20.0, 110.0, 140.0])
    pos = jitter_boxes(box, 20, rng, min_iou=0.5)
    assert len(pos) == 20 and (overlaps(pos, box[None])[:, 0] > 0.5).all()
    band = jitter_boxes(box, 10, rng, min_iou=0.35, max_iou=0.5, shift=0.35, scale=0.5)
    iou = overlaps(band, box[None])[:, 0]
    assert len(band) == 10 and ((iou > 0.35) & (iou <= 0.5)).all()
    again = jitter_boxes(box, 20, np.random.default_rng(0), min_iou=0.5)
    np.testing.assert_array_equal(again, pos)  # same generator state, same boxes


def test_random_boxes_inside_the_image():
    b = random_boxes(32, 32, 50, np.random.default_rng(1), min_side=12)
    assert b.shape == (50, 4)
    assert (b[:, :2] >= 0).all() and (b[:, 2] <= 32).all() and (b[:, 3] <= 32).all()
    sides = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    assert sides.min() >= 12 / 1.25 - 1e-9


def test_selective_search_scaled_back_and_reproducible():
    rng = np.random.default_rng(0)
    img = np.zeros((400, 600, 3), dtype=np.uint8)
    img[50:200, 100:300] = (200, 30, 30)
    img[250:380, 350:560] = (30, 200, 30)
    img = np.clip(img.astype(int) + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    a = selective_search(img, max_side=128, max_proposals=30, rng=np.random.default_rng(3))
    b = selective_search(img, max_side=128, max_proposals=30, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)  # OpenCV's own order varies; ours does not
    assert 0 < len(a) <= 30
    assert (a[:, 0] >= 0).all() and (a[:, 2] <= 600 + 1e-6).all() and (a[:, 3] <= 400 + 1e-6).all()
    # Proposals are in source pixels: the red block is found (scaled back from 128 px).
    full = selective_search(img, max_side=128, max_proposals=10_000)
    assert overlaps(full, np.array([[100.0, 50.0, 300.0, 200.0]])).max() > 0.8
    with pytest.raises(ValueError, match="mode"):
        selective_search(img, mode="slow")
