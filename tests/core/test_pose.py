import numpy as np
import pytest

from hyperface.pose import (
    MODEL3D,
    PNP_POINTS,
    flip_pose,
    pose_from_landmarks,
    pose_to_rotation,
    rotate_pose,
    rotation_to_pose,
    wrap_degrees,
)
from hyperface.points import get_point_set


def _project(pose, size=(640, 480), distance=2000.0):
    """68 points whose six PnP points are MODEL3D seen with ``pose``; the others are filler."""
    w, h = size
    r = pose_to_rotation(pose)
    cam = (r @ MODEL3D.T).T + np.array([0, 0, distance])
    uv = cam[:, :2] / cam[:, 2:] * w + np.array([w / 2, h / 2])
    pts = np.full((68, 2), np.nan)
    pts[list(PNP_POINTS)] = uv
    return pts


@pytest.mark.parametrize("pose", [(0, 0, 0), (10, -5, 30), (-20, 15, -40), (5, 25, 60)])
def test_decomposition_round_trip(pose):
    np.testing.assert_allclose(rotation_to_pose(pose_to_rotation(pose)), pose, atol=1e-9)


@pytest.mark.parametrize("pose", [(0, 0, 0), (8, -10, 25), (-15, 12, -35), (3, 20, 50)])
def test_pnp_recovers_a_known_pose(pose):
    np.testing.assert_allclose(pose_from_landmarks(_project(pose), (640, 480)), pose, atol=0.5)


def test_sign_convention_yaw_pitch_roll():
    # yaw > 0: face turns towards the image left, so the nose tip moves left of the eye midpoint.
    pts = _project((0, 0, 30))
    assert pts[30, 0] < pts[[36, 45], 0].mean()
    # roll > 0: clockwise on screen, the eye on the image right is lower (larger y).
    pts = _project((20, 0, 0))
    assert pts[45, 1] > pts[36, 1]
    # pitch > 0: looking up, the nose tip moves up relative to the eyes (its y shrinks).
    up, level = _project((0, 20, 0)), _project((0, 0, 0))
    assert (up[30, 1] - up[[36, 45], 1].mean()) < (level[30, 1] - level[[36, 45], 1].mean())


def test_flip_negates_roll_and_yaw_on_a_real_face(shared_data):
    from hyperface.data.images import image_size

    folder = shared_data / "300w" / "lfpw" / "trainset"
    checked = 0
    for pts_file in sorted(folder.glob("*.pts"))[:10]:
        lines = pts_file.read_text().split("{")[1].split("}")[0].split()
        pts = np.asarray(lines, dtype=float).reshape(68, 2)
        w, h = image_size(pts_file.with_suffix(".jpg"))
        pose = pose_from_landmarks(pts, (w, h))
        flipped = pose_from_landmarks(get_point_set("ibug68").flip(pts, w), (w, h))
        np.testing.assert_allclose(flipped, flip_pose(pose), atol=1.0)
        checked += 1
    assert checked == 10


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="68 x 2"):
        pose_from_landmarks(np.zeros((5, 2)), (100, 100))
    bad = _project((0, 0, 0))
    bad[30] = np.nan
    with pytest.raises(ValueError, match="finite"):
        pose_from_landmarks(bad, (640, 480))


def test_wrap_degrees():
    np.testing.assert_allclose(wrap_degrees(np.array([179 - (-179), 10, -350, 180])), [2, 10, 10, 180])


@pytest.mark.parametrize("pose", [(0, 0, 0), (5, -10, 30), (-12, 15, -40)])
@pytest.mark.parametrize("degrees", [20.0, -35.0])
def test_rotate_pose_matches_pnp_of_the_turned_image(pose, degrees):
    """Turning the image clockwise about its centre (the augmentation's rotation) gives the pose that
    PnP measures on the turned points; upright, roll changes by exactly the angle."""
    size = (640, 480)
    points = _project(pose, size)
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    centre = np.array(size) / 2
    turned = (points - centre) @ np.array([[c, -s], [s, c]]).T + centre  # clockwise on screen (y down)
    np.testing.assert_allclose(wrap_degrees(rotate_pose(pose, degrees) - pose_from_landmarks(turned, size)), 0,
                               atol=0.05)
    if pose == (0, 0, 0):
        np.testing.assert_allclose(rotate_pose(pose, degrees), [degrees, 0, 0], atol=1e-9)


def test_degenerate_points_are_a_value_error_not_an_opencv_assertion():
    from hyperface.pose import pose_from_landmarks

    with pytest.raises(ValueError, match="degenerate"):
        pose_from_landmarks(np.full((68, 2), 5.0), (100, 100))
