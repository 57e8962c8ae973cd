"""Training's validation metrics are evaluation's: the same NME, AUC, share within the limit and pose
error on the same predictions, for both point sets, and the log names come from the point sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hyperface.evaluate import metrics as M
from hyperface.evaluate.references import convert_prediction
from hyperface.models import create_model
from hyperface.train.engine import NME_THRESHOLDS, evaluate, landmark_metric
from hyperface.train.loss import MultiTaskLoss

from train_helpers import TINY_ARCH, TINY_KWARGS, template68

TASKS = ("landmarks", "pose")


class _Answers(nn.Module):
    """A model whose outputs are given: one answer dict per batch, in loader order."""

    def __init__(self, config, answers: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.config = config
        self.answers = answers
        self.calls = 0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.answers[self.calls]
        self.calls += 1
        return out


def _faces(seed: int, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` ground-truth 68-point faces in crop units and predictions off by about ``noise``."""
    rng = np.random.default_rng(seed)
    base = template68() * 0.8 + 0.5
    truth = base[None] + rng.normal(0, 0.01, size=(n, 68, 2))
    pred = truth + rng.normal(0, noise, size=(n, 68, 2))
    return truth, pred


def _batch(truth68: np.ndarray, truth5: np.ndarray, mask68: np.ndarray, mask5: np.ndarray,
           pose_truth: np.ndarray) -> dict[str, torch.Tensor]:
    n = len(truth68)
    return {"image": torch.zeros(n, 32, 32, 3, dtype=torch.uint8), "index": torch.arange(n),
            "landmarks": torch.tensor(truth68, dtype=torch.float32),
            "landmarks_mask": torch.tensor(mask68),
            "landmarks5": torch.tensor(truth5, dtype=torch.float32),
            "landmarks5_mask": torch.tensor(mask5),
            "pose": torch.tensor(pose_truth, dtype=torch.float32),
            "pose_mask": torch.ones(n, dtype=torch.bool)}


def test_training_and_evaluation_report_the_same_landmark_and_pose_numbers():
    """Two batches of a 68-point model: faces labelled with 68 points (some points unlabelled, one
    face without an outer eye corner, which neither side can measure) and faces labelled with 5
    points only (measured on the prediction converted to 5 points); poses across the +-180 seam.
    Training's epoch numbers equal evaluation's summary of the same faces, one by one."""
    config = create_model(TINY_ARCH, tasks=TASKS, num_points=68, point_set="ibug68", **TINY_KWARGS).config
    rng = np.random.default_rng(7)
    batches, answers = [], []
    nmes68, nmes5, pose_err = [], [], []
    for b in range(2):
        n68, n5 = 5, 4
        truth, pred = _faces(b, n68 + n5, noise=0.012)
        mask68 = np.ones((n68 + n5, 68), dtype=bool)
        mask68[n68:] = False  # 5-point faces have no 68-point labels
        mask68[0, 48:] = False  # the mouth unlabelled
        if b == 1:
            mask68[1, 45] = False  # an outer eye corner unlabelled: not measurable
        truth68 = np.where(mask68[..., None], truth, 0.0)
        truth5 = np.stack([convert_prediction(t, "ibug68", "five") for t in truth])
        mask5 = np.zeros((n68 + n5, 5), dtype=bool)
        mask5[n68:] = True
        # poses in degrees; predictions in radians as the head gives them, some across the seam
        pose_truth = rng.uniform(-180, 180, size=(n68 + n5, 3))
        pose_truth[:3] = [[179.0, -170.0, 178.0], [-179.5, 10.0, -175.0], [90.0, 179.0, -179.0]]
        pose_pred = pose_truth + rng.normal(0, 8, size=pose_truth.shape)
        pose_pred[:3] = [[-179.0, 175.0, -178.0], [179.5, 12.0, 170.0], [-270.0, -179.0, 179.0]]
        batches.append(_batch(truth68, truth5, mask68, mask5, pose_truth))
        answers.append({"landmarks": torch.tensor(pred, dtype=torch.float32),
                        "pose": torch.deg2rad(torch.tensor(pose_pred, dtype=torch.float32))})
        # Evaluation's view of the same faces: unlabelled points are NaN; single faces, numpy.
        for k in range(n68):
            if mask68[k, 36] and mask68[k, 45]:
                nmes68.append(M.nme_68(pred[k], np.where(mask68[k, :, None], truth[k], np.nan)))
        for k in range(n68, n68 + n5):
            nmes5.append(M.nme_5(convert_prediction(pred[k], "ibug68", "five"), truth5[k]))
        pose_err.append(M.pose_errors(pose_pred, pose_truth))

    model = _Answers(config, answers)
    result = evaluate(model, MultiTaskLoss(TASKS), batches, device=torch.device("cpu"))

    assert result[landmark_metric("faces", "ibug68")] == len(nmes68) == 9
    assert result[landmark_metric("faces", "five")] == len(nmes5) == 8
    for point_set, nmes in (("ibug68", nmes68), ("five", nmes5)):
        limit = M.NME_LIMITS[point_set]
        summary = M.landmark_summary(nmes, limit)
        assert 0.1 < summary["auc"] < 0.9  # neither perfect nor all failures: the limit matters
        assert result[landmark_metric("nme", point_set)] == pytest.approx(summary["mean"], rel=1e-5)
        assert result[landmark_metric("auc", point_set)] == pytest.approx(summary["auc"], rel=1e-4)
        assert result[landmark_metric("acc", point_set, limit)] == pytest.approx(1.0 - summary["failure"])
        t, share = M.ced_curve(nmes, limit, steps=int(round(limit / 0.01)) + 1)  # 0, 0.01, ..., limit
        for threshold, expected in zip(t[1:], share[1:]):
            assert result[landmark_metric("acc", point_set, threshold)] == pytest.approx(expected)
    errors = np.concatenate(pose_err)
    np.testing.assert_allclose(errors[:3], [[2, 15, 4], [1, 2, 15], [0, 2, 2]], atol=1e-9)  # across the seam
    assert result["pose_mae"] == pytest.approx(M.pose_summary(errors)["mean"], rel=1e-5)


def test_log_names_derive_from_the_point_sets():
    assert [landmark_metric("nme", ps) for ps in M.NME_LIMITS] == ["nme68", "nme5"]
    assert landmark_metric("acc", "ibug68", M.NME_LIMITS["ibug68"]) == "acc68@0.08"
    assert landmark_metric("acc", "five", M.NME_LIMITS["five"]) == "acc5@0.10"
    # every limit is a logged threshold, so "share within the limit" (1 - failure rate) is in the log
    assert all(limit in NME_THRESHOLDS for limit in M.NME_LIMITS.values())


def test_metrics_take_tensors_and_arrays_alike():
    """The shared functions give the same numbers on torch tensors as on numpy arrays."""
    rng = np.random.default_rng(3)
    truth, pred = _faces(3, 6, noise=0.02)
    mask = rng.uniform(size=(6, 68)) > 0.2
    mask[:, [36, 45]] = True
    mask[5, 36] = False
    nme_np, valid_np = M.nme_per_face(pred, np.where(mask[..., None], truth, np.nan), "ibug68")
    nme_t, valid_t = M.nme_per_face(torch.tensor(pred), torch.tensor(np.where(mask[..., None], truth, 0.0)), "ibug68",
                                    torch.tensor(mask))
    np.testing.assert_array_equal(valid_t.numpy(), valid_np)
    assert valid_np.tolist() == [True] * 5 + [False] and np.isnan(nme_np[5]) and torch.isnan(nme_t[5])
    np.testing.assert_allclose(nme_t.numpy()[:5], nme_np[:5], rtol=1e-12)
    e = np.array([0.0, 0.04, 0.08, 0.12, np.nan])
    np.testing.assert_allclose(M.auc_scores(torch.tensor(e), 0.08).numpy(), M.auc_scores(e, 0.08))
    np.testing.assert_allclose(M.auc_scores(e, 0.08), [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(M.failures(torch.tensor(e), 0.08).numpy(), M.failures(e, 0.08))
    np.testing.assert_array_equal(M.failures(e, 0.08), [False, False, False, True, True])
    a = np.array([[179.0, -179.0, 360.0], [-180.0, 540.0, -0.5]])
    b = np.array([[-179.0, 179.0, 0.0], [180.0, 0.0, 359.5]])
    np.testing.assert_allclose(M.pose_errors(torch.tensor(a), torch.tensor(b)).numpy(), M.pose_errors(a, b))
    np.testing.assert_allclose(M.pose_errors(a, b), [[2.0, 2.0, 0.0], [0.0, 180.0, 0.0]])
