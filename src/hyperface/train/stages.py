"""The training recipe: stage one (face/non-face classifier), stage two (HyperFace), one loop for both.

A run folder ``RUN_DIR`` (``run.out_dir/run.name``) holds ``config.yaml`` (the resolved config),
the main stage's files at its top (``best.safetensors``, ``last.safetensors``, ``last.state.pt``,
``metrics.csv``, ``steps.csv``, ``tb/``, ``done.json``) and, when stage one runs, the same set in
``RUN_DIR/stage1/``. A stage with ``done.json`` is finished; one with ``last.state.pt`` continues
from it (``--resume``), exactly: same weights, optimiser, schedule, data order, augmentation and
RNG states as if it had never stopped.

Stage one trains ``stage1.arch`` on detection alone (samples with a face/non-face label; with
``stage1.negatives`` the training data's own non-faces are replaced by those folders'); its best
weights initialise the main model: the AlexNet conv layers for ``rcnn-face`` (the paper's
R-CNN_Face), or every non-head tensor when stage one trains the main architecture itself.

Control over the main stage: ``model.tasks`` (the branches), ``loss.optimise`` (the tasks whose
terms are minimised; the others are computed and logged only, the study's experiment 5),
``loss.weights`` or ``loss.learn_weights``, ``model.freeze`` (fnmatch patterns on parameter names;
frozen modules also keep their BatchNorm statistics), ``data.positives_only`` (experiment 4) and
``model.init`` (continue from a trained model).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from hyperface.models import (
    HyperFaceModel,
    create_model,
    create_model_from_config,
    init_trunk_from_rcnn,
    load_model,
    read_config,
)
from hyperface.models.weights import copy_tensors, read_state_dict
from hyperface.train import distributed as D
from hyperface.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, write_json
from hyperface.train.config import ConfigError, OptimConfig, TrainConfig, config_to_dict, save_config
from hyperface.train.data import EpochSampler, TrainingSet, make_loader, select_indices
from hyperface.train.engine import Meter, TrainStep, evaluate, train_one_epoch
from hyperface.train.logs import RunLog
from hyperface.train.loss import MultiTaskLoss

__all__ = [
    "train",
    "run_dir_for",
    "freeze_parameters",
    "set_train_mode",
    "build_optimizer",
    "build_scheduler",
    "init_from_stage_one",
    "STAGE1_DIR",
]

log = logging.getLogger("hyperface.train")

STAGE1_DIR = "stage1"
OnBatch = Callable[[str, dict[str, torch.Tensor]], None]


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

def build_optimizer(model: nn.Module, criterion: nn.Module, o: OptimConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over trainable parameters; no weight decay on biases, norms and loss weights."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0},
              {"params": [p for p in criterion.parameters() if p.requires_grad], "weight_decay": 0.0}]
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


# -- data ------------------------------------------------------------------------------------------

def _prepared(roots: list[str], split: str):
    from hyperface.data.shards import PreparedDataset

    return PreparedDataset(roots, split=None if split == "all" else split)


@dataclass
class _Stage:
    name: str  # "stage1" or "main"
    folder: Path
    optim: OptimConfig
    optimise: list[str]
    build: Callable[[], HyperFaceModel]
    train_parts: list
    val_parts: list
    freeze: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    learn_weights: bool = False
    landmark_loss: str = "l2"


def _parts(cfg: TrainConfig, split_key: str, *, stage_one: bool) -> list:
    """(dataset, indices) pairs of the training or validation data of a stage."""
    d = cfg.data
    is_train = split_key == "train"
    roots = d.train if is_train or not d.val else d.val
    split = d.train_split if is_train else d.val_split
    limit = d.max_train_samples if is_train else d.max_val_samples
    base = _prepared(roots, split)
    parts = []
    if stage_one:
        negatives = cfg.stage1.negatives
        parts.append((base, select_indices(base, detection_only=True, no_negatives=bool(negatives),
                                           max_samples=limit)))
        if negatives:
            neg = _prepared(negatives, split)
            parts.append((neg, select_indices(neg, detection_only=True, max_samples=limit)))
    else:
        parts.append((base, select_indices(base, positives_only=d.positives_only and is_train, max_samples=limit,
                                           oversample=d.oversample if is_train else None)))
    return [(ds, idx) for ds, idx in parts if len(idx)]


# -- one stage -------------------------------------------------------------------------------------

def _resolve_best(name: str, row: dict[str, Any]) -> tuple[str, str]:
    """The column to pick the best epoch by, and "min" or "max"."""
    if name == "auto":
        for candidate in ("val_nme68", "val_nme5", "val_loss_total", "train_loss_total"):
            if candidate in row:
                name = candidate
                break
    elif name not in row:
        raise ConfigError(f"run.best_metric {name!r} is not logged; columns: {', '.join(sorted(row))}")
    return name, ("max" if ("acc" in name or "auc" in name) else "min")


def _gather(obj: Any, info: D.DistInfo) -> list[Any]:
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def _run_stage(st: _Stage, cfg: TrainConfig, info: D.DistInfo, on_batch: OnBatch | None) -> Path | None:
    """Train one stage to the end (returns its best weights) or to ``run.max_steps`` (returns None)."""
    folder, device, r = st.folder, info.device, cfg.run
    done = folder / "done.json"
    if done.is_file():
        log.info("%s: already finished (%s)", st.name, done)
        return folder / json.loads(done.read_text())["weights"]
    resuming = (folder / "last.state.pt").is_file()

    D.seed_everything(r.seed)
    model = create_model_from_config(read_config(folder / "last.safetensors")) if resuming else st.build()
    model.to(device)
    frozen = freeze_parameters(model, st.freeze)
    criterion = MultiTaskLoss(st.optimise, st.weights, st.learn_weights, point_set=model.config.point_set,
                              landmark_loss=st.landmark_loss).to(device)
    step_module = TrainStep(model, criterion)
    mc = model.config

    if not st.train_parts:
        raise ConfigError(f"{st.name}: no training samples (check data.train, data.train_split, "
                          f"data.positives_only and stage1.negatives)")
    present = set().union(*(getattr(ds, "tasks_present", st.optimise) for ds, _ in st.train_parts))
    unlabelled = [t for t in st.optimise if t not in present]
    if unlabelled and info.is_main:
        log.warning("%s: the training data has no labels for %s: those terms stay 0", st.name, unlabelled)
    kw = dict(input_size=mc.input_size, num_points=mc.num_points, point_set=mc.point_set)
    train_set = TrainingSet(st.train_parts, augment=cfg.augment, seed=r.seed, **kw)
    sampler = EpochSampler(len(train_set), shuffle=True, seed=r.seed, rank=info.rank, world_size=info.world_size)
    batch = st.optim.batch_size
    drop_last = len(sampler) >= batch
    steps_per_epoch = len(sampler) // batch if drop_last else 1
    pin = device.type == "cuda"
    loader = make_loader(train_set, sampler, batch_size=batch, num_workers=cfg.data.num_workers,
                         drop_last=drop_last, pin_memory=pin, seed=r.seed)
    val_loader = None
    if st.val_parts:
        val_set = TrainingSet(st.val_parts, augment=None, seed=r.seed, **kw)
        val_sampler = EpochSampler(len(val_set), shuffle=False, rank=info.rank, world_size=info.world_size, pad=False)
        val_loader = make_loader(val_set, val_sampler, batch_size=cfg.data.batch_size_val or batch,
                                 num_workers=cfg.data.num_workers, drop_last=False, pin_memory=pin, seed=r.seed)
    else:
        log.warning("%s: no validation samples; the best checkpoint is chosen by the training loss", st.name)

    optimizer = build_optimizer(model, criterion, st.optim)
    scheduler = build_scheduler(optimizer, st.optim, steps_per_epoch)
    amp_dtype = getattr(torch, r.amp_dtype) if (r.amp and device.type == "cuda") else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if info.distributed:
        unused = set(st.optimise) != set(mc.tasks)
        wrapped: nn.Module = DistributedDataParallel(
            step_module, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=unused)
    else:
        wrapped = step_module

    epoch, batch_in_epoch, step, best = 0, 0, 0, None
    meter_state: dict = {}
    if resuming:
        state = load_checkpoint(folder, "last", model, map_location=device)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and scaler.is_enabled():  # empty when saved without float16 AMP
            scaler.load_state_dict(state["scaler"])
        criterion.load_state_dict(state["criterion"])
        epoch, batch_in_epoch, step, best = state["epoch"], state["batch_in_epoch"], state["step"], state["best"]
        per_rank = state["per_rank"]
        if len(per_rank) == info.world_size:
            set_rng_state(per_rank[info.rank]["rng"])
            meter_state = per_rank[info.rank]["meter"]
        else:
            log.warning("%s: resuming on %d processes, saved on %d: RNG states reseeded", st.name,
                        info.world_size, len(per_rank))
            torch.manual_seed(r.seed + 1000 * step + info.rank)
        log.info("%s: resuming at epoch %d, step %d from %s", st.name, epoch + 1, step, folder)
    else:
        torch.manual_seed(r.seed + info.rank)  # dropout differs between processes
    runlog = RunLog(folder, tensorboard=r.tensorboard, resume_step=step if resuming else None) if info.is_main else None
    if info.is_main and not resuming:
        log.info("%s: %s, %d training samples (%d steps of %d per epoch on %d process(es)), %d validation; "
                 "optimising %s%s", st.name, mc.arch, len(train_set), steps_per_epoch, batch, info.world_size,
                 len(val_loader.dataset) if val_loader else 0, st.optimise,
                 f"; frozen: {len(frozen)} tensors" if frozen else "")

    def checkpoint(tag_epoch: int, tag_batch: int, meter: Meter) -> None:
        per_rank = _gather({"rng": rng_state(), "meter": meter.state()}, info)
        if info.is_main:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict(), "criterion": criterion.state_dict(), "epoch": tag_epoch,
                     "batch_in_epoch": tag_batch, "step": step, "best": best, "per_rank": per_rank,
                     "config": config_to_dict(cfg)}
            save_checkpoint(folder, "last", model, state,
                            {"run": r.name, "stage": st.name, "epoch": tag_epoch, "step": step})

    try:
        while epoch < st.optim.epochs:
            t0 = time.perf_counter()
            sampler.set_epoch(epoch)
            sampler.set_start(batch_in_epoch * batch)
            loader.generator.manual_seed(r.seed * 1_000_003 + epoch)
            meter = Meter(meter_state)
            meter_state = {}
            set_train_mode(wrapped)
            bar = (tqdm(total=steps_per_epoch, initial=batch_in_epoch, desc=f"{st.name} {epoch + 1}/{st.optim.epochs}",
                        leave=False, dynamic_ncols=True) if info.is_main and r.progress else None)
            position = [batch_in_epoch]

            def on_step(step_now: int, losses: dict[str, float], b: dict[str, torch.Tensor]) -> bool:
                nonlocal step
                position[0] += 1
                step = step_now
                if on_batch is not None:
                    on_batch(st.name, b)
                if runlog is not None and step_now % r.log_every == 0:
                    row = {"step": step_now, "epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
                    row.update({f"loss_{k}": v for k, v in losses.items()})
                    runlog.step(row)
                stop = bool(r.max_steps) and step_now >= r.max_steps
                if stop or (r.save_every and step_now % r.save_every == 0 and position[0] < steps_per_epoch):
                    checkpoint(epoch, position[0], meter)
                return stop

            step, stopped = train_one_epoch(
                wrapped, optimizer, scheduler, loader, model_config=mc, criterion=criterion, device=device,
                meter=meter, step=step, amp_dtype=amp_dtype, scaler=scaler, grad_clip=st.optim.grad_clip,
                on_step=on_step, progress=bar)
            if bar is not None:
                bar.close()
            if stopped:
                log.info("%s: stopped at step %d (run.max_steps); continue with --resume %s", st.name, step,
                         folder if st.name == "main" else folder.parent)
                return None
            train_time = time.perf_counter() - t0
            if info.distributed:  # BatchNorm statistics as rank 0 has them, as DDP's next forward would
                for buffer in model.buffers():
                    dist.broadcast(buffer, 0)
            meter.all_reduce(device)
            means = meter.means()
            row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"]}
            row.update({f"train_{k}": v for k, v in means.items() if k.startswith("loss_")})
            last_epoch = epoch + 1 == st.optim.epochs
            evaluated = val_loader is None
            if val_loader is not None and ((epoch + 1) % r.eval_every == 0 or last_epoch):
                metrics = evaluate(model, criterion, val_loader, device=device, amp_dtype=amp_dtype)
                row.update({f"val_{k}": v for k, v in metrics.items()})
                evaluated = True
            if st.learn_weights:
                row.update({f"logvar_{t}": v.detach().item() for t, v in criterion.log_vars.items()})
            samples = float(meter.sums.get("samples", 0.0))
            step_time = float(meter.sums.get("step_time", 0.0))
            row["train_time_s"] = train_time
            row["epoch_time_s"] = time.perf_counter() - t0
            row["samples_per_s"] = samples / step_time if step_time > 0 else float("nan")
            row["data_wait_share"] = float(meter.sums.get("data_time", 0.0)) / step_time if step_time > 0 else 0.0

            metric, mode = _resolve_best(r.best_metric, row) if evaluated else ("", "min")
            value = row.get(metric)
            improved = evaluated and value is not None and (best is None or best["metric"] != metric or
                                              (value < best["value"] if mode == "min" else value > best["value"]))
            if improved:
                best = {"metric": metric, "value": float(value), "epoch": epoch + 1, "step": step}
                if info.is_main:
                    save_checkpoint(folder, "best", model, None,
                                    {"run": r.name, "stage": st.name, "epoch": epoch + 1, "step": step,
                                     metric: float(value)})
            epoch += 1
            batch_in_epoch = 0
            if runlog is not None:  # the row first: a crash before the checkpoint redoes this epoch
                runlog.epoch(row)
            checkpoint(epoch, 0, Meter())
            if runlog is not None:
                shown = {k.removeprefix("train_loss_"): v for k, v in row.items() if k.startswith("train_loss_")}
                log.info("%s epoch %d/%d: train %s | %s=%s | %.1fs", st.name, epoch, st.optim.epochs,
                         " ".join(f"{k} {v:.4g}" for k, v in shown.items()), metric,
                         f"{value:.4g}" if value is not None else "-", row["epoch_time_s"])
        if info.is_main:
            write_json(done, {"weights": "best.safetensors", "best": best, "epochs": st.optim.epochs, "step": step})
        D.barrier()
        return folder / "best.safetensors"
    finally:
        if runlog is not None:
            runlog.close()


# -- the run ---------------------------------------------------------------------------------------

def run_dir_for(cfg: TrainConfig) -> Path:
    """``run.out_dir / run.name``."""
    if not cfg.run.name:
        raise ConfigError("run.name is empty: set it (--set run.name=NAME) or train from a config file")
    return Path(cfg.run.out_dir) / cfg.run.name


def _data_geometry(cfg: TrainConfig) -> tuple[int, str | None]:
    ds = _prepared(cfg.data.train, cfg.data.train_split)
    if cfg.model.point_set:
        from hyperface.points import get_point_set

        return get_point_set(cfg.model.point_set).num_points, cfg.model.point_set
    return ds.num_points, ds.point_set


def _stage_one(cfg: TrainConfig, run_dir: Path, num_points: int, point_set: str | None) -> _Stage:
    s1 = cfg.stage1

    def build() -> HyperFaceModel:
        same = s1.arch == cfg.model.arch
        if s1.arch != "rcnn-face" and not same:
            raise ConfigError(f"stage1.arch {s1.arch!r}: use rcnn-face or the main model's arch {cfg.model.arch!r}")
        kwargs = dict(s1.arch_kwargs or (cfg.model.arch_kwargs if same else {}))
        return create_model(s1.arch, tasks=("detection",), num_points=num_points, point_set=point_set,
                            pretrained_trunk=s1.pretrained_trunk or None, **kwargs)

    return _Stage("stage1", run_dir / STAGE1_DIR, s1.optim, ["detection"], build,
                  _parts(cfg, "train", stage_one=True), _parts(cfg, "val", stage_one=True))


def _main_stage(cfg: TrainConfig, run_dir: Path, num_points: int, point_set: str | None,
                stage_one: Path | None) -> _Stage:
    m = cfg.model

    def build() -> HyperFaceModel:
        if m.init:
            model = load_model(m.init)
            c = model.config
            if c.arch != m.arch or set(c.tasks) != set(m.tasks) or c.num_points != num_points:
                raise ConfigError(f"model.init {m.init}: the file holds {c.arch} with tasks {list(c.tasks)} and "
                                  f"{c.num_points} points; the config asks for {m.arch} with tasks {m.tasks} and "
                                  f"{num_points} points")
            return model.train()
        model = create_model(m.arch, tasks=tuple(m.tasks), num_points=num_points, point_set=point_set,
                             pretrained_trunk=m.pretrained_trunk or None, **m.arch_kwargs)
        if stage_one is not None:
            init_from_stage_one(model, stage_one)
        return model

    return _Stage("main", run_dir, cfg.optim, cfg.optimised_tasks, build, _parts(cfg, "train", stage_one=False),
                  _parts(cfg, "val", stage_one=False), freeze=list(m.freeze), weights=dict(cfg.loss.weights),
                  learn_weights=cfg.loss.learn_weights, landmark_loss=cfg.loss.landmark_loss)


def train(cfg: TrainConfig, *, resume: Path | str | None = None, on_batch: OnBatch | None = None) -> Path | None:
    """Run (or, with ``resume=RUN_DIR``, continue) the recipe ``cfg``; returns the main stage's best
    weights, or None when ``run.max_steps`` stopped it first.

    Under ``torchrun`` every process calls this; the main process writes the files. ``on_batch``
    (stage name, batch) is called after each optimiser step (for instrumentation and tests).
    """
    cfg.validate()
    info = D.setup(cfg.run.device)
    started_group = info.distributed
    try:
        D.configure_determinism(cfg.run.deterministic, info.device)
        run_dir = Path(resume) if resume is not None else run_dir_for(cfg)
        if resume is None and run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(f"{run_dir} already exists: continue it with --resume {run_dir}, or choose "
                                  f"another run.name / run.out_dir")
        D.barrier()
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
        D.barrier()
        num_points, point_set = _data_geometry(cfg)
        stage_one: Path | None = None
        if cfg.stage1.enabled:
            if cfg.stage1.init:
                stage_one = Path(cfg.stage1.init)
                if not stage_one.is_file():
                    raise ConfigError(f"stage1.init {stage_one}: weights file not found")
            else:
                stage_one = _run_stage(_stage_one(cfg, run_dir, num_points, point_set), cfg, info, on_batch)
                if stage_one is None:
                    return None
        return _run_stage(_main_stage(cfg, run_dir, num_points, point_set, stage_one), cfg, info, on_batch)
    finally:
        if started_group:
            D.teardown()
