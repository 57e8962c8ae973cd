"""Drawing (visible vs invisible points, pose axis) and temporal smoothing of video results."""

from __future__ import annotations

import numpy as np

from hyperface.inference.draw import draw_faces
from hyperface.inference.result import Face
from hyperface.inference.smoothing import FaceSmoother


def test_visible_and_invisible_points_are_drawn_differently():
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    lm = np.array([[60.0, 80], [140, 120]])
    face = Face(box=[40, 40, 160, 160], score=0.9, landmarks=lm, point_set=None, visibility=[0.9, 0.1],
                pose=[0, 0, 0], gender="female", gender_probability=0.8)
    out = draw_faces(image, [face], label=False)
    assert out is not image and image.max() == 0  # input untouched
    visible, invisible = out[80, 60], out[120, 140]
    assert visible.any()  # a filled dot on the visible point
    assert not invisible.any()  # a hollow ring: the centre of the invisible point stays dark
    assert out[118:123, 141:147].any()  # ... but its ring is drawn
    assert not np.array_equal(out[80, 60], out[120, 143])
    # the frontal pose's z axis points at the camera: drawn as x (right, red) and y (down, green) arms
    centre = lm.mean(axis=0).astype(int)
    assert out[centre[1], centre[0] + 30, 0] > 150  # red arm to the right
    assert out[centre[1] + 30, centre[0], 1] > 150  # green arm downwards
    labelled = draw_faces(image, [face])
    assert labelled[20:40, 40:120].any()  # the score / gender label above the box


def test_smoother_reduces_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    smoother = FaceSmoother(fps=30, min_cutoff=1.0, beta=0.5)
    base = np.array([[100.0, 100], [140, 100], [120, 130]])
    raw, smooth = [], []
    for _ in range(60):
        lm = base + rng.normal(0, 2.0, base.shape)
        f = Face(box=[90, 90, 150, 140], score=1.0, landmarks=lm, point_set=None, pose=rng.normal(0, 3, 3))
        (out,) = smoother([f])
        raw.append(lm)
        smooth.append(out.landmarks)
    raw_jitter = np.std(np.diff(np.array(raw[10:]), axis=0))
    smooth_jitter = np.std(np.diff(np.array(smooth[10:]), axis=0))
    assert smooth_jitter < 0.5 * raw_jitter
    # a second face far away starts its own track; its first value passes through unchanged
    far = Face(box=[300, 300, 350, 350], score=1.0, landmarks=base + 200, point_set=None)
    near = Face(box=[90, 90, 150, 140], score=1.0, landmarks=base, point_set=None)
    out = smoother([near, far])
    np.testing.assert_allclose(out[1].landmarks, base + 200)
    assert len(smoother.tracks) == 2
    # a big jump (fast motion) is followed, not lagged behind by much
    moved = Face(box=[190, 90, 250, 140], score=1.0, landmarks=base + [100, 0], point_set=None)
    for _ in range(5):
        (out, _) = smoother([moved, far])
    assert np.abs(out.landmarks - (base + [100, 0])).max() < 10
