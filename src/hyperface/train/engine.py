"""One epoch of training and one pass of evaluation: functions, no state of their own.

Losses are dicts (``{"total": ..., task: ...}``, from :class:`~hyperface.train.loss.MultiTaskLoss`,
which also gives the label count of each term and combines epoch means into a total: the engine only
accumulates);
every term is accumulated, weighted by how many labelled entries its batch had, so an epoch's mean
is the mean over labelled entries (the same whatever the batch size or number of processes: sums
and counts are all-reduced). A non-finite loss stops training with the step and the terms.

Evaluation reports per task the validation loss, and for landmarks the normalised mean error (NME)
per face in crop terms; the share of faces under each threshold of :data:`NME_THRESHOLDS`
(``acc68@0.08`` ...), the mean NME and the area under the cumulative error curve up to the point
set's limit. Also detection and gender accuracy and the mean absolute pose error in degrees. NME,
limits, AUC and the pose error are :mod:`hyperface.evaluate.metrics`' (the numbers ``hyperface
evaluate`` reports, on the same predictions); their names in logs and checkpoints come from
:func:`landmark_metric`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from hyperface.evaluate.metrics import NME_LIMITS, auc_scores, nme_per_face, pose_errors
from hyperface.models import ModelConfig, to_input_tensor
from hyperface.points import convert_matrix, get_point_set
from hyperface.tasks import LOSS_TERMS
from hyperface.train.loss import MultiTaskLoss

__all__ = [
    "TrainStep",
    "Meter",
    "NME_THRESHOLDS",
    "landmark_metric",
    "split_batch",
    "landmark_nme",
    "StepInterrupted",
    "accumulate_losses",
    "train_one_epoch",
    "evaluate",
]

log = logging.getLogger("hyperface.train")

#: Where the cumulative error curve is sampled in logs (``acc68@0.01`` ...): 0.01 ... 0.15, every
#: limit of :data:`~hyperface.evaluate.metrics.NME_LIMITS` among them.
NME_THRESHOLDS: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 16))


def landmark_metric(name: str, point_set: str, threshold: float | None = None) -> str:
    """A landmark metric's name in logs and checkpoints: ``nme68``, ``auc5``, ``acc68@0.08``, ``faces5``.

    The suffix is the size of the ground truth's point set (``ibug68`` -> 68, ``five`` -> 5), the
    public log format; the metrics themselves are keyed by point set.
    """
    base = f"{name}{get_point_set(point_set).num_points}"
    return base if threshold is None else f"{base}@{threshold:.2f}"


class TrainStep(nn.Module):
    """Model and loss in one module, so that DDP also averages the gradients of learned loss weights."""

    def __init__(self, model: nn.Module, criterion: MultiTaskLoss) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, images: Tensor, targets: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The loss dict and the label count of each term (:meth:`MultiTaskLoss.measure`)."""
        return self.criterion.measure(self.model(images), targets)


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


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class StepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a KeyboardInterrupt raised by ``on_step``) taken at a step boundary: the model,
    optimiser, schedule, meter and the caller's ``on_step`` bookkeeping all stand after ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step = step
        self.saved = False  # set by whoever saved a checkpoint at this step


class _DeferredInterrupt:
    """While active, Ctrl-C (SIGINT) only sets :attr:`requested`, which the loop checks between
    steps, so an optimiser step is never cut in half; a second Ctrl-C interrupts at once. Installed
    only in the main thread over Python's default handler, and restored on exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredInterrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupted: stopping after this step (Ctrl-C again stops at once, without saving)")

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _optimise(total: Tensor, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler | None,
              grad_clip: float) -> None:
    """Backward pass, optional clipping, optimiser and schedule step."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
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


def accumulate_losses(meter: Meter, losses: Mapping[str, float], counts: Mapping[str, Tensor | float],
                      samples: int) -> None:
    """Add a batch's loss terms to ``meter`` as ``loss_<name>``, each weighted by its label count (the
    total by the batch size), so that epoch means are means over labelled entries."""
    meter.add("loss_total", losses["total"] * samples, samples)
    for name, count in counts.items():
        if name in losses:
            c = float(count)
            meter.add(f"loss_{name}", losses[name] * c, c)


def _batches(loader: Iterable[dict[str, Tensor]], interrupt: _DeferredInterrupt,
             step: int) -> Iterator[dict[str, Tensor]]:
    """The loader's batches; a loader that fails after Ctrl-C (its workers got the signal too) is
    the interrupt, not an error."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except RuntimeError:
            if interrupt.requested:
                raise StepInterrupted(step) from None
            raise
        yield batch


def train_one_epoch(step_module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    loader: Iterable[dict[str, Tensor]], *, model_config: ModelConfig | None = None,
                    device: torch.device, meter: Meter, step: int, amp_dtype: torch.dtype | None = None,
                    scaler: torch.amp.GradScaler | None = None, grad_clip: float = 0.0,
                    on_step: Callable[[int, dict[str, float], dict[str, Tensor]], bool] | None = None,
                    progress: tqdm | None = None,
                    prepare: Callable[[dict[str, Tensor]], tuple[Tensor, Any]] | None = None) -> tuple[int, bool]:
    """Train over ``loader`` once; returns ``(step, stopped)``.

    ``step_module`` is a :class:`TrainStep` (or its DDP wrapper, or another module with the same
    contract) already in train mode; it returns the losses and their label counts, which are added
    to ``meter`` (``loss_<name>``, ``loss_total``, ``data_time``, ``step_time``, ``samples``).
    ``prepare(batch)`` gives its inputs (default: :func:`split_batch` with ``model_config``).
    ``on_step(step, losses, batch)`` runs after every optimiser step; returning True stops early.
    Ctrl-C is taken at the next step boundary and raised as :class:`StepInterrupted`.
    """
    if prepare is None:
        if model_config is None:
            raise TypeError("train_one_epoch needs model_config or prepare")
        prepare = partial(split_batch, config=model_config, device=device)
    t_end = time.perf_counter()
    stopped = False
    with _DeferredInterrupt() as interrupt:
        for batch in _batches(loader, interrupt, step):
            t_data = time.perf_counter()
            images, targets = prepare(batch)
            with _autocast(device, amp_dtype):
                losses, counts = step_module(images, targets)
            if not torch.isfinite(losses["total"]):
                terms = {k: v.detach().item() for k, v in losses.items()}
                raise FloatingPointError(f"non-finite loss at step {step + 1}: {terms}; lower optim.lr or "
                                         f"enable optim.grad_clip")
            _optimise(losses["total"], optimizer, scheduler, scaler, grad_clip)
            step += 1
            n = int(batch["image"].shape[0])
            values = {k: v.detach().item() for k, v in losses.items()}
            accumulate_losses(meter, values, counts, n)
            t_now = time.perf_counter()
            meter.add("data_time", t_data - t_end)
            meter.add("step_time", t_now - t_end)
            meter.add("samples", float(n))
            t_end = t_now
            if progress is not None:
                progress.update(1)
                progress.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
            try:
                stopped = on_step is not None and bool(on_step(step, values, batch))
            except KeyboardInterrupt:
                raise StepInterrupted(step) from None
            if interrupt.requested:
                raise StepInterrupted(step)
            if stopped:
                break
    return step, stopped


def landmark_nme(pred: Tensor, targets: Mapping[str, Tensor], point_set: str | None) -> dict[str, tuple[Tensor, Tensor]]:
    """Per-face NME and validity by ground-truth point set: ``{"ibug68": (nme, valid), "five": ...}``.

    :func:`~hyperface.evaluate.metrics.nme_per_face` on the labelled points. Faces labelled with
    the 5-point set only are measured on the prediction converted to 5 points. Coordinates are
    candidate-relative, i.e. in units of the (square) crop.
    """
    out: dict[str, tuple[Tensor, Tensor]] = {}
    pred = pred.float()
    own_any = torch.zeros(pred.shape[0], dtype=torch.bool, device=pred.device)
    if "landmarks" in targets and "landmarks_mask" in targets:
        g, m = targets["landmarks"].float(), targets["landmarks_mask"].bool()
        own_any = m.any(-1)
        if point_set in NME_LIMITS:
            out[point_set] = nme_per_face(pred, g, point_set, m)
    if point_set in ("ibug68", "aflw21") and "landmarks5" in targets and "landmarks5_mask" in targets:
        w = torch.as_tensor(convert_matrix(point_set, "five")[0], dtype=pred.dtype, device=pred.device)
        pred5 = torch.einsum("mn,bnc->bmc", w, pred)
        nme, valid = nme_per_face(pred5, targets["landmarks5"].float(), "five", targets["landmarks5_mask"].bool())
        out["five"] = (nme, valid & ~own_any)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, criterion: MultiTaskLoss, loader: Iterable[dict[str, Tensor]], *,
             device: torch.device, amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Validation losses and metrics over ``loader`` (all-reduced over processes).

    Keys: ``loss_<task>`` for every task the model outputs and the data labels (and ``loss_pose_class``
    when that term is weighted), ``loss_total`` (from the optimised terms' means),
    ``nme68``/``auc68``/``acc68@T``/``faces68`` (and ``...5``; :func:`landmark_metric`),
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
        losses, counts = criterion.measure(outputs, targets)
        for task in LOSS_TERMS:
            if task in losses and task in counts:
                meter.add(f"loss_{task}", losses[task] * counts[task], counts[task])
        meter.add("samples", float(images.shape[0]))
        if "landmarks" in outputs:
            for point_set, (nme, valid) in landmark_nme(outputs["landmarks"], targets, config.point_set).items():
                nme = nme[valid]
                k = float(valid.sum())
                if k == 0:
                    continue
                meter.add(landmark_metric("nme", point_set), nme.sum(), k)
                meter.add(landmark_metric("auc", point_set), auc_scores(nme, NME_LIMITS[point_set]).sum(), k)
                for t in NME_THRESHOLDS:
                    meter.add(landmark_metric("acc", point_set, t), (nme <= t).sum(), k)
                meter.add(landmark_metric("faces", point_set), k, 1.0)
        for task in ("detection", "gender"):
            if task in outputs and f"{task}_mask" in targets:
                m = targets[f"{task}_mask"].bool()
                correct = (outputs[task].argmax(-1) == targets[task]) & m
                meter.add(f"{task}_acc", correct.sum(), m.sum())
        if "pose" in outputs and "pose_mask" in targets:
            m = targets["pose_mask"].bool()
            err = pose_errors(torch.rad2deg(outputs["pose"]), targets["pose"].float()).mean(-1)
            meter.add("pose_mae", err[m].sum(), m.sum())
    meter.all_reduce(device)
    result = meter.means()
    # counts, not means, for these
    result["samples"] = float(meter.sums.get("samples", 0.0))
    for point_set in NME_LIMITS:
        if (faces := landmark_metric("faces", point_set)) in meter.sums:
            result[faces] = float(meter.sums[faces])
    task_means = {t: result[f"loss_{t}"] for t in LOSS_TERMS if f"loss_{t}" in result}
    if any(t in task_means for t in criterion.tasks):
        result["loss_total"] = criterion.combine(task_means)
    model.train(was_training)
    return result
