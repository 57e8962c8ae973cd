"""Alignment by five points: the similarity fit, the crop geometry and the pose's turn."""

import math

import numpy as np
import pytest

from hyperface.alignment import DEFAULT_TEMPLATE, align, five_points, similarity_fit
from hyperface.pose import pose_from_landmarks, rotate_pose, wrap_degrees


@pytest.fixture(scope="module")
def lfpw_faces(shared_data):
    from itertools import islice

    from hyperface.data.readers import open_dataset

    records = islice(open_dataset(f"pts:{shared_data / '300w/lfpw/trainset'}"), 10)
    return [r.faces[0] for r in records]


def _similarity(scale, degrees, tx, ty):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(5, 2))
    m = _similarity(1.7, 23.0, 5.0, -8.0)
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(similarity_fit(src, dst), m, atol=1e-9)


def _umeyama(src, dst):
    """Umeyama's least-squares similarity by SVD, reflections excluded: the reference of the closed form."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    linear = np.trace(np.diag(sig) @ sign) / ((s ** 2).sum() / len(src)) * (u @ sign @ vt)
    return np.column_stack([linear, mu_d - linear @ mu_s])


@pytest.mark.parametrize("seed", range(6))
def test_similarity_fit_is_the_least_squares_rotation_and_scale_of_noisy_points(seed):
    rng = np.random.default_rng(seed)
    src = rng.uniform(0, 100, size=(5, 2))
    m = _similarity(rng.uniform(0.2, 3), rng.uniform(-180, 180), *rng.uniform(-50, 50, 2))
    dst = src @ m[:, :2].T + m[:, 2] + rng.normal(0, 8, size=(5, 2))
    if seed % 2:  # a mirrored target: the best fit is still a rotation, never a reflection
        dst[:, 0] *= -1
    fit = similarity_fit(src, dst)
    np.testing.assert_allclose(fit, _umeyama(src, dst), atol=1e-9)
    assert np.linalg.det(fit[:, :2]) > 0 and np.isclose(fit[0, 0], fit[1, 1]) and np.isclose(fit[0, 1], -fit[1, 0])


def test_similarity_fit_rejects_degenerate_points():
    with pytest.raises(ValueError, match="coincide"):
        similarity_fit(np.full((5, 2), 100.0), np.asarray(DEFAULT_TEMPLATE))
    with pytest.raises(ValueError, match="non-finite"):
        similarity_fit(np.array([[0, 0], [1, np.nan]]), np.array([[0, 0], [1, 1]]))


def test_points_on_the_template_land_on_it_and_map_back():
    t = np.asarray(DEFAULT_TEMPLATE)
    face5 = t * 80 @ _similarity(1.0, -30.0, 0, 0)[:, :2].T + [200.0, 150.0]  # a face turned 30 degrees
    al = align(face5, size=120, context=1.25)
    np.testing.assert_allclose(al.to_relative(face5), t, atol=1e-9)
    np.testing.assert_allclose(al.to_image(t), face5, atol=1e-9)
    assert al.angle == pytest.approx(30.0)  # the content turns back by 30 degrees


def test_warp_puts_image_points_where_to_relative_says():
    image = np.zeros((400, 500, 3), dtype=np.uint8)
    face5 = np.asarray(DEFAULT_TEMPLATE) * 150 @ _similarity(1.0, 20.0, 0, 0)[:, :2].T + [240.0, 210.0]
    dot = np.array([230.0, 190.0])
    image[int(dot[1]) - 2:int(dot[1]) + 3, int(dot[0]) - 2:int(dot[0]) + 3] = 255
    al = align(face5, size=120, context=1.25)
    crop = al.warp(image)
    ys, xs = np.nonzero(crop[..., 0] > 100)
    found = np.array([xs.mean(), ys.mean()])
    expected = 120 * (0.5 + al.to_relative(dot) / 1.25) - 0.5
    np.testing.assert_allclose(found, expected, atol=0.6)


def test_large_faces_are_area_averaged_not_aliased():
    stripes = np.zeros((2000, 2000, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a plain bilinear warp at 1/15 scale would alias
    face5 = np.asarray(DEFAULT_TEMPLATE) * 1500 + 1000
    crop = align(face5, size=96).warp(stripes)
    assert abs(float(crop[20:70, 20:70].mean()) - 127.5) < 12
    assert float(crop[20:70, 20:70].std()) < 20


def test_the_alignment_turn_removes_the_roll_as_rotate_pose_says(lfpw_faces):
    face = lfpw_faces[0]
    pts = face.landmarks
    al = align(five_points(pts, "ibug68"), size=512)
    aligned = al.to_relative(pts) * 512 + 256
    before = pose_from_landmarks(pts, (512, 512))
    after = pose_from_landmarks(aligned, (512, 512))
    # roll follows the turn; pitch and yaw of PnP also change with where the face sits in the frame
    assert wrap_degrees(rotate_pose(before, al.angle)[0] - after[0]) < 2.0
    assert abs(after[0]) < 8.0  # aligned faces are upright


def test_five_points_of_68_are_the_evaluation_convention():
    pts = np.arange(136, dtype=np.float64).reshape(68, 2)
    five = five_points(pts, "ibug68")
    np.testing.assert_allclose(five[0], pts[36:42].mean(0))
    np.testing.assert_allclose(five[2], pts[30])
    np.testing.assert_allclose(five[4], pts[54])
