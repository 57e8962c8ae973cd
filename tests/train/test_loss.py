import math

import pytest
import torch

from hyperface.train.loss import MultiTaskLoss


def _batch(b=3, n=4):
    outputs = {
        "detection": torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        "landmarks": torch.zeros(b, n, 2),
        "visibility": torch.full((b, n), 0.5),
        "pose": torch.zeros(b, 3),
        "gender": torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 3.0]]),
    }
    targets = {
        "detection": torch.tensor([0, 1, 1]),
        "detection_mask": torch.tensor([True, True, False]),
        "landmarks": torch.ones(b, n, 2),
        "landmarks_mask": torch.zeros(b, n, dtype=torch.bool),
        "visibility": torch.ones(b, n),
        "visibility_mask": torch.zeros(b, n, dtype=torch.bool),
        "pose": torch.zeros(b, 3),
        "pose_mask": torch.tensor([False, True, False]),
        "gender": torch.tensor([0, 1, 1]),
        "gender_mask": torch.tensor([True, False, False]),
    }
    return outputs, targets


def _ce(logits, label):
    return -logits[label] + math.log(sum(math.exp(v) for v in logits))


def test_values_match_a_hand_computation():
    outputs, targets = _batch()
    targets["landmarks_mask"][0, :2] = True  # 2 labelled points, each off by (1, 1)
    targets["visibility_mask"][1] = True  # 4 entries, each (0.5 - 1)^2
    targets["pose"][1] = torch.tensor([180.0 / math.pi, 0.0, 0.0])  # 1 rad roll error
    loss = MultiTaskLoss()(outputs, targets)

    det = (_ce([2.0, 0.0], 0) + _ce([0.0, 1.0], 1)) / 2  # third sample unlabelled
    assert loss["detection"].item() == pytest.approx(det, rel=1e-6)
    assert loss["landmarks"].item() == pytest.approx(1.0)  # (1 + 1) * 2 points / (2 * 2 coordinates)
    assert loss["visibility"].item() == pytest.approx(0.25)
    assert loss["pose"].item() == pytest.approx(1.0 / 3)  # mean over the three angles
    assert loss["gender"].item() == pytest.approx(_ce([1.0, 0.0], 0), rel=1e-6)
    total = 1 * det + 5 * 1.0 + 0.5 * 0.25 + 5 / 3 + 2 * _ce([1.0, 0.0], 0)
    assert loss["total"].item() == pytest.approx(total, rel=1e-6)


def test_l1_landmark_loss_is_the_mean_absolute_coordinate_error():
    outputs, targets = _batch()
    targets["landmarks_mask"][0, :2] = True
    targets["landmarks"][0, 0] = torch.tensor([3.0, -1.0])  # prediction 0: errors 3 and 1
    targets["landmarks"][0, 1] = torch.tensor([0.5, 0.5])  # errors 0.5 and 0.5
    l1 = MultiTaskLoss(landmark_loss="l1")(outputs, targets)["landmarks"].item()
    assert l1 == pytest.approx((3 + 1 + 0.5 + 0.5) / 4)
    l2 = MultiTaskLoss()(outputs, targets)["landmarks"].item()
    assert l2 == pytest.approx((9 + 1 + 0.25 + 0.25) / 4)
    with pytest.raises(ValueError, match="landmark_loss"):
        MultiTaskLoss(landmark_loss="l3")


def test_wing_loss_is_log_shaped_near_zero_and_l1_shaped_beyond_w():
    """Feng et al.'s wing: w ln(1 + |x| / eps) below w = 0.1, |x| - C above, continuous at w."""
    w, eps = 0.1, 0.02
    c = w - w * math.log(1 + w / eps)
    for err, expected in [(0.01, w * math.log(1 + 0.01 / eps)), (0.3, 0.3 - c), (w, w * math.log(1 + w / eps))]:
        outputs, targets = _batch()
        targets["landmarks_mask"][0, 0] = True
        targets["landmarks"][0, 0] = torch.tensor([err, 0.0])  # one coordinate off by err, the other exact
        wing = MultiTaskLoss(landmark_loss="wing")(outputs, targets)["landmarks"].item()
        assert wing == pytest.approx(expected / 2, rel=1e-5)
    assert (w - c) == pytest.approx(w * math.log(1 + w / eps))  # the pieces meet
    # near 0 it pulls w / eps = 5 times harder than L1; far out exactly as hard
    pred = torch.tensor([[[0.001, 0.5]]], requires_grad=True)
    t = {"landmarks": torch.zeros(1, 1, 2), "landmarks_mask": torch.ones(1, 1, dtype=torch.bool)}
    MultiTaskLoss(tasks=["landmarks"], landmark_loss="wing")({"landmarks": pred}, t)["landmarks"].backward()
    np_grad = pred.grad[0, 0] * 2  # the mean over two coordinates
    assert np_grad[0].item() == pytest.approx(w / (eps + 0.001), rel=1e-4)
    assert np_grad[1].item() == pytest.approx(1.0, rel=1e-6)


def test_masked_entries_do_not_count_even_when_nan():
    outputs, targets = _batch()
    targets["landmarks_mask"][0, 0] = True
    base = MultiTaskLoss()(outputs, targets)["landmarks"].item()
    targets["landmarks"][1:] = float("nan")  # unlabelled samples may hold anything
    targets["landmarks"][0, 1:] = 1e6
    assert MultiTaskLoss()(outputs, targets)["landmarks"].item() == pytest.approx(base)


def test_invisible_points_contribute_nothing_to_the_landmark_term():
    outputs, targets = _batch()
    targets["landmarks_mask"][:] = True
    full = MultiTaskLoss()(outputs, targets)["landmarks"].item()
    outputs["landmarks"][0, 0] = 100.0
    targets["landmarks_mask"][0, 0] = False
    assert MultiTaskLoss()(outputs, targets)["landmarks"].item() == pytest.approx(full)


def test_batch_without_labels_gives_zero_and_no_nan():
    outputs, targets = _batch()
    for key in targets:
        if key.endswith("_mask"):
            targets[key] = torch.zeros_like(targets[key])
    for o in outputs.values():
        o.requires_grad_(True)
    loss = MultiTaskLoss()(outputs, targets)
    for name, value in loss.items():
        assert value.item() == 0.0, name
    loss["total"].backward()
    assert all(torch.isfinite(o.grad).all() for o in outputs.values())


def test_weights_are_configurable_and_validated():
    outputs, targets = _batch()
    default = MultiTaskLoss()(outputs, targets)
    only_det = MultiTaskLoss(weights={"gender": 0.0, "pose": 0.0})(outputs, targets)
    assert only_det["total"].item() == pytest.approx(default["detection"].item())
    with pytest.raises(ValueError, match="unknown task"):
        MultiTaskLoss(weights={"age": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        MultiTaskLoss(weights={"pose": -1.0})


def test_tasks_not_optimised_are_logged_but_carry_no_gradient():
    outputs, targets = _batch()
    targets["gender_mask"][:] = True
    for o in outputs.values():
        o.requires_grad_(True)
    loss = MultiTaskLoss(tasks=["landmarks", "detection"])(outputs, targets)
    assert loss["gender"].item() > 0 and not loss["gender"].requires_grad
    loss["total"].backward()
    assert outputs["gender"].grad is None


def test_uncertainty_weighting_has_one_learned_weight_per_task():
    outputs, targets = _batch()
    crit = MultiTaskLoss(learn_weights=True)
    loss = crit(outputs, targets)
    # With all log-variances at zero the total is the unweighted sum.
    expected = sum(loss[t].item() for t in ("detection", "landmarks", "visibility", "pose", "gender"))
    assert loss["total"].item() == pytest.approx(expected, rel=1e-6)
    loss["total"].backward()
    assert crit.log_vars["detection"].grad is not None


def test_a_learned_weight_of_a_task_without_labels_stays_put():
    """Kendall's "+ s" counts only where the task has labels: with none (visibility in this batch)
    the total must not depend on s, or s would fall for ever."""
    outputs, targets = _batch()
    crit = MultiTaskLoss(learn_weights=True)
    with torch.no_grad():
        crit.log_vars["visibility"].fill_(2.0)
        crit.log_vars["pose"].fill_(1.0)
    loss = crit(outputs, targets)
    expected = sum(loss[t].item() for t in ("detection", "landmarks", "gender")) + math.exp(-1.0) * loss["pose"].item() + 1.0
    assert loss["total"].item() == pytest.approx(expected, rel=1e-6)
    loss["total"].backward()
    assert crit.log_vars["visibility"].grad.item() == 0.0 and crit.log_vars["landmarks"].grad.item() == 0.0
    assert crit.log_vars["pose"].grad.item() != 0.0
    assert crit.combine({"pose": 2.0}) == pytest.approx(math.exp(-1.0) * 2.0 + 1.0, rel=1e-12)


def test_five_point_labels_supervise_a_68_point_model():
    b = 2
    outputs = {"landmarks": torch.zeros(b, 68, 2, requires_grad=True)}
    targets = {
        "landmarks": torch.zeros(b, 68, 2),
        "landmarks_mask": torch.zeros(b, 68, dtype=torch.bool),
        "landmarks5": torch.ones(b, 5, 2),
        "landmarks5_mask": torch.tensor([[True] * 5, [False] * 5]),
    }
    loss = MultiTaskLoss(tasks=["landmarks"], point_set="ibug68")(outputs, targets)
    assert loss["landmarks"].item() == pytest.approx(1.0)
    l1 = MultiTaskLoss(tasks=["landmarks"], point_set="ibug68", landmark_loss="l1")(outputs, targets)
    assert l1["landmarks"].item() == pytest.approx(1.0)  # |0 - 1| per coordinate
    loss["total"].backward()
    grad = outputs["landmarks"].grad
    assert grad[0, 30].abs().sum() > 0 and grad[0, 0].abs().sum() == 0  # nose tip yes, jaw no
    assert grad[1].abs().sum() == 0


def test_the_loss_gives_its_label_counts_and_combines_epoch_means():
    """One owner of the loss arithmetic: the counts that weight each term's epoch mean and the total of
    those means come from the loss itself (the engine only accumulates)."""
    from hyperface.train import engine

    outputs, targets = _batch()
    targets["landmarks_mask"][0, :2] = True
    targets["visibility_mask"][1] = True
    losses, counts = MultiTaskLoss().measure(outputs, targets)
    assert {k: float(v) for k, v in counts.items()} == {"detection": 2.0, "landmarks": 4.0, "visibility": 4.0,
                                                        "pose": 1.0, "gender": 1.0}  # landmarks: coordinates
    # a 68-point model with one face labelled in 68 points and one in the 5-point set only
    outputs68 = {"landmarks": torch.zeros(2, 68, 2)}
    targets68 = {"landmarks": torch.zeros(2, 68, 2), "landmarks_mask": torch.zeros(2, 68, dtype=torch.bool),
                 "landmarks5": torch.ones(2, 5, 2), "landmarks5_mask": torch.ones(2, 5, dtype=torch.bool)}
    targets68["landmarks_mask"][0, :10] = True
    _, counts68 = MultiTaskLoss(tasks=["landmarks"], point_set="ibug68").measure(outputs68, targets68)
    assert float(counts68["landmarks"]) == 2 * 10 + 2 * 5

    means = {"detection": 0.5, "landmarks": 0.25, "pose": 2.0}
    weighted = MultiTaskLoss(tasks=["detection", "landmarks", "pose"], weights={"pose": 3.0})
    assert weighted.combine(means) == 1.0 * 0.5 + 5.0 * 0.25 + 3.0 * 2.0
    learned = MultiTaskLoss(tasks=["detection", "pose"], learn_weights=True)
    with torch.no_grad():
        learned.log_vars["pose"].fill_(1.0)
    assert learned.combine(means) == pytest.approx(0.5 + math.exp(-1.0) * 2.0 + 1.0, rel=1e-12)
    # a single batch's terms combine to its total
    crit = MultiTaskLoss()
    losses, _ = crit.measure(outputs, targets)
    assert crit.combine({t: losses[t].item() for t in crit.tasks}) == pytest.approx(losses["total"].item(), rel=1e-6)
    assert not hasattr(engine, "label_counts") and not hasattr(engine, "combine_total")
