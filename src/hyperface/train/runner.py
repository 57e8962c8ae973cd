"""Training one stage to its end: resume, one epoch at a time, pick the best epoch, save.

:class:`StageRunner` holds a stage's position (epoch, batch in the epoch, step, best so far) as
attributes, so each part is a method of its own: :meth:`~StageRunner.resume` restores a checkpoint,
:meth:`~StageRunner.run_epoch` trains and validates one epoch, :meth:`~StageRunner.pick_best` keeps
the best weights, :meth:`~StageRunner.save` writes a checkpoint and :meth:`~StageRunner.finish`
marks the stage done. Ctrl-C saves a checkpoint at the step boundary it is taken at and re-raises
(:class:`~hyperface.train.engine.StepInterrupted`, with ``saved`` set), so ``--resume`` continues
exactly from there.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from hyperface import fileio
from hyperface.evaluate.metrics import NME_LIMITS
from hyperface.train import distributed as D
from hyperface.train.build import StageParts, StageSpec, build_stage, set_train_mode
from hyperface.train.checkpoint import (
    Checkpoint, find_checkpoint, restore_weights, rng_state, save_best, save_checkpoint, set_rng_state,
)
from hyperface.train.config import ConfigError, TrainConfig, config_to_dict
from hyperface.train.engine import Meter, StepInterrupted, evaluate, landmark_metric, train_one_epoch
from hyperface.train.logs import RunLog
from hyperface.train.snapshots import pick_faces, take_snapshot, write_snapshot

__all__ = ["StageRunner", "OnBatch"]

log = logging.getLogger("hyperface.train")

OnBatch = Callable[[str, dict[str, torch.Tensor]], None]


def _resolve_best(name: str, row: dict[str, Any]) -> tuple[str, str]:
    """The column to pick the best epoch by, and "min" or "max"."""
    if name == "auto":
        nmes = [f"val_{landmark_metric('nme', point_set)}" for point_set in NME_LIMITS]  # val_nme68, val_nme5
        for candidate in (*nmes, "val_loss_total", "train_loss_total"):
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


class StageRunner:
    """One stage of a run, trained to its end or to ``run.max_steps``."""

    def __init__(self, spec: StageSpec, cfg: TrainConfig, info: D.DistInfo, on_batch: OnBatch | None = None) -> None:
        self.spec, self.cfg, self.info, self.on_batch = spec, cfg, info, on_batch
        self.epoch, self.batch_in_epoch, self.step, self.position = 0, 0, 0, 0
        self.best: dict[str, Any] | None = None
        self.meter_state: dict = {}
        self.parts: StageParts | None = None
        self.runlog: RunLog | None = None
        self.snapshot_faces: list[int] | None = None  # validation faces drawn at every epoch (main process)

    # -- the whole stage ---------------------------------------------------------------------------

    def run(self) -> Path | None:
        """Train to the end (returns the best weights) or to ``run.max_steps`` (returns None)."""
        spec, r, info = self.spec, self.cfg.run, self.info
        done = spec.folder / "done.json"
        if done.is_file():
            log.info("%s: already finished (%s)", spec.name, done)
            return spec.folder / json.loads(done.read_text())["weights"]
        checkpoint = find_checkpoint(spec.folder)
        D.seed_everything(r.seed)
        self.parts = build_stage(spec, self.cfg, info, checkpoint)
        if checkpoint is not None:
            self.resume(checkpoint)
        else:
            torch.manual_seed(r.seed + info.rank)  # dropout differs between processes
        if info.is_main:
            self.runlog = RunLog(spec.folder, tensorboard=r.tensorboard,
                                 resume_step=self.step if checkpoint is not None else None)
        if info.is_main and checkpoint is None:
            self._log_start()
        try:
            while self.epoch < spec.optim.epochs:
                if not self.run_epoch():
                    return None
            return self.finish()
        finally:
            if self.runlog is not None:
                self.runlog.close()

    def _log_start(self) -> None:
        p, spec = self.parts, self.spec
        log.info("%s: %s, %d training samples (%d steps of %d per epoch on %d process(es)), %d validation; "
                 "optimising %s%s", spec.name, p.model.config.arch, len(p.loader.dataset), p.steps_per_epoch,
                 spec.optim.batch_size, self.info.world_size, len(p.val_loader.dataset) if p.val_loader else 0,
                 spec.loss.optimise, f"; frozen: {len(p.frozen)} tensors" if p.frozen else "")

    # -- the parts -------------------------------------------------------------------------------

    def resume(self, checkpoint: Checkpoint) -> None:
        """Weights, optimiser, schedule, scaler, loss weights, position, best and RNG states."""
        p, info, state = self.parts, self.info, checkpoint.state
        restore_weights(checkpoint, p.model, map_location=info.device)
        p.optimizer.load_state_dict(state["optimizer"])
        p.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and p.scaler.is_enabled():  # empty when saved without float16 AMP
            p.scaler.load_state_dict(state["scaler"])
        p.criterion.load_state_dict(state["criterion"])
        self.epoch, self.batch_in_epoch = state["epoch"], state["batch_in_epoch"]
        self.step, self.best = state["step"], state["best"]
        per_rank = state["per_rank"]
        if len(per_rank) == info.world_size:
            set_rng_state(per_rank[info.rank]["rng"])
            self.meter_state = per_rank[info.rank]["meter"]
        else:
            log.warning("%s: resuming on %d processes, saved on %d: RNG states reseeded", self.spec.name,
                        info.world_size, len(per_rank))
            torch.manual_seed(self.cfg.run.seed + 1000 * self.step + info.rank)
        log.info("%s: resuming at epoch %d, step %d from %s", self.spec.name, self.epoch + 1, self.step,
                 checkpoint.weights.parent)

    def run_epoch(self) -> bool:
        """Train (from the saved position) and validate one epoch; False when ``run.max_steps`` stopped it."""
        p, spec, r = self.parts, self.spec, self.cfg.run
        t0 = time.perf_counter()
        p.sampler.set_epoch(self.epoch)
        p.sampler.set_start(self.batch_in_epoch * spec.optim.batch_size)
        p.loader.generator.manual_seed(r.seed * 1_000_003 + self.epoch)
        meter = Meter(self.meter_state)
        self.meter_state = {}
        self.position = self.batch_in_epoch
        set_train_mode(p.step_module)
        bar = (tqdm(total=p.steps_per_epoch, initial=self.batch_in_epoch, leave=False, dynamic_ncols=True,
                    desc=f"{spec.name} {self.epoch + 1}/{spec.optim.epochs}")
               if self.info.is_main and r.progress else None)
        try:
            self.step, stopped = train_one_epoch(
                p.step_module, p.optimizer, p.scheduler, p.loader, model_config=p.model.config,
                device=self.info.device, meter=meter, step=self.step, amp_dtype=p.amp_dtype, scaler=p.scaler,
                grad_clip=spec.optim.grad_clip, on_step=partial(self._on_step, meter), progress=bar)
        except StepInterrupted as exc:
            self._interrupted(exc, meter)
            raise
        finally:
            if bar is not None:
                bar.close()
        if stopped:
            log.info("%s: stopped at step %d (run.max_steps); continue with --resume %s", spec.name, self.step,
                     self.resume_dir)
            return False
        row, evaluated = self._epoch_row(meter, t0)
        metric, value = self.pick_best(row, evaluated)
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.runlog is not None:  # the row first: a crash before the checkpoint redoes this epoch
            self.runlog.epoch(row)
        self.save(self.epoch, 0, Meter())
        if self.runlog is not None:
            shown = {k.removeprefix("train_loss_"): v for k, v in row.items() if k.startswith("train_loss_")}
            log.info("%s epoch %d/%d: train %s | %s=%s | %.1fs", spec.name, self.epoch, spec.optim.epochs,
                     " ".join(f"{k} {v:.4g}" for k, v in shown.items()), metric,
                     f"{value:.4g}" if value is not None else "-", row["epoch_time_s"])
        return True

    @property
    def resume_dir(self) -> Path:
        """The folder to give ``--resume``: the run folder (stage one's is inside it)."""
        return self.spec.folder if self.spec.name == "main" else self.spec.folder.parent

    def _on_step(self, meter: Meter, step: int, losses: dict[str, float], batch: dict[str, torch.Tensor]) -> bool:
        """After each optimiser step: position, step log, the caller's hook, checkpoints; True stops."""
        r = self.cfg.run
        self.position += 1
        self.step = step
        if self.runlog is not None and step % r.log_every == 0:
            row = {"step": step, "epoch": self.epoch + 1, "lr": self.parts.optimizer.param_groups[0]["lr"]}
            row.update({f"loss_{k}": v for k, v in losses.items()})
            self.runlog.step(row)
        if self.on_batch is not None:
            self.on_batch(self.spec.name, batch)
        stop = bool(r.max_steps) and step >= r.max_steps
        if stop or (r.save_every and step % r.save_every == 0 and self.position < self.parts.steps_per_epoch):
            self.save(self.epoch, self.position, meter)
        return stop

    def _interrupted(self, exc: StepInterrupted, meter: Meter) -> None:
        """Ctrl-C at a step boundary: save there (one process only; under torchrun the processes
        stop at different steps, and the last complete checkpoint stands)."""
        if self.info.distributed:
            log.warning("%s: interrupted; continue from the last complete checkpoint with --resume %s",
                        self.spec.name, self.resume_dir)
            return
        self.save(self.epoch, self.position, meter)
        exc.saved = True
        log.info("%s: interrupted at step %d, checkpoint saved; continue with --resume %s", self.spec.name,
                 self.step, self.resume_dir)

    def _epoch_row(self, meter: Meter, t0: float) -> tuple[dict[str, Any], bool]:
        """The epoch's metrics.csv row (training means, validation, timing) and whether it was validated."""
        p, info, r = self.parts, self.info, self.cfg.run
        train_time = time.perf_counter() - t0
        if info.distributed:  # BatchNorm statistics as rank 0 has them, as DDP's next forward would
            for buffer in p.model.buffers():
                dist.broadcast(buffer, 0)
        meter.all_reduce(info.device)
        row: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step, "lr": p.optimizer.param_groups[0]["lr"]}
        row.update({f"train_{k}": v for k, v in meter.means().items() if k.startswith("loss_")})
        last_epoch = self.epoch + 1 == self.spec.optim.epochs
        evaluated = p.val_loader is None
        if p.val_loader is not None and ((self.epoch + 1) % r.eval_every == 0 or last_epoch):
            metrics = evaluate(p.model, p.criterion, p.val_loader, device=info.device, amp_dtype=p.val_amp_dtype)
            row.update({f"val_{k}": v for k, v in metrics.items()})
            evaluated = True
            if info.is_main and "landmarks" in p.model.config.tasks:
                self._snapshot()
        if self.spec.loss.learn_weights:
            row.update({f"logvar_{t}": v.detach().item() for t, v in p.criterion.log_vars.items()})
        samples = float(meter.sums.get("samples", 0.0))
        step_time = float(meter.sums.get("step_time", 0.0))
        row["train_time_s"] = train_time
        row["epoch_time_s"] = time.perf_counter() - t0
        row["samples_per_s"] = samples / step_time if step_time > 0 else float("nan")
        row["data_wait_share"] = float(meter.sums.get("data_time", 0.0)) / step_time if step_time > 0 else 0.0
        return row, evaluated

    def _snapshot(self) -> None:
        """Predict the fixed validation faces for the study's landmarks-over-training picture."""
        dataset = self.parts.val_loader.dataset
        if self.snapshot_faces is None:
            self.snapshot_faces = pick_faces(dataset)
        if self.snapshot_faces:
            write_snapshot(self.spec.folder, take_snapshot(self.parts.model, dataset, self.snapshot_faces,
                                                           self.epoch + 1, device=self.info.device))

    def pick_best(self, row: dict[str, Any], evaluated: bool) -> tuple[str, float | None]:
        """Keep this epoch's weights as ``best.safetensors`` when its metric improved; returns the
        metric's name and value."""
        metric, mode = _resolve_best(self.cfg.run.best_metric, row) if evaluated else ("", "min")
        value = row.get(metric)
        best = self.best
        improved = evaluated and value is not None and (best is None or best["metric"] != metric or
                                                        (value < best["value"] if mode == "min" else
                                                         value > best["value"]))
        if improved:
            self.best = {"metric": metric, "value": float(value), "epoch": self.epoch + 1, "step": self.step}
            if self.info.is_main:
                save_best(self.spec.folder, self.parts.model,
                          {"run": self.cfg.run.name, "stage": self.spec.name, "epoch": self.epoch + 1,
                           "step": self.step, metric: float(value)})
        return metric, value

    def save(self, epoch: int, batch_in_epoch: int, meter: Meter) -> None:
        """A checkpoint of the current step (every process's RNG and meter; files by the main one)."""
        p, info = self.parts, self.info
        per_rank = _gather({"rng": rng_state(), "meter": meter.state()}, info)
        if info.is_main:
            state = {"optimizer": p.optimizer.state_dict(), "scheduler": p.scheduler.state_dict(),
                     "scaler": p.scaler.state_dict(), "criterion": p.criterion.state_dict(), "epoch": epoch,
                     "batch_in_epoch": batch_in_epoch, "step": self.step, "best": self.best,
                     "per_rank": per_rank, "config": config_to_dict(self.cfg)}
            save_checkpoint(self.spec.folder, p.model, state,
                            {"run": self.cfg.run.name, "stage": self.spec.name, "epoch": epoch, "step": self.step})

    def finish(self) -> Path:
        """Mark the stage done (``done.json``); returns its best weights."""
        if self.info.is_main:
            fileio.write_json(self.spec.folder / "done.json",
                              {"weights": "best.safetensors", "best": self.best, "epochs": self.spec.optim.epochs,
                               "step": self.step})
        D.barrier()
        return self.spec.folder / "best.safetensors"
