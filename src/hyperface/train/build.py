"""Building a training stage: its model, loss, data loaders, optimiser, schedule and step module.

A stage is described by a :class:`StageSpec` holding whole config sections (the model section, the
loss section, the optimiser section) plus the stage's data; :func:`build_stage` turns it into the
:class:`StageParts` that :class:`hyperface.train.runner.StageRunner` trains. Also the model surgery
the recipe needs (freezing, initialising from stage one) and the optimiser and schedule factories,
which the candidate networks' training uses too.
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hyperface.models import HyperFaceModel, create_model_from_config, init_trunk_from_rcnn, read_config
from hyperface.models.weights import copy_tensors, read_state_dict
from hyperface.train import distributed as D
from hyperface.train.augment import makes_visibility_labels
from hyperface.train.checkpoint import Checkpoint
from hyperface.train.config import ConfigError, LossConfig, ModelSection, OptimConfig, TrainConfig
from hyperface.train.data import EpochSampler, TrainingSet, make_loader
from hyperface.train.engine import TrainStep
from hyperface.train.loss import MultiTaskLoss

__all__ = [
    "StageSpec",
    "StageParts",
    "build_stage",
    "freeze_parameters",
    "set_train_mode",
    "init_from_stage_one",
    "build_optimizer",
    "build_scheduler",
]

log = logging.getLogger("hyperface.train")


# -- model surgery ---------------------------------------------------------------------------------

def freeze_parameters(model: nn.Module, patterns: list[str]) -> list[str]:
    """Stop gradients to parameters whose names match any fnmatch ``pattern`` (a bare module name
    such as ``trunk`` matches everything under it). Returns the frozen names; a pattern that
    matches nothing is a :class:`ConfigError` listing the model's top-level modules."""
    names = [n for n, _ in model.named_parameters()]
    frozen: set[str] = set()
    for pattern in patterns:
        matched = fnmatch.filter(names, pattern) or fnmatch.filter(names, pattern.rstrip(".*") + ".*")
        if not matched:
            tops = sorted({n.split(".")[0] for n in names})
            raise ConfigError(f"model.freeze: {pattern!r} matches no parameter of "
                              f"{getattr(getattr(model, 'config', None), 'arch', type(model).__name__)}; "
                              f"top-level modules: {', '.join(tops)} (e.g. 'heads.*.pose.*', 'trunk.*')")
        frozen.update(matched)
    for n, p in model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    return sorted(frozen)


def set_train_mode(module: nn.Module) -> None:
    """Train mode, except modules whose own parameters are all frozen (their BatchNorm keeps its
    running statistics)."""
    module.train()
    for m in module.modules():
        own = list(m.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            m.eval()


def init_from_stage_one(model: HyperFaceModel, weights: str | Path) -> list[str]:
    """Initialise ``model`` from stage one's weights: AlexNet convs from ``rcnn-face``, otherwise
    every tensor outside the task heads (stage one then trained the same architecture)."""
    source = read_config(weights)
    if source.arch == "rcnn-face":
        return init_trunk_from_rcnn(model, weights)
    if source.arch != model.config.arch:
        raise ConfigError(f"{weights}: stage one trained {source.arch!r}; the main model {model.config.arch!r} "
                          f"can start only from rcnn-face or from its own architecture")
    tensors = {k: v for k, v in read_state_dict(weights).items() if not k.startswith("heads.")}
    copied = copy_tensors(model, tensors, str(weights), hint="train stage one with the main model's arch_kwargs")
    model.config.meta["trunk_init"] = f"stage one: {weights}"
    return copied


# -- optimiser and schedule ------------------------------------------------------------------------

def build_optimizer(model: nn.Module, criterion: nn.Module | None, o: OptimConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over trainable parameters; no weight decay on biases, norms and loss weights."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    extra = [p for p in criterion.parameters() if p.requires_grad] if criterion is not None else []
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0},
              {"params": extra, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ConfigError("nothing to train: every parameter is frozen (model.freeze)")
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    return torch.optim.AdamW(groups, lr=o.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, o: OptimConfig, steps_per_epoch: int):
    """Per-step LambdaLR: linear warm-up, then cosine to 0, step decay or constant."""
    total = max(1, o.epochs * steps_per_epoch)
    warm = o.warmup_steps
    every = max(1, o.step_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if o.scheduler == "cosine":
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if o.scheduler == "step":
            return o.gamma ** (step // every)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# -- a stage ---------------------------------------------------------------------------------------

@dataclass
class StageSpec:
    """What a stage trains, from whole config sections: ``model`` (its tasks and ``freeze``),
    ``loss`` (with ``optimise`` resolved), ``optim``; ``build`` makes a fresh model; ``train_parts``
    and ``val_parts`` are (dataset, indices) pairs."""

    name: str  # "stage1" or "main"
    folder: Path
    model: ModelSection
    loss: LossConfig
    optim: OptimConfig
    build: Callable[[], HyperFaceModel]
    train_parts: list = field(default_factory=list)
    val_parts: list = field(default_factory=list)


@dataclass
class StageParts:
    """Everything a stage trains with, built once."""

    model: HyperFaceModel
    criterion: MultiTaskLoss
    step_module: nn.Module  # TrainStep, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # autocast of the training steps
    val_amp_dtype: torch.dtype | None  # autocast of validation: float32 (None) on CPU
    sampler: EpochSampler
    loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    steps_per_epoch: int
    frozen: list[str]


def build_stage(spec: StageSpec, cfg: TrainConfig, info: D.DistInfo, checkpoint: Checkpoint | None) -> StageParts:
    """The model (rebuilt from the checkpoint's config when resuming), loss, loaders, optimiser,
    schedule, grad scaler and step module of a stage; the checkpoint's states are not loaded yet."""
    device = info.device
    model = create_model_from_config(read_config(checkpoint.weights)) if checkpoint else spec.build()
    model.to(device)
    if cfg.run.channels_last:  # convolutions then run (and return) NHWC, whatever the input's order
        model.to(memory_format=torch.channels_last)
    frozen = freeze_parameters(model, list(spec.model.freeze))
    mc = model.config
    l = spec.loss
    criterion = MultiTaskLoss(l.optimise, l.weights, l.learn_weights, point_set=mc.point_set,
                              landmark_loss=l.landmark_loss).to(device)
    if not spec.train_parts:
        raise ConfigError(f"{spec.name}: no training samples (check data.train, data.train_split, "
                          f"data.positives_only and stage1.negatives)")
    present = set().union(*(getattr(ds, "tasks_present", l.optimise) for ds, _ in spec.train_parts))
    if "landmarks" in present and makes_visibility_labels(cfg.augment):
        present.add("visibility")
    unlabelled = [t for t in l.optimise if t not in present]
    if unlabelled and info.is_main:
        log.warning("%s: the training data has no labels for %s: those terms stay 0", spec.name, unlabelled)
    sampler, loader, val_loader, steps_per_epoch = _loaders(spec, cfg, info, mc, model.input_context)
    optimizer = build_optimizer(model, criterion, spec.optim)
    scheduler = build_scheduler(optimizer, spec.optim, steps_per_epoch)
    r = cfg.run
    amp_dtype = val_amp_dtype = None
    if device.type == "cuda" and r.amp:
        amp_dtype = val_amp_dtype = getattr(torch, r.amp_dtype)
    elif device.type == "cpu" and r.cpu_amp:
        amp_dtype = torch.bfloat16  # validation stays float32: its numbers are the exported model's
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    step_module: nn.Module = TrainStep(model, criterion)
    if info.distributed:
        unused = set(l.optimise) != set(mc.tasks)
        step_module = DistributedDataParallel(
            step_module, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=unused)
    return StageParts(model, criterion, step_module, optimizer, scheduler, scaler, amp_dtype, val_amp_dtype,
                      sampler, loader, val_loader, steps_per_epoch, frozen)


def _loaders(spec: StageSpec, cfg: TrainConfig, info: D.DistInfo, mc, input_context: float) -> tuple:
    """Training sampler and loader, validation loader (or None) and steps per epoch; the crops show each
    box enlarged ``input_context`` times (the model's window)."""
    seed, pin = cfg.run.seed, info.device.type == "cuda"
    held = min((float(getattr(ds, "context", 1.0)) for ds, _ in (*spec.train_parts, *spec.val_parts)), default=1.0)
    if held < input_context:
        log.warning("%s: the prepared crops hold %.2f times each box, less than the model's window (%.2f times): "
                    "the network would train on black borders it does not see at inference; prepare with "
                    "--context %.2f or more", spec.name, held, input_context, input_context)
    kw = dict(input_size=mc.input_size, num_points=mc.num_points, point_set=mc.point_set, input_context=input_context)
    train_set = TrainingSet(spec.train_parts, augment=cfg.augment, seed=seed, **kw)
    sampler = EpochSampler(len(train_set), shuffle=True, seed=seed, rank=info.rank, world_size=info.world_size)
    batch = spec.optim.batch_size
    drop_last = len(sampler) >= batch
    steps_per_epoch = len(sampler) // batch if drop_last else 1
    loader = make_loader(train_set, sampler, batch_size=batch, num_workers=cfg.data.num_workers,
                         drop_last=drop_last, pin_memory=pin, seed=seed)
    val_loader = None
    if spec.val_parts:
        val_set = TrainingSet(spec.val_parts, augment=None, seed=seed, self_occlusion=cfg.augment.self_occlusion, **kw)
        val_sampler = EpochSampler(len(val_set), shuffle=False, rank=info.rank, world_size=info.world_size, pad=False)
        val_loader = make_loader(val_set, val_sampler, batch_size=cfg.data.batch_size_val or batch,
                                 num_workers=cfg.data.num_workers, drop_last=False, pin_memory=pin, seed=seed)
    else:
        log.warning("%s: no validation samples; the best checkpoint is chosen by the training loss", spec.name)
    return sampler, loader, val_loader, steps_per_epoch
