"""One epoch of training and one pass of evaluation: functions, no state of their own.

Losses are dicts (``{"total": ..., task: ...}``, from :class:`~hyperface.train.loss.MultiTaskLoss`);
every term is accumulated, weighted by how many labelled entries its batch had, so an epoch's mean
is the mean over labelled entries (the same whatever the batch size or number of processes: sums
and counts are all-reduced). A non-finite loss stops training with the step and the terms.

Evaluation reports per task the validation loss, and for landmarks the normalised mean error (NME)
per face in crop terms: 68 points normalised by the outer-eye-corner distance (points 36 and 45),
5 points by the distance between the eye centres; the share of faces under each threshold of
:data:`NME_THRESHOLDS` (``acc68@0.08`` ...), the mean NME and the area under the cumulative error
curve up to 0.08 (68) / 0.10 (5) as ``../shared/docs/evaluation.md`` defines it. Also detection and
gender accuracy and the mean absolute pose error in degrees.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from hyperface.models import ModelConfig, to_input_tensor
from hyperface.points import convert_matrix
from hyperface.tasks import TASKS
from hyperface.train.loss import MultiTaskLoss

__all__ = [
    "TrainStep",
    "Meter",
    "NME_THRESHOLDS",
    "AUC_LIMITS",
    "split_batch",
    "label_counts",
    "landmark_nme",
    "combine_total",
    "train_one_epoch",
    "evaluate",
]

NME_THRESHOLDS: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 16))  # 0.01 ... 0.15
AUC_LIMITS = {"68": 0.08, "5": 0.10}


class TrainStep(nn.Module):
    """Model and loss in one module, so that DDP also averages the gradients of learned loss weights."""

    def __init__(self, model: nn.Module, criterion: MultiTaskLoss) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, images: Tensor, targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.criterion(self.model(images), targets)


class Meter:
    """Running sums and counts by name; :meth:`all_reduce` adds them over processes."""

    def __init__(self, state: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.sums: dict[str, float | Tensor] = {}
        self.counts: dict[str, float | Tensor] = {}
        for name, (s, c) in (state or {}).items():
            self.sums[name], self.counts[name] = s, c

    def add(self, name: str, total: float | Tensor, count: float | Tensor = 1.0) -> None:
        """Add ``total`` (a sum over ``count`` entries)."""
        if isinstance(total, Tensor):
            total = total.detach().double()
        self.sums[name] = self.sums.get(name, 0.0) + total
        self.counts[name] = self.counts.get(name, 0.0) + count

    def state(self) -> dict[str, tuple[float, float]]:
        """Plain floats, e.g. for a checkpoint."""
        return {k: (float(self.sums[k]), float(self.counts[k])) for k in sorted(self.sums)}

    def all_reduce(self, device: torch.device) -> None:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        names = sorted(self.sums)
        # Every process must hold the same names: gather them first (cheap, once per epoch).
        all_names: list[list[str]] = [[] for _ in range(dist.get_world_size())]
        dist.all_gather_object(all_names, names)
        names = sorted(set().union(*all_names))
        values = torch.tensor([[float(self.sums.get(n, 0.0)), float(self.counts.get(n, 0.0))] for n in names],
                              dtype=torch.float64, device=device)
        dist.all_reduce(values)
        for n, (s, c) in zip(names, values.tolist()):
            self.sums[n], self.counts[n] = s, c

    def means(self) -> dict[str, float]:
        """``sum / count`` of every name with a count above 0."""
        out = {}
        for k in sorted(self.sums):
            c = float(self.counts[k])
            if c > 0:
                out[k] = float(self.sums[k]) / c
        return out


def split_batch(batch: Mapping[str, Tensor], config: ModelConfig,
                device: torch.device) -> tuple[Tensor, dict[str, Tensor]]:
    """Normalised NCHW images (via the model's own transform) and targets on ``device``."""
    non_blocking = device.type == "cuda"
    images = to_input_tensor(batch["image"], config, device=device)
    targets = {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items() if k not in ("image", "index")}
    return images, targets


def label_counts(targets: Mapping[str, Tensor], criterion: MultiTaskLoss) -> dict[str, Tensor]:
    """Labelled entries per task in a batch: the denominators of :class:`MultiTaskLoss`'s means."""
    counts = {}
    for task in ("detection", "pose", "gender", "visibility"):
        key = f"{task}_mask"
        if key in targets:
            counts[task] = targets[key].sum()
    if "landmarks_mask" in targets:
        own = targets["landmarks_mask"].bool()
        n = 2 * own.sum()
        if "landmarks5_mask" in targets and criterion._to_five is not None:
            n = n + 2 * (targets["landmarks5_mask"].bool() & ~own.any(-1, keepdim=True)).sum()
        counts["landmarks"] = n
    return counts


def combine_total(criterion: MultiTaskLoss, means: Mapping[str, float]) -> float:
    """The loss total from per-task means, as the criterion combines batch terms."""
    total = 0.0
    for task in criterion.tasks:
        value = means.get(task, 0.0)
        if criterion.learn_weights:
            s = criterion.log_vars[task].detach().item()
            total += math.exp(-s) * value + s
        else:
            total += criterion.weights[task] * value
    return total


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def train_one_epoch(step_module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    loader: Iterable[dict[str, Tensor]], *, model_config: ModelConfig, criterion: MultiTaskLoss,
                    device: torch.device, meter: Meter, step: int, amp_dtype: torch.dtype | None = None,
                    scaler: torch.amp.GradScaler | None = None, grad_clip: float = 0.0,
                    on_step: Callable[[int, dict[str, float], dict[str, Tensor]], bool] | None = None,
                    progress: tqdm | None = None) -> tuple[int, bool]:
    """Train over ``loader`` once; returns ``(step, stopped)``.

    ``step_module`` is a :class:`TrainStep` (or its DDP wrapper) already in train mode. Each term is
    added to ``meter`` (``loss_<task>``, ``loss_total``, ``data_time``, ``step_time``, ``samples``).
    ``on_step(step, losses, batch)`` runs after every optimiser step; returning True stops early.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    t_end = time.perf_counter()
    stopped = False
    for batch in loader:
        t_data = time.perf_counter()
        images, targets = split_batch(batch, model_config, device)
        with _autocast(device, amp_dtype):
            losses = step_module(images, targets)
        total = losses["total"]
        if not torch.isfinite(total):
            terms = {k: v.detach().item() for k, v in losses.items()}
            raise FloatingPointError(f"non-finite loss at step {step + 1}: {terms}; lower optim.lr or "
                                     f"enable optim.grad_clip")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(total).backward()
            if grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            total.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1

        n = int(batch["image"].shape[0])
        counts = label_counts(targets, criterion)
        values = {k: v.detach().item() for k, v in losses.items()}
        meter.add("loss_total", values["total"] * n, n)
        for task in TASKS:
            if task in losses and task in counts:
                c = float(counts[task])
                meter.add(f"loss_{task}", values[task] * c, c)
        t_now = time.perf_counter()
        meter.add("data_time", t_data - t_end)
        meter.add("step_time", t_now - t_end)
        meter.add("samples", float(n))
        t_end = t_now
        if progress is not None:
            progress.update(1)
            progress.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
        if on_step is not None and on_step(step, values, batch):
            stopped = True
            break
    return step, stopped


def landmark_nme(pred: Tensor, targets: Mapping[str, Tensor], point_set: str | None) -> dict[str, tuple[Tensor, Tensor]]:
    """Per-face NME and validity: ``{"68": (nme, valid), "5": (nme, valid)}`` for what can be measured.

    68 points: mean error over labelled points / ``||g36 - g45||``. 5 points (faces labelled with
    the 5-point set only, or a 5-point model): mean error / distance between the eye centres; a
    68- or 21-point prediction is converted to 5 points first. Coordinates are candidate-relative,
    i.e. in units of the (square) crop.
    """
    out: dict[str, tuple[Tensor, Tensor]] = {}
    pred = pred.float()
    own_any = torch.zeros(pred.shape[0], dtype=torch.bool, device=pred.device)
    if "landmarks" in targets and "landmarks_mask" in targets:
        g, m = targets["landmarks"].float(), targets["landmarks_mask"].bool()
        own_any = m.any(-1)
        if point_set == "ibug68":
            out["68"] = _nme(pred, g, m, 36, 45)
        elif point_set == "five":
            out["5"] = _nme(pred, g, m, 0, 1)
    if point_set in ("ibug68", "aflw21") and "landmarks5" in targets and "landmarks5_mask" in targets:
        w = torch.as_tensor(convert_matrix(point_set, "five")[0], dtype=pred.dtype, device=pred.device)
        pred5 = torch.einsum("mn,bnc->bmc", w, pred)
        nme, valid = _nme(pred5, targets["landmarks5"].float(), targets["landmarks5_mask"].bool(), 0, 1)
        out["5"] = (nme, valid & ~own_any)
    return out


def _nme(pred: Tensor, gt: Tensor, mask: Tensor, i: int, j: int) -> tuple[Tensor, Tensor]:
    err = torch.linalg.vector_norm(pred - gt, dim=-1)  # (B, N)
    n = mask.sum(-1)
    mean_err = torch.where(mask, err, torch.zeros_like(err)).sum(-1) / n.clamp(min=1)
    norm = torch.linalg.vector_norm(gt[:, i] - gt[:, j], dim=-1)
    valid = mask[:, i] & mask[:, j] & (n > 0) & (norm > 1e-6)
    return mean_err / norm.clamp(min=1e-6), valid


@torch.no_grad()
def evaluate(model: nn.Module, criterion: MultiTaskLoss, loader: Iterable[dict[str, Tensor]], *,
             device: torch.device, amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Validation losses and metrics over ``loader`` (all-reduced over processes).

    Keys: ``loss_<task>`` for every task the model outputs and the data labels, ``loss_total``
    (from the optimised tasks' means), ``nme68``/``auc68``/``acc68@T``/``faces68`` (and ``...5``),
    ``detection_acc``, ``gender_acc``, ``pose_mae`` (degrees, mean of the three angles), ``samples``.
    """
    was_training = model.training
    model.eval()
    config: ModelConfig = model.config
    meter = Meter()
    for batch in loader:
        images, targets = split_batch(batch, config, device)
        with _autocast(device, amp_dtype):
            outputs = model(images)
        outputs = {k: v.float() for k, v in outputs.items()}
        losses = criterion(outputs, targets)
        counts = label_counts(targets, criterion)
        for task in TASKS:
            if task in losses and task in counts:
                meter.add(f"loss_{task}", losses[task] * counts[task], counts[task])
        meter.add("samples", float(images.shape[0]))
        if "landmarks" in outputs:
            for kind, (nme, valid) in landmark_nme(outputs["landmarks"], targets, config.point_set).items():
                nme = nme[valid]
                k = float(valid.sum())
                if k == 0:
                    continue
                meter.add(f"nme{kind}", nme.sum(), k)
                limit = AUC_LIMITS[kind]
                meter.add(f"auc{kind}", (1.0 - nme / limit).clamp(min=0).sum(), k)
                for t in NME_THRESHOLDS:
                    meter.add(f"acc{kind}@{t:.2f}", (nme <= t).sum(), k)
                meter.add(f"faces{kind}", k, 1.0)
        for task in ("detection", "gender"):
            if task in outputs and f"{task}_mask" in targets:
                m = targets[f"{task}_mask"].bool()
                correct = (outputs[task].argmax(-1) == targets[task]) & m
                meter.add(f"{task}_acc", correct.sum(), m.sum())
        if "pose" in outputs and "pose_mask" in targets:
            m = targets["pose_mask"].bool()
            diff = torch.rad2deg(outputs["pose"]) - targets["pose"].float()
            err = torch.remainder(diff.abs(), 360.0)
            err = torch.minimum(err, 360.0 - err).mean(-1)
            meter.add("pose_mae", err[m].sum(), m.sum())
    meter.all_reduce(device)
    result = meter.means()
    # counts, not means, for these
    result["samples"] = float(meter.sums.get("samples", 0.0))
    for kind in ("68", "5"):
        if f"faces{kind}" in meter.sums:
            result[f"faces{kind}"] = float(meter.sums[f"faces{kind}"])
    task_means = {t: result[f"loss_{t}"] for t in TASKS if f"loss_{t}" in result}
    if any(t in task_means for t in criterion.tasks):
        result["loss_total"] = combine_total(criterion, task_means)
    model.train(was_training)
    return result
