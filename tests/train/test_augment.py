"""Augmentation: flips re-index points and mirror pose, jitter keeps landmarks on their image content."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.data.shards import relative_to_crop
from hyperface.points import get_point_set
from hyperface.train.augment import (
    Jitter,
    augment_sample,
    colour_jitter,
    colour_matrix,
    crop_to_input,
    draw_jitter,
    flip_sample,
    jitter_points,
)

CONTEXT = 1.25
CROP = 80


def random_sample(rng: np.random.Generator, n: int = 68) -> dict:
    return {
        "image": rng.integers(0, 255, size=(CROP, CROP, 3), dtype=np.uint8),
        "landmarks": rng.uniform(-0.5, 0.5, size=(n, 2)).astype(np.float32),
        "landmarks_mask": rng.random(n) < 0.8,
        "visibility": (rng.random(n) < 0.5).astype(np.float32),
        "visibility_mask": rng.random(n) < 0.5,
        "landmarks5": rng.uniform(-0.5, 0.5, size=(5, 2)).astype(np.float32),
        "landmarks5_mask": rng.random(5) < 0.8,
        "pose": rng.uniform(-40, 40, size=3).astype(np.float32),
        "pose_mask": np.bool_(True),
        "detection": np.int64(1),
    }


def test_flip_twice_is_identity():
    s = random_sample(np.random.default_rng(0))
    twice = flip_sample(flip_sample(s, "ibug68"), "ibug68")
    for key, value in s.items():
        np.testing.assert_array_equal(twice[key], value, err_msg=key)


def test_flip_permutes_points_and_negates_roll_and_yaw():
    s = random_sample(np.random.default_rng(1))
    s["pose"] = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    f = flip_sample(s, "ibug68")
    np.testing.assert_allclose(f["pose"], [-10.0, 20.0, -30.0])
    # outer eye corners swap: new 36 is old 45 mirrored, and so on for every pair
    perm = np.asarray(get_point_set("ibug68").flip_permutation)
    assert perm[36] == 45 and perm[48] == 54 and perm[30] == 30
    np.testing.assert_allclose(f["landmarks"][36], [-s["landmarks"][45][0], s["landmarks"][45][1]])
    np.testing.assert_allclose(f["landmarks"][:, 0], -s["landmarks"][perm, 0])
    np.testing.assert_array_equal(f["landmarks_mask"], s["landmarks_mask"][perm])
    np.testing.assert_array_equal(f["visibility"], s["visibility"][perm])
    np.testing.assert_allclose(f["landmarks5"][0], [-s["landmarks5"][1][0], s["landmarks5"][1][1]])
    np.testing.assert_array_equal(f["image"], s["image"][:, ::-1])
    assert s["pose"][0] == 10.0  # the input is left alone


def _dot_image(points_rel: np.ndarray) -> np.ndarray:
    """A black crop with a small blob at each point, point i in colour channel i."""
    yy, xx = np.mgrid[0:CROP, 0:CROP].astype(np.float64)
    img = np.zeros((CROP, CROP, 3))
    for i, (px, py) in enumerate(relative_to_crop(points_rel, CONTEXT, CROP)):
        img[..., i] = 255 * np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * 1.5**2))
    return img.round().astype(np.uint8)


def _centroid(channel: np.ndarray) -> np.ndarray:
    w = channel.astype(np.float64)
    w = np.where(w > 0.2 * w.max(), w, 0)
    yy, xx = np.mgrid[0:channel.shape[0], 0:channel.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def _to_pixels(rel: np.ndarray, size: int) -> np.ndarray:
    return size * (0.5 + np.asarray(rel)) - 0.5  # output crops hold exactly the (jittered) box


@pytest.mark.parametrize("jitter", [Jitter(), Jitter(0.06, -0.04, 0.9), Jitter(-0.05, 0.05, 1.12), Jitter(0.03, -0.02, 0.95, 20.0),
                                    Jitter(-0.02, 0.04, 1.05, -35.0)])
@pytest.mark.parametrize("out_size", [64, 32])
def test_jitter_keeps_landmarks_on_their_dots(jitter, out_size):
    pts = np.array([[0.2, -0.15], [-0.3, 0.1], [0.05, 0.35]])
    img = crop_to_input(_dot_image(pts), CONTEXT, out_size, jitter)
    expected = _to_pixels(jitter_points(pts, jitter), out_size)
    scale = out_size / (CROP / CONTEXT)  # output pixels per stored-crop pixel (at s = 1)
    for i in range(3):
        np.testing.assert_allclose(_centroid(img[..., i]), expected[i], atol=max(0.35, 0.35 * scale))


def test_augment_sample_flip_and_jitter_follow_the_image():
    """Five points as dots (eye_left red, eye_right green, nose blue): after any random
    augmentation each point index sits on the dot of the part it names."""
    # The eyes at different heights, so that a flip shows: index 0 then holds the mirrored right eye.
    pts = np.array([[-0.2, -0.2], [0.22, -0.02], [0.02, 0.12], [-0.15, 0.25], [0.16, 0.26]], dtype=np.float32)
    sample = {"image": _dot_image(pts[:3]), "landmarks": pts, "landmarks_mask": np.ones(5, bool),
              "pose": np.zeros(3, np.float32)}
    flips = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        out = augment_sample(sample, rng, context=CONTEXT, out_size=48, point_set="five", flip=0.5, scale=0.1,
                             shift=0.05, rotate=10)
        flipped = out["landmarks"][0, 1] > out["landmarks"][1, 1]  # index 0 is now the lower eye
        flips += flipped
        # The pose label turns with the picture: the eye line's angle is the input's (mirrored when
        # flipped) plus the new roll.
        eye_line = np.degrees(np.arctan2(*(out["landmarks"][1] - out["landmarks"][0])[::-1]))
        upright = np.degrees(np.arctan2(0.18, 0.42))
        assert 0.5 < abs(out["pose"][0]) <= 10
        assert eye_line == pytest.approx((-upright if flipped else upright) + out["pose"][0], abs=1e-3)
        expected = _to_pixels(out["landmarks"], 48)
        # Index 0 (eye on the image left) lies on the red dot unless flipped, then on the green one.
        assert out["landmarks"][0, 0] < out["landmarks"][1, 0]
        channel_of = {0: 1, 1: 0, 2: 2} if flipped else {0: 0, 1: 1, 2: 2}
        for index, channel in channel_of.items():
            np.testing.assert_allclose(_centroid(out["image"][..., channel]), expected[index], atol=0.5)
    assert 0 < flips < 8  # both branches were exercised


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_an_input_context_shows_more_around_the_box_and_keeps_the_labels_box_relative(seed):
    """The network sees the box enlarged ``input_context`` times; each label stays relative to the box and
    sits where inference's window puts it (:class:`hyperface.alignment.Alignment`: crop pixel
    ``size * (0.5 + r / context) - 0.5``), with and without jitter."""
    pts = np.array([[-0.2, -0.2], [0.22, -0.02], [0.02, 0.12], [-0.15, 0.25], [0.16, 0.26]], dtype=np.float32)
    sample = {"image": _dot_image(pts[:3]), "landmarks": pts, "landmarks_mask": np.ones(5, bool)}
    rng = None if seed is None else np.random.default_rng(seed)
    jitter = dict(scale=0.05, shift=0.03, rotate=8) if rng is not None else {}
    plain = augment_sample(sample, None if rng is None else np.random.default_rng(seed), context=CONTEXT,
                           out_size=48, point_set="five", **jitter)
    wide = augment_sample(sample, rng, context=CONTEXT, out_size=48, point_set="five", input_context=1.2, **jitter)
    np.testing.assert_allclose(wide["landmarks"], plain["landmarks"])  # the same draws, box-relative labels
    expected = 48 * (0.5 + wide["landmarks"] / 1.2) - 0.5
    for i in range(3):
        np.testing.assert_allclose(_centroid(wide["image"][..., i]), expected[i], atol=0.5)
    # the dots sit closer together: the window holds more around the box
    spread = np.ptp([_centroid(wide["image"][..., i]) for i in range(3)], axis=0)
    assert (spread < 0.9 * np.ptp([_centroid(plain["image"][..., i]) for i in range(3)], axis=0)).all()


def test_draw_jitter_ranges_and_no_jitter():
    rng = np.random.default_rng(0)
    draws = np.array([draw_jitter(rng, 0.1, 0.05, 15) for _ in range(500)])
    assert np.all(np.abs(draws[:, :2]) <= 0.05) and np.all(np.abs(draws[:, 2] - 1) <= 0.1)
    assert draws[:, 2].std() > 0.03
    assert np.all(np.abs(draws[:, 3]) <= 15) and draws[:, 3].std() > 5
    assert draw_jitter(rng, 0.0, 0.0) == Jitter()


def test_colour_jitter_changes_colours_not_shape():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
    out = colour_jitter(img, np.random.default_rng(1), 0.3, 0.3, 0.3)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() > 1
    assert colour_jitter(img, rng) is img  # all zero: untouched


def test_saturation_zero_gives_grey():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)

    class Fixed:  # factor 1 - 0.999...: as good as fully desaturated
        def uniform(self, low, high):
            return low

    out = colour_jitter(img, Fixed(), 0.0, 0.0, 0.999)
    assert np.abs(out[..., 0].astype(int) - out[..., 1]).max() <= 1


def test_validation_crop_is_the_candidate_box():
    """No jitter: the output is the centre square of side crop / context, resized."""
    img = np.zeros((CROP, CROP, 3), np.uint8)
    box = int(CROP / CONTEXT)
    lo = (CROP - box) // 2
    img[lo:lo + box, lo:lo + box] = 200
    out = augment_sample({"image": img}, None, context=CONTEXT, out_size=box, point_set=None)
    assert out["image"].shape == (box, box, 3)
    assert out["image"][1:-1, 1:-1].min() >= 199 and out["image"].mean() > 190


@pytest.mark.parametrize("jitter", [Jitter(), Jitter(0.06, -0.04, 0.9), Jitter(0.03, -0.02, 0.95, 20.0)])
def test_flip_in_the_warp_is_the_mirrored_crop(jitter):
    """The flip folded into the warp (no mirrored copy) gives the picture of the mirrored crop, and its
    dots sit where the flipped, jittered labels say."""
    pts = np.array([[0.2, -0.15], [-0.3, 0.1], [0.05, 0.35]])
    img = _dot_image(pts)
    folded = crop_to_input(img, CONTEXT, 48, jitter, flip=True)
    mirrored = crop_to_input(np.ascontiguousarray(img[:, ::-1]), CONTEXT, 48, jitter)
    assert np.abs(folded.astype(int) - mirrored).max() <= 1
    moved = jitter_points(pts * [-1.0, 1.0], jitter)  # a flipped point a -> (-ax, ay), then the jitter
    for i, expected in enumerate(_to_pixels(moved, 48)):
        np.testing.assert_allclose(_centroid(folded[..., i]), expected, atol=0.35)


def test_colour_jitter_is_brightness_then_contrast_then_saturation():
    """The one-pass colour map equals the three steps done one after another in floating point."""
    img = np.random.default_rng(3).integers(0, 255, size=(24, 24, 3), dtype=np.uint8)
    for seed in range(4):
        out = colour_jitter(img, np.random.default_rng(seed), 0.3, 0.4, 0.5)
        rng = np.random.default_rng(seed)  # the same draws, in the same order
        b, c, s = (1 + rng.uniform(-v, v) for v in (0.3, 0.4, 0.5))
        x = img.astype(np.float64) * b
        luma = x @ [0.299, 0.587, 0.114]
        x = luma.mean() + c * (x - luma.mean())
        luma = luma.mean() + c * (luma - luma.mean())
        x = luma[..., None] + s * (x - luma[..., None])
        assert np.abs(out.astype(int) - np.clip(np.round(x), 0, 255)).max() <= 1
    m, k = colour_matrix(1.0, 1.0, 1.0)
    np.testing.assert_allclose(m, np.eye(3))
    assert k == 0.0
