"""HyperFace's multi-task loss with per-task label masks.

Each task's term is averaged over the entries that carry a label (not over the batch): a task with
no label in a batch contributes exactly zero, never NaN. Terms (paper, section 3):

* detection, gender: cross-entropy;
* landmarks: squared error (``landmark_loss="l2"``, the paper's) or absolute error (``"l1"``)
  weighted by the point mask (ground-truth visibility): invisible or unlabelled points contribute
  nothing; averaged over labelled coordinates. L1 keeps pulling when the errors are already small
  and is less dominated by a few badly placed points, which is why regression landmark models
  (e.g. Feng et al., "Wing Loss", CVPR 2018) prefer it to L2; or the wing loss (``"wing"``) of that
  paper, ``w ln(1 + |x| / eps)`` below ``w`` and ``|x| - C`` above (continuous), whose slope grows
  to ``w / eps`` near 0: small and medium errors pull harder than under L1, large ones as under L1.
  ``w`` = 0.1 and ``eps`` = 0.02 in candidate-box units (the paper's 10 and 2 pixels of a face
  about 100 pixels wide);
* visibility: squared error on the 0/1 visibility, averaged over labelled points;
* pose: squared error on (roll, pitch, yaw) in radians (targets arrive in degrees), averaged over
  labelled angles;
* pose_class (off unless its weight is above 0): the pose-class margin loss, weak yaw supervision
  for faces that carry MTFL's 5-way head-pose class but no pose label. A class is a yaw interval
  (:data:`POSE_CLASS_YAW`); the term is the hinge ``relu(lo - yaw) + relu(yaw - hi)`` in radians on
  the pose head's yaw, 0 inside the interval, averaged over those faces. It trains the pose head
  with a fixed weight (never a learned one) when ``pose`` is optimised, and is logged otherwise.

The total is ``sum(weight[t] * loss[t])`` with the paper's weights 1, 5, 0.5, 5, 2 by default, or,
with ``learn_weights=True``, homoscedastic uncertainty weighting (Kendall et al., CVPR 2018):
``sum(exp(-s_t) * loss[t] + s_t)`` with one learned log-variance ``s_t`` per task.

``landmarks5``/``landmarks5_mask`` targets, when given to a model with another point set, supervise
the model's points through the linear map of :func:`hyperface.points.convert_matrix`, so 5-point
sources train a 68-point model on the points they have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperface.points import convert_matrix
from hyperface.pose import POSE_ORDER
from hyperface.tasks import DEFAULT_LOSS_WEIGHTS, EXTRA_LOSS_TERMS, LANDMARK_LOSSES, LOSS_TERMS, validate_tasks

__all__ = ["MultiTaskLoss", "POSE_CLASS_YAW"]

# MTFL's pose class c (1..5) -> allowed yaw (lo, hi) in degrees at POSE_CLASS_YAW[c - 1]. Yaw > 0 is
# a face turned towards the image left (hyperface.pose), MTFL's class 1 ("left profile"): the
# classes run from large positive to large negative yaw (spearman_yaw_class checks the sign on
# MTFL), the profiles open-ended.
POSE_CLASS_YAW: tuple[tuple[float, float], ...] = (
    (45.0, math.inf),    # 1 left profile
    (15.0, 45.0),        # 2 left half-profile
    (-15.0, 15.0),       # 3 frontal
    (-45.0, -15.0),      # 4 right half-profile
    (-math.inf, -45.0),  # 5 right profile
)
_YAW = POSE_ORDER.index("yaw")  # column of the pose head's output

#: The wing loss's width and curvature in candidate-box units (Feng et al. 2018: w = 10, eps = 2 pixels).
WING_W, WING_EPS = 0.1, 0.02


def _masked_mean(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` where ``mask`` is set, and how many entries that is; the mean is exactly 0
    (with a gradient path) when nothing is set."""
    mask = mask.bool()
    # where(), not multiplication: an unlabelled entry may hold NaN, and NaN * 0 is NaN.
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    count = mask.sum()
    return total / count.to(values.dtype).clamp(min=1.0), count


class MultiTaskLoss(nn.Module):
    """Masked multi-task loss returning a dict: ``{"total": ..., task: term, ...}``.

    ``tasks`` are the tasks that contribute to the total (the optimised ones); every task present
    in both outputs and targets is still computed and returned, detached when not optimised, so
    a run can "optimise some tasks, log all".
    """

    def __init__(self, tasks=("detection", "landmarks", "visibility", "pose", "gender"),
                 weights: Mapping[str, float] | None = None, learn_weights: bool = False,
                 point_set: str | None = None, landmark_loss: str = "l2") -> None:
        super().__init__()
        self.tasks = validate_tasks(tasks)
        if landmark_loss not in LANDMARK_LOSSES:
            raise ValueError(f"landmark_loss {landmark_loss!r}: use one of {LANDMARK_LOSSES}")
        self.landmark_loss = landmark_loss
        merged = dict(DEFAULT_LOSS_WEIGHTS)
        for name, value in (weights or {}).items():
            if name not in LOSS_TERMS:
                raise ValueError(f"unknown task or loss term {name!r}; choose from {list(LOSS_TERMS)}")
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"loss weight for {name!r} must be a finite number >= 0, got {value!r}")
            merged[name] = float(value)
        self.weights = merged
        self.learn_weights = learn_weights
        if learn_weights:
            self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.tasks})
        # extra terms (pose_class) that count in the total: weight above 0 and their task optimised
        self.extra_terms = tuple(t for t, task in EXTRA_LOSS_TERMS.items() if merged[t] > 0 and task in self.tasks)
        to_five = None
        if point_set is not None and point_set != "five":
            to_five = torch.as_tensor(convert_matrix(point_set, "five")[0], dtype=torch.float32)
        self.register_buffer("_to_five", to_five, persistent=False)

    def forward(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"total": ..., task: term, ...}``; see :meth:`measure` for the label counts too."""
        return self.measure(outputs, targets)[0]

    def measure(self, outputs: Mapping[str, Tensor],
                targets: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The loss dict and, per task, how many labelled entries its term is the mean over: the
        weights an epoch mean needs (:meth:`combine` turns such means into the total)."""
        terms: dict[str, Tensor] = {}
        counts: dict[str, Tensor] = {}
        for task in ("detection", "landmarks", "visibility", "pose", "gender"):
            if task in outputs and (task in targets or (task == "landmarks" and "landmarks5" in targets)):
                terms[task], counts[task] = getattr(self, f"_{task}")(outputs[task], targets)
        for term, task in EXTRA_LOSS_TERMS.items():  # computed only when weighted: weight 0 = no term
            if self.weights[term] > 0 and task in outputs and term in targets:
                terms[term], counts[term] = getattr(self, f"_{term}")(outputs[task], targets)
        missing = [t for t in self.tasks if t not in terms]
        if missing:
            raise KeyError(f"loss: no output or target for optimised task(s) {missing}")

        ref = next(iter(outputs.values()))
        total = ref.new_zeros(())
        for task in self.tasks + tuple(t for t in self.extra_terms if t in terms):
            scale, offset = self._scale_offset(task)
            # a learned log-variance counts only where its task has labels in the batch: with none,
            # "+ s" alone would drive s down for ever (kept in the graph, times 0, for DDP)
            labelled = (counts[task] > 0).to(total.dtype) if self.learn_weights else 1.0
            total = total + scale * terms[task] + offset * labelled
        result = {"total": total}
        for task, value in terms.items():
            optimised = task in self.tasks or task in self.extra_terms
            result[task] = value if optimised else value.detach()
        return result, {task: c.detach() for task, c in counts.items()}

    def _scale_offset(self, task: str, as_float: bool = False) -> tuple[Any, Any]:
        """A task's share of the total is ``scale * term + offset``: its fixed weight and 0, or with
        learned weights ``exp(-s)`` and ``s`` (tensors, or floats in double precision for epoch means)."""
        if not self.learn_weights or task not in self.tasks:  # extra terms keep their fixed weight
            return self.weights[task], 0.0
        s = self.log_vars[task]
        if as_float:
            s = s.detach().item()
            return math.exp(-s), s
        return torch.exp(-s), s

    def combine(self, means: Mapping[str, float]) -> float:
        """The total from per-task means (e.g. an epoch's), as :meth:`measure` combines batch terms;
        a task without a mean counts 0."""
        total = 0.0
        for task in self.tasks + self.extra_terms:
            if task not in means:
                continue
            scale, offset = self._scale_offset(task, as_float=True)
            total += scale * float(means[task]) + offset
        return total

    # -- one method per task -------------------------------------------------------------------

    def _detection(self, logits: Tensor, t: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(logits.float(), t["detection"].long().clamp(min=0), reduction="none")
        return _masked_mean(ce, t["detection_mask"])

    def _gender(self, logits: Tensor, t: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(logits.float(), t["gender"].long().clamp(min=0), reduction="none")
        return _masked_mean(ce, t["gender_mask"])

    def _landmarks(self, pred: Tensor, t: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        pred = pred.float()
        sq_sum = pred.new_zeros(())
        count = pred.new_zeros(())
        if "landmarks" in t:
            mask = t["landmarks_mask"].bool()  # (B, N)
            sq = self._point_error(pred - t["landmarks"].float())  # (B, N)
            sq_sum = sq_sum + torch.where(mask, sq, torch.zeros_like(sq)).sum()
            count = count + 2 * mask.sum()
            own = mask.any(-1)
        else:
            own = torch.zeros(pred.shape[0], dtype=torch.bool, device=pred.device)
        if "landmarks5" in t and self._to_five is not None:
            # Five-point labels supervise only samples without labels in the model's own point set.
            mask5 = t["landmarks5_mask"].bool() & ~own[:, None]
            pred5 = torch.einsum("mn,bnc->bmc", self._to_five.to(pred.dtype), pred)
            sq5 = self._point_error(pred5 - t["landmarks5"].float())
            sq_sum = sq_sum + torch.where(mask5, sq5, torch.zeros_like(sq5)).sum()
            count = count + 2 * mask5.sum()
        return sq_sum / count.clamp(min=1.0), count

    def _point_error(self, diff: Tensor) -> Tensor:
        """Per point: dx^2 + dy^2 (l2), |dx| + |dy| (l1) or the wing loss of each; the mean divides by
        the coordinate count."""
        if self.landmark_loss == "l2":
            return (diff ** 2).sum(-1)
        x = diff.abs()
        if self.landmark_loss == "wing":
            c = WING_W - WING_W * math.log1p(WING_W / WING_EPS)  # joins the two pieces at |x| = w
            x = torch.where(x < WING_W, WING_W * torch.log1p(x / WING_EPS), x - c)
        return x.sum(-1)

    def _visibility(self, pred: Tensor, t: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        sq = (pred.float() - t["visibility"].float()) ** 2
        return _masked_mean(sq, t["visibility_mask"])

    def _pose(self, pred: Tensor, t: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        target = torch.deg2rad(t["pose"].float())
        sq = ((pred.float() - target) ** 2).mean(-1)  # mean over the three angles
        return _masked_mean(sq, t["pose_mask"])

    def _pose_class(self, pred: Tensor, t: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Hinge of the predicted yaw outside its MTFL class's interval, in radians: only a bound, as
        the class is all the label says; faces with a full pose label are left to the pose term."""
        yaw = pred.float()[:, _YAW]
        cls = t["pose_class"].long()
        mask = (cls >= 1) & (cls <= len(POSE_CLASS_YAW))
        if "pose_mask" in t:
            mask = mask & ~t["pose_mask"].bool()
        bounds = torch.deg2rad(torch.tensor(POSE_CLASS_YAW, dtype=yaw.dtype, device=yaw.device))
        lo, hi = bounds[(cls - 1).clamp(0, len(POSE_CLASS_YAW) - 1)].unbind(-1)
        hinge = F.relu(lo - yaw) + F.relu(yaw - hi)  # an open bound (inf) gives relu(-inf) = 0
        return _masked_mean(hinge, mask)
