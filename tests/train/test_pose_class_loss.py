"""The pose-class margin loss: weak yaw supervision from MTFL's 5-way pose class."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hyperface.models import create_model
from hyperface.train.augment import flip_sample
from hyperface.train.config import ConfigError, config_from_dict
from hyperface.train.engine import evaluate
from hyperface.train.loss import POSE_CLASS_YAW, MultiTaskLoss

from train_helpers import TINY_ARCH, TINY_KWARGS

TASKS = ("detection", "pose")


def _batch(yaw_degrees, classes, pose_mask=None):
    """Pose outputs with the given yaws (radians, as the head gives them) and their targets."""
    b = len(yaw_degrees)
    pose = torch.zeros(b, 3)
    pose[:, 2] = torch.deg2rad(torch.tensor(yaw_degrees, dtype=torch.float32))
    outputs = {"detection": torch.zeros(b, 2), "pose": pose.requires_grad_()}
    targets = {"detection": torch.ones(b, dtype=torch.long), "detection_mask": torch.ones(b, dtype=torch.bool),
               "pose": torch.zeros(b, 3),
               "pose_mask": torch.tensor(pose_mask or [False] * b),
               "pose_class": torch.tensor(classes, dtype=torch.long)}
    return outputs, targets


def test_intervals_follow_the_yaw_sign_convention():
    # yaw > 0 is a face turned towards the image left: MTFL's class 1, left profile
    assert POSE_CLASS_YAW == ((45.0, math.inf), (15.0, 45.0), (-15.0, 15.0), (-45.0, -15.0), (-math.inf, -45.0))


@pytest.mark.parametrize("cls, yaws", [(1, [45.0, 60.0, 120.0]), (2, [15.0, 30.0, 45.0]), (3, [-15.0, 0.0, 15.0]),
                                       (4, [-45.0, -30.0, -15.0]), (5, [-45.0, -80.0, -170.0])])
def test_zero_inside_the_interval(cls, yaws):
    outputs, targets = _batch(yaws, [cls] * len(yaws))
    loss, counts = MultiTaskLoss(TASKS, weights={"pose_class": 1.0}).measure(outputs, targets)
    assert loss["pose_class"].item() == pytest.approx(0.0, abs=1e-6) and counts["pose_class"] == len(yaws)


def test_hinge_outside_the_interval_is_the_distance_to_it_in_radians():
    outputs, targets = _batch([30.0, 25.0, -10.0, 50.0], [1, 3, 5, 2])
    loss, counts = MultiTaskLoss(TASKS, weights={"pose_class": 2.0}).measure(outputs, targets)
    expected = math.radians((45 - 30) + (25 - 15) + (-10 + 45) + (50 - 45)) / 4
    assert loss["pose_class"].item() == pytest.approx(expected, rel=1e-5) and counts["pose_class"] == 4
    base = MultiTaskLoss(TASKS)(outputs, targets)
    assert loss["total"].item() == pytest.approx(base["total"].item() + 2.0 * expected, rel=1e-5)
    loss["total"].backward()
    grad = outputs["pose"].grad
    assert not grad[:, :2].any()  # only yaw is supervised
    # pulled into the interval: class 1 at 30 degrees up, class 3 at 25 down, and so on
    assert (torch.sign(grad[:, 2]) == torch.tensor([-1.0, 1.0, 1.0, 1.0])).all()


def test_faces_with_a_pose_label_or_without_a_class_are_ignored():
    outputs, targets = _batch([0.0, 80.0, -80.0, 0.0], [1, 3, 0, 4], pose_mask=[False, True, False, False])
    loss, counts = MultiTaskLoss(TASKS, weights={"pose_class": 1.0}).measure(outputs, targets)
    assert counts["pose_class"] == 2  # the first and the last face only
    assert loss["pose_class"].item() == pytest.approx(math.radians(45 + 15) / 2, rel=1e-5)
    outputs, targets = _batch([0.0, 80.0], [0, 3], pose_mask=[False, True])
    loss, counts = MultiTaskLoss(TASKS, weights={"pose_class": 1.0}).measure(outputs, targets)
    assert counts["pose_class"] == 0 and loss["pose_class"].item() == 0.0  # nothing to supervise: exactly 0


def test_weight_0_means_no_term_and_no_gradient():
    outputs, targets = _batch([30.0, 0.0], [1, 5])
    off = MultiTaskLoss(TASKS)(outputs, targets)  # the default weight is 0
    assert "pose_class" not in off
    off["total"].backward()
    grad_off = outputs["pose"].grad.clone()
    outputs["pose"].grad = None
    without = dict(targets)
    del without["pose_class"]
    MultiTaskLoss(TASKS)(outputs, without)["total"].backward()
    assert torch.equal(grad_off, outputs["pose"].grad)
    assert not grad_off.any()  # no pose label, no class term: the pose head gets nothing


def test_logged_but_not_optimised_when_pose_is_not_optimised():
    outputs, targets = _batch([30.0], [1])
    loss = MultiTaskLoss(("detection",), weights={"pose_class": 1.0})(outputs, targets)
    assert loss["pose_class"].item() > 0 and not loss["pose_class"].requires_grad
    assert loss["total"].item() == pytest.approx(loss["detection"].item())


def test_learned_weights_leave_the_term_its_fixed_weight():
    outputs, targets = _batch([30.0], [1])
    crit = MultiTaskLoss(TASKS, weights={"pose_class": 3.0}, learn_weights=True)
    assert set(crit.log_vars) == set(TASKS)
    loss = crit(outputs, targets)
    # log-variances start at 0: each task counts once (pose has no label here), the class term 3 times
    assert loss["total"].item() == pytest.approx(loss["detection"].item() + 3.0 * loss["pose_class"].item(), rel=1e-5)
    assert crit.combine({"detection": 1.0, "pose": 0.5, "pose_class": 0.25}) == pytest.approx(1.0 + 0.5 + 0.75)


def test_config_accepts_the_weight_only_with_the_pose_task():
    ok = config_from_dict({"data": {"train": ["x"]}, "loss": {"weights": {"pose_class": 0.5}}})
    assert ok.loss.weights == {"pose_class": 0.5}
    with pytest.raises(ConfigError, match="'pose_class' needs the 'pose' task"):
        config_from_dict({"data": {"train": ["x"]}, "model": {"tasks": ["landmarks"]},
                          "loss": {"weights": {"pose_class": 0.5}}})
    config_from_dict({"data": {"train": ["x"]}, "model": {"tasks": ["landmarks"]},
                      "loss": {"weights": {"pose_class": 0.0}}})  # off: no pose head needed
    with pytest.raises(ConfigError, match="unknown task"):
        config_from_dict({"data": {"train": ["x"]}, "loss": {"weights": {"yaw_class": 1.0}}})


def test_a_flip_mirrors_the_class():
    s = {"image": np.zeros((4, 4, 3), np.uint8), "pose": np.zeros(3, np.float32)}
    for cls, mirrored in ((1, 5), (2, 4), (3, 3), (4, 2), (5, 1), (0, 0)):
        out = flip_sample(dict(s, pose_class=np.int64(cls)), None)
        assert out["pose_class"] == mirrored and out["pose_class"].dtype == np.int64


def test_validation_reports_the_term():
    torch.manual_seed(0)
    model = create_model(TINY_ARCH, tasks=TASKS, num_points=68, **TINY_KWARGS)
    _, targets = _batch([0.0, 0.0, 0.0], [1, 0, 5])
    batch = {"image": torch.zeros(3, 32, 32, 3, dtype=torch.uint8), "index": torch.arange(3), **targets}
    crit = MultiTaskLoss(TASKS, weights={"pose_class": 1.0})
    result = evaluate(model, crit, [batch], device=torch.device("cpu"))
    assert "loss_pose_class" in result and result["loss_pose_class"] > 0  # a near-zero yaw is no profile
    assert result["loss_total"] == pytest.approx(result["loss_detection"] + result["loss_pose_class"], rel=1e-5)
    assert "loss_pose_class" not in evaluate(model, MultiTaskLoss(TASKS), [batch], device=torch.device("cpu"))
