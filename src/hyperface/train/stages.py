"""The training recipe: stage one (face/non-face classifier), stage two (HyperFace), one loop for both.

A run folder ``RUN_DIR`` (``run.out_dir/run.name``) holds ``config.yaml`` (the resolved config),
the main stage's files at its top (``best.safetensors``, ``last.safetensors``, ``checkpoints/``,
``metrics.csv``, ``steps.csv``, ``tb/``, ``done.json``) and, when stage one runs, the same set in
``RUN_DIR/stage1/``. A stage with ``done.json`` is finished; one with a checkpoint continues from
the newest complete one (``--resume``), exactly: same weights, optimiser, schedule, data order,
augmentation and RNG states as if it had never stopped (:mod:`hyperface.train.checkpoint`).

Here the config becomes stages (:class:`~hyperface.train.build.StageSpec`, whole config sections);
:mod:`hyperface.train.build` builds a stage and :mod:`hyperface.train.runner` trains it.

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

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hyperface.models import HyperFaceModel, create_model, load_model
from hyperface.models.grow import grow_into
from hyperface.models.registry import create_model_from_config
from hyperface.tasks import validate_tasks
from hyperface.train import distributed as D
from hyperface.train.build import (
    StageSpec, build_optimizer, build_scheduler, freeze_parameters, init_from_stage_one, set_train_mode,
)
from hyperface.train.config import ConfigError, LossConfig, ModelSection, TrainConfig, save_config
from hyperface.train.data import select_indices
from hyperface.train.engine import StepInterrupted
from hyperface.train.runner import OnBatch, StageRunner

__all__ = [
    "train",
    "run_dir_for",
    "freeze_parameters",
    "set_train_mode",
    "build_optimizer",
    "build_scheduler",
    "init_from_stage_one",
    "init_from_weights",
    "StepInterrupted",
    "STAGE1_DIR",
]

log = logging.getLogger("hyperface.train")

STAGE1_DIR = "stage1"


# -- data ------------------------------------------------------------------------------------------

def _prepared(roots: list[str], split: str):
    from hyperface.data.shards import PreparedDataset

    return PreparedDataset(roots, split=None if split == "all" else split)


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
        scale = (np.asarray(d.train_weights, dtype=np.float64)[base.folders()]
                 if is_train and d.train_weights else None)
        parts.append((base, select_indices(base, positives_only=d.positives_only and is_train, max_samples=limit,
                                           oversample=d.oversample if is_train else None, scale=scale)))
    return [(ds, idx) for ds, idx in parts if len(idx)]


# -- the stages ------------------------------------------------------------------------------------

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


def _stage_one(cfg: TrainConfig, run_dir: Path, num_points: int, point_set: str | None) -> StageSpec:
    """Stage one as a stage: detection alone, its own model section and optimiser, the default loss."""
    s1 = cfg.stage1
    same = s1.arch == cfg.model.arch
    model = ModelSection(arch=s1.arch, tasks=["detection"], pretrained_trunk=s1.pretrained_trunk,
                         arch_kwargs=dict(s1.arch_kwargs or (cfg.model.arch_kwargs if same else {})), freeze=[])

    def build() -> HyperFaceModel:
        if s1.arch != "rcnn-face" and not same:
            raise ConfigError(f"stage1.arch {s1.arch!r}: use rcnn-face or the main model's arch {cfg.model.arch!r}")
        return create_model(model.arch, tasks=tuple(model.tasks), num_points=num_points, point_set=point_set,
                            pretrained_trunk=model.pretrained_trunk or None, **model.arch_kwargs)

    return StageSpec("stage1", run_dir / STAGE1_DIR, model, LossConfig(optimise=["detection"]),
                     s1.optim, build, _parts(cfg, "train", stage_one=True), _parts(cfg, "val", stage_one=True))


def _main_stage(cfg: TrainConfig, run_dir: Path, num_points: int, point_set: str | None,
                stage_one: Path | None) -> StageSpec:
    m = cfg.model

    def build() -> HyperFaceModel:
        if m.init:
            return init_from_weights(m.init, arch=m.arch, tasks=m.tasks, num_points=num_points,
                                     arch_kwargs=m.arch_kwargs).train()
        try:
            model = create_model(m.arch, tasks=tuple(m.tasks), num_points=num_points, point_set=point_set,
                                 pretrained_trunk=m.pretrained_trunk or None, **m.arch_kwargs)
        except ValueError as exc:  # an unknown arch_kwargs key or value: the user's config, not a bug
            raise ConfigError(f"model (arch {m.arch!r}, arch_kwargs {m.arch_kwargs}): {exc}") from None
        if stage_one is not None:
            init_from_stage_one(model, stage_one)
        return model

    loss = dataclasses.replace(cfg.loss, optimise=list(cfg.optimised_tasks))
    return StageSpec("main", run_dir, m, loss, cfg.optim, build, _parts(cfg, "train", stage_one=False),
                     _parts(cfg, "val", stage_one=False))


def init_from_weights(path: str | Path, *, arch: str, tasks: Sequence[str], num_points: int,
                      arch_kwargs: dict | None = None) -> HyperFaceModel:
    """The model of weights file ``path`` to continue training, with the heads of ``tasks``.

    The architecture and point count must be the file's. Tasks the file lacks get fresh heads on the
    trained trunk (e.g. a visibility branch added to a trained network); tasks the config drops lose
    their heads. ``arch_kwargs`` that differ from the file's must be among the architecture's
    ``grow_kwargs`` (the network is rebuilt wider and starts with the file's answers,
    :func:`hyperface.models.grow.grow_into`) or ``reframe_kwargs`` (e.g. stage two's window ``context``:
    the same tensors on another view, to be trained on). Anything else is a :class:`ConfigError` naming
    the file.
    """
    model = load_model(path)
    c = model.config
    if c.arch != arch or c.num_points != num_points:
        raise ConfigError(f"model.init {path}: the file holds {c.arch} with {c.num_points} points; the config "
                          f"asks for {arch} with {num_points} points")
    changed = {k: v for k, v in (arch_kwargs or {}).items() if c.arch_kwargs.get(k) != v}
    changeable = (*model.grow_kwargs, *model.reframe_kwargs)
    fixed = sorted(set(changed) - set(changeable))
    if fixed:
        raise ConfigError(f"model.init {path}: model.arch_kwargs {fixed} differ from the file's "
                          f"({ {k: c.arch_kwargs.get(k) for k in fixed} }) and cannot change in a trained network; "
                          f"those that can: {list(changeable) or 'none'}")
    if set(c.tasks) == set(tasks) and not changed:
        return model
    trained = model.state_dict()
    try:
        fresh = create_model_from_config(dataclasses.replace(c, tasks=validate_tasks(tasks),
                                                             arch_kwargs={**c.arch_kwargs, **changed}))
        grown = grow_into(fresh, trained, f"model.init {path}")
    except ValueError as exc:  # a width that shrinks, or a value the architecture refuses
        raise ConfigError(f"model.init {path} with model.arch_kwargs {changed}: {exc}") from None
    missing = [k for k in fresh.state_dict() if k not in trained]
    new = [t for t in tasks if t not in c.tasks]
    dropped = [t for t in c.tasks if t not in tasks]
    reframed = sorted(set(changed) & set(model.reframe_kwargs))
    answers = f"other answers: {reframed} changed" if reframed else "the same answers"
    log.info("model.init %s: tasks %s start with fresh heads (%d tensors)%s%s", path, new, len(missing),
             f"; dropped {dropped}" if dropped else "",
             f"; arch_kwargs {changed} ({len(grown)} tensors grown, {answers})" if changed else "")
    return fresh


# -- the run ---------------------------------------------------------------------------------------

def _temporary(path: Path) -> bool:
    """A file or folder a killed atomic write left (hyperface.fileio's ``.NAME.HEX.tmp[.EXT]``)."""
    return path.name.startswith(".") and ".tmp" in path.name


def _start(cfg: TrainConfig, resume: Path | str | None, info: D.DistInfo) -> Path:
    """The run folder, created with its config.yaml (a fresh run into a used folder is refused)."""
    run_dir = Path(resume) if resume is not None else run_dir_for(cfg)
    if resume is None and run_dir.exists() and any(not _temporary(p) for p in run_dir.iterdir()):
        raise FileExistsError(f"{run_dir} already exists: continue it with --resume {run_dir}, or choose "
                              f"another run.name / run.out_dir")
    D.barrier()
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    D.barrier()
    return run_dir


def train(cfg: TrainConfig, *, resume: Path | str | None = None, on_batch: OnBatch | None = None) -> Path | None:
    """Run (or, with ``resume=RUN_DIR``, continue) the recipe ``cfg``; returns the main stage's best
    weights, or None when ``run.max_steps`` stopped it first.

    Under ``torchrun`` every process calls this; the main process writes the files. ``on_batch``
    (stage name, batch) is called after each optimiser step (for instrumentation and tests). Ctrl-C
    saves a checkpoint at the current step and raises :class:`StepInterrupted` (a KeyboardInterrupt).
    The determinism flags, thread count and RNG states it sets are restored when it returns.
    """
    cfg.validate()
    info = D.setup(cfg.run.device)
    started_group = info.distributed
    try:
        with D.global_state_restored():
            D.configure_determinism(cfg.run.deterministic, info.device)
            run_dir = _start(cfg, resume, info)
            num_points, point_set = _data_geometry(cfg)
            stage_one: Path | None = None
            if cfg.stage1.enabled:
                if cfg.stage1.init:
                    stage_one = Path(cfg.stage1.init)
                    if not stage_one.is_file():
                        raise ConfigError(f"stage1.init {stage_one}: weights file not found")
                else:
                    stage_one = StageRunner(_stage_one(cfg, run_dir, num_points, point_set), cfg, info, on_batch).run()
                    if stage_one is None:
                        return None
            return StageRunner(_main_stage(cfg, run_dir, num_points, point_set, stage_one), cfg, info, on_batch).run()
    finally:
        if started_group:
            D.teardown()
