"""Self-occlusion labels: which of the 68 points a turned head hides, and how they reach training."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.alignment import MEAN_SHAPE68
from hyperface.points import get_point_set
from hyperface.train.augment import augment_sample, makes_visibility_labels
from hyperface.train.config import ConfigError, augment_config
from hyperface.train.self_occlusion import NORMALS68, label_self_occlusion, self_occluded

MEAN = np.asarray(MEAN_SHAPE68)


def test_frontal_and_slightly_turned_faces_hide_nothing():
    for pose in ([0, 0, 0], [0, 0, 15], [0, -15, -15], [20, 10, 0]):
        assert not self_occluded(pose).any(), pose


def test_yaw_hides_the_far_side_more_as_it_grows():
    # yaw > 0 turns the face towards the image left: the points on the image left go behind the cheek
    counts = []
    for yaw in (30, 45, 60, 90):
        hidden = self_occluded([0, 0, yaw])
        assert hidden[0] and not hidden[16], yaw  # the near ear-level jaw point stays in view
        assert (MEAN[hidden, 0] < 0).all(), yaw
        counts.append(int(hidden.sum()))
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert 0 < counts[-1] < 34  # a profile hides part of the face, not the whole half of it


def test_mirrored_pose_hides_the_mirrored_points():
    flip = np.asarray(get_point_set("ibug68").flip_permutation)
    for pose in ([5, 10, 50], [-8, 0, 70]):
        mirrored = [-pose[0], pose[1], -pose[2]]
        np.testing.assert_array_equal(self_occluded(mirrored), self_occluded(pose)[flip])


def test_margin_keeps_silhouette_points_visible():
    assert self_occluded([0, 0, 45], margin=0).sum() > self_occluded([0, 0, 45], margin=15).sum()
    np.testing.assert_allclose(np.linalg.norm(NORMALS68, axis=1), 1.0)


def _face(yaw: float, *, pose_label: bool = True) -> dict:
    return {"image": np.zeros((120, 120, 3), np.uint8),
            "landmarks": (MEAN * 0.8).astype(np.float32), "landmarks_mask": np.ones(68, bool),
            "visibility": np.zeros(68, np.float32), "visibility_mask": np.zeros(68, bool),
            "pose": np.array([0, 0, yaw], np.float32), "pose_mask": np.bool_(pose_label)}


def test_labels_follow_the_pose_and_keep_what_the_source_said():
    sample = _face(60)
    sample["visibility"][30], sample["visibility_mask"][30] = 0.0, True  # the source: nose tip invisible
    sample["visibility"][29], sample["visibility_mask"][29] = 1.0, True
    out = label_self_occlusion(sample, "ibug68", 15)
    hidden = self_occluded([0, 0, 60], 15)
    assert out["visibility_mask"].all()
    expected = ~hidden
    expected[30] = False
    np.testing.assert_array_equal(out["visibility"] > 0.5, expected)
    assert not sample["visibility_mask"][0]  # the input is left alone


def test_samples_without_pose_or_68_points_are_unchanged():
    for sample, ps in ((_face(60, pose_label=False), "ibug68"), (_face(60), "aflw21")):
        out = label_self_occlusion(sample, ps, 15)
        assert not out["visibility_mask"].any()


def test_validation_path_labels_without_augmenting():
    sample = _face(70)
    out = augment_sample(sample, None, context=1.25, out_size=64, point_set=get_point_set("ibug68"),
                         self_occlusion=15)
    assert out["visibility_mask"].all()
    np.testing.assert_array_equal(out["visibility"] < 0.5, self_occluded([0, 0, 70], 15))
    plain = augment_sample(sample, None, context=1.25, out_size=64, point_set="ibug68")
    assert not plain["visibility_mask"].any()


def test_config_range_is_checked():
    assert augment_config({"self_occlusion": 15}).self_occlusion == 15
    with pytest.raises(ConfigError, match="self_occlusion"):
        augment_config({"self_occlusion": 120})


def test_which_augment_sections_make_visibility_labels():
    assert not makes_visibility_labels(augment_config({"blur": 0.5, "jpeg": 0.5}))  # degradations hide nothing
    assert makes_visibility_labels(augment_config({"sunglasses": 0.1}))
    assert makes_visibility_labels(augment_config({"self_occlusion": 15}))
