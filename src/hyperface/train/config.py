"""Training configuration: dataclass defaults, a YAML recipe on top, ``--set key=value`` on top of that.

Layers, last wins: the defaults below; a YAML file (which may name a file it ``extends``, relative
to itself); then ``--set section.key=value`` overrides (values parsed as YAML, so ``[a, b]``,
``1e-3`` and ``true`` work: numeric text such as ``1e-3``, which YAML 1.1 reads as a string, is taken
for a number where the field is one). Unknown keys and values of the wrong type are a :class:`ConfigError`
naming the file and the key; so are an oversized file and YAML aliases that expand too far
(:mod:`hyperface.train.config_files`, the machinery under this schema).
:meth:`TrainConfig.validate` checks ranges and choices. Every run writes its fully resolved config
(``config.yaml``) into its run folder, and ``--resume`` reads it back from there.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hyperface import fileio
from hyperface.train.config_files import ConfigError, apply_overrides, build_dataclass, read_yaml
from hyperface.tasks import LANDMARK_LOSSES, SAMPLE_KINDS, TASKS, validate_loss_terms

__all__ = [
    "ConfigError",
    "RunConfig",
    "DataConfig",
    "AugmentConfig",
    "augment_config",
    "ModelSection",
    "LossConfig",
    "OptimConfig",
    "StageOneConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "save_config",
]


#: Mappings a config replaces whole rather than merging into its parent's: a recipe's loss weights and
#: model arguments are one choice, not key-by-key edits of the parent's.
WHOLE_MAPPINGS = ("weights", "arch_kwargs")


@dataclass
class RunConfig:
    """Where the run goes and how it runs."""

    name: str = ""  # run folder name under out_dir; "" = the config file's stem
    out_dir: str = "runs"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun: cuda:LOCAL_RANK)
    amp: bool = True  # mixed precision on CUDA
    amp_dtype: str = "float16"  # float16 (with a GradScaler) | bfloat16
    # bfloat16 autocast on CPU: about 1.2x the stage-two training speed where the CPU has AVX512-BF16
    # or AMX (oneDNN; docs/training.md), slower where it has neither. Weights, optimiser and
    # validation stay float32.
    cpu_amp: bool = False
    deterministic: bool = True  # deterministic algorithms (exact on CPU; slower on CUDA)
    channels_last: bool = False  # the model's weights in NHWC memory order: oneDNN's faster convolutions on CPU
    log_every: int = 10  # steps between rows of steps.csv
    save_every: int = 0  # steps between "last" checkpoints inside an epoch; 0 = at epoch ends only
    max_steps: int = 0  # stop (after saving) once this many steps of a stage are done; 0 = no limit
    eval_every: int = 1  # epochs between validations (the last epoch is always validated)
    best_metric: str = "auto"  # a metrics.csv column, e.g. val_nme68; auto = by the stage's tasks
    tensorboard: bool = True  # also log to TensorBoard when it is installed
    progress: bool = True  # tqdm progress bar


@dataclass
class DataConfig:
    """Prepared data folders (``hyperface prepare`` output) and how they are read."""

    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)  # empty = data.train's val split
    train_split: str = "train"  # train | val | all
    val_split: str = "val"  # train | val | all
    positives_only: bool = False  # drop non-face samples from training (the study's experiment 4)
    max_train_samples: int = 0  # a fixed, evenly spread subset; 0 = all
    max_val_samples: int = 0
    # Training mix by label kind (nonface, landmarks, landmarks5, pose, gender) -> draw weight; e.g.
    # {landmarks: 2, nonface: 0.2}. A sample takes the largest weight of its kinds, 1 if none is listed.
    oversample: dict[str, float] = field(default_factory=dict)
    # Draw weight of each data.train folder's samples, multiplying data.oversample's (empty: 1 each);
    # e.g. [1.0, 0.1] for annotated faces beside ten times as many pseudo-labelled ones.
    train_weights: list[float] = field(default_factory=list)
    num_workers: int = 2
    batch_size_val: int = 0  # 0 = optim.batch_size


@dataclass
class AugmentConfig:
    """Training-time augmentation; a value of 0 switches that augmentation off."""

    flip: float = 0.5  # probability of a horizontal flip
    scale: float = 0.1  # box side times uniform(1 - scale, 1 + scale)
    shift: float = 0.05  # box centre moves by uniform(-shift, shift) box sides, per axis
    rotate: float = 0.0  # content turns by uniform(-rotate, rotate) degrees (in-plane; pose follows)
    brightness: float = 0.2  # factor uniform(1 - b, 1 + b)
    contrast: float = 0.2
    saturation: float = 0.2
    # Occluders and degradations (hyperface.train.occlusion), each a probability per sample, painted on
    # the network input. An occluder drawn on a sample with landmarks labels every point's visibility
    # (0 where covered).
    mask: float = 0.0  # medical or cloth face mask over the lower nose, mouth and chin
    sunglasses: float = 0.0  # dark lenses over the eyes
    hand: float = 0.0  # a hand or an object over a random part of the face (of the crop without landmarks)
    greyscale: float = 0.0  # grey picture
    low_light: float = 0.0  # gamma 1.5..3 and gain 0.3..0.8
    blur: float = 0.0  # Gaussian (sigma 1..3% of the side) or motion blur (3..8% of the side)
    noise: float = 0.0  # Gaussian noise, sigma 4..20 grey levels
    jpeg: float = 0.0  # JPEG re-encoding at quality 5..35
    # Visibility labels from the pose label (hyperface.train.self_occlusion), in training and
    # validation: a 68-point face's point is hidden when its normal on a generic head turns more than
    # this many degrees past the silhouette (0 = off; 15 suits 300-W's outline annotation).
    self_occlusion: float = 0.0

    def validate(self) -> AugmentConfig:
        """Check ranges; raises :class:`ConfigError` naming the ``augment`` keys. Returns self."""
        errors: list[str] = []

        def need(ok: bool, msg: str) -> None:
            if not ok:
                errors.append(msg)

        _validate_augment(self, need)
        if errors:
            raise ConfigError("invalid augment options:\n  " + "\n  ".join(errors))
        return self


@dataclass
class ModelSection:
    """The network of the main stage."""

    arch: str = "hyperface-alexnet"
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    point_set: str = ""  # "" = the prepared data's point set
    init: str = ""  # weights file of a trained model to continue from ("" = fresh weights)
    pretrained_trunk: str = ""  # "imagenet" or a weights file, passed to create_model
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)  # fnmatch patterns on parameter names


@dataclass
class LossConfig:
    """Which tasks are optimised and how their terms are weighted."""

    optimise: list[str] = field(default_factory=list)  # empty = every model task; others are logged only
    weights: dict[str, float] = field(default_factory=dict)  # override the paper's 1, 5, 0.5, 5, 2
    #   and pose_class (0: off), the pose-class margin loss on MTFL's pose class (needs the pose task)
    learn_weights: bool = False  # homoscedastic uncertainty weighting (Kendall et al. 2018)
    landmark_loss: str = "l2"  # l2 (the paper's squared error) | l1 (absolute error: less pull from outliers)


@dataclass
class OptimConfig:
    """Optimiser, schedule and length of a stage."""

    epochs: int = 10
    batch_size: int = 32  # per process
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 5e-4  # for the whole batch of one process; not scaled with the number of processes
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1e-4
    scheduler: str = "cosine"  # cosine | step | constant
    warmup_steps: int = 0  # linear warm-up from 0
    step_epochs: int = 10  # step scheduler: epochs between decays
    gamma: float = 0.1  # step scheduler: decay factor
    grad_clip: float = 0.0  # max gradient norm; 0 = off


@dataclass
class StageOneConfig:
    """Stage one: the R-CNN face/non-face classifier whose trunk initialises HyperFace."""

    enabled: bool = False
    arch: str = "rcnn-face"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained_trunk: str = ""  # "imagenet" or a weights file
    init: str = ""  # weights of an already trained R-CNN: skips training stage one
    negatives: list[str] = field(default_factory=list)  # prepared folders whose samples replace
    #                                                      the training data's own non-faces
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=5))


@dataclass
class TrainConfig:
    """The whole recipe of one ``hyperface train`` run."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    stage1: StageOneConfig = field(default_factory=StageOneConfig)

    def validate(self) -> TrainConfig:
        """Check ranges, choices and cross-field rules; raises :class:`ConfigError`. Returns self."""
        errors: list[str] = []

        def need(ok: bool, msg: str) -> None:
            if not ok:
                errors.append(msg)

        r, d, a, m, lo = self.run, self.data, self.augment, self.model, self.loss
        need(r.name == "" or re.fullmatch(r"[A-Za-z0-9._-]+", r.name) is not None,
             f"run.name {r.name!r}: use letters, digits, '.', '_' and '-' only")
        need(re.fullmatch(r"auto|cpu|cuda(:\d+)?", r.device) is not None,
             f"run.device {r.device!r}: use auto, cpu, cuda or cuda:N")
        need(r.amp_dtype in ("float16", "bfloat16"), f"run.amp_dtype {r.amp_dtype!r}: use float16 or bfloat16")
        for key in ("log_every", "eval_every"):
            need(getattr(r, key) >= 1, f"run.{key} must be >= 1, got {getattr(r, key)}")
        for key in ("save_every", "max_steps"):
            need(getattr(r, key) >= 0, f"run.{key} must be >= 0, got {getattr(r, key)}")
        need(len(d.train) > 0, "data.train is empty: list the prepared data folders to train on")
        for key in ("train_split", "val_split"):
            need(getattr(d, key) in ("train", "val", "all"), f"data.{key} {getattr(d, key)!r}: use train, val or all")
        for key in ("max_train_samples", "max_val_samples", "num_workers", "batch_size_val"):
            need(getattr(d, key) >= 0, f"data.{key} must be >= 0, got {getattr(d, key)}")
        bad = [k for k in d.oversample if k not in SAMPLE_KINDS]
        need(not bad, f"data.oversample: unknown kind(s) {bad}; choose from {list(SAMPLE_KINDS)}")
        need(all(v >= 0 for v in d.oversample.values()), f"data.oversample weights must be >= 0, got {d.oversample}")
        need(not d.train_weights or len(d.train_weights) == len(d.train),
             f"data.train_weights: one weight per data.train folder ({len(d.train)}), got {d.train_weights}")
        need(all(v >= 0 for v in d.train_weights), f"data.train_weights must be >= 0, got {d.train_weights}")
        need(lo.landmark_loss in LANDMARK_LOSSES,
             f"loss.landmark_loss {lo.landmark_loss!r}: use one of {', '.join(LANDMARK_LOSSES)}")
        _validate_augment(a, need)
        bad = [t for t in m.tasks if t not in TASKS]
        need(not bad, f"model.tasks: unknown task(s) {bad}; choose from {list(TASKS)}")
        need(len(m.tasks) > 0, "model.tasks is empty: name at least one task")
        need(len(set(m.tasks)) == len(m.tasks), f"model.tasks lists a task twice: {m.tasks}")
        bad = [t for t in lo.optimise if t not in m.tasks]
        need(not bad, f"loss.optimise: {bad} not in model.tasks {m.tasks}")
        try:
            validate_loss_terms(lo.weights, m.tasks)
        except ValueError as exc:
            need(False, f"loss.weights: {exc}")
        need(all(v >= 0 for v in lo.weights.values()), f"loss.weights must be >= 0, got {lo.weights}")
        _validate_optim(self.optim, "optim", need)
        _validate_optim(self.stage1.optim, "stage1.optim", need)
        if errors:
            raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
        return self

    @property
    def optimised_tasks(self) -> list[str]:
        """The tasks whose loss terms are minimised (``loss.optimise`` or every model task)."""
        return [t for t in TASKS if t in (self.loss.optimise or self.model.tasks)]


def _validate_augment(a: AugmentConfig, need) -> None:
    need(0.0 <= a.rotate <= 90.0, f"augment.rotate must be in [0, 90] degrees, got {a.rotate}")
    need(0.0 <= a.scale < 0.5, f"augment.scale must be in [0, 0.5), got {a.scale}")
    need(0.0 <= a.shift < 0.5, f"augment.shift must be in [0, 0.5), got {a.shift}")
    for key in ("brightness", "contrast", "saturation"):
        need(0.0 <= getattr(a, key) < 1.0, f"augment.{key} must be in [0, 1), got {getattr(a, key)}")
    need(0.0 <= a.self_occlusion <= 90.0, f"augment.self_occlusion must be in [0, 90] degrees, got {a.self_occlusion}")
    for key in _AUGMENT_PROBABILITIES:
        need(0.0 <= getattr(a, key) <= 1.0, f"augment.{key} is a probability in [0, 1], got {getattr(a, key)}")


_AUGMENT_PROBABILITIES = ("flip", "mask", "sunglasses", "hand", "greyscale", "low_light", "blur", "noise", "jpeg")


def augment_config(values: dict[str, Any], source: str = "augment") -> AugmentConfig:
    """An :class:`AugmentConfig` with every augmentation off but ``values`` (key -> value), checked
    for unknown keys, types and ranges; errors are prefixed with ``source``."""
    data = {f.name: 0.0 for f in dataclasses.fields(AugmentConfig)}
    data.update(values)
    try:
        return build_dataclass(AugmentConfig, data, "augment").validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _validate_optim(o: OptimConfig, where: str, need) -> None:
    need(o.epochs >= 1, f"{where}.epochs must be >= 1, got {o.epochs}")
    need(o.batch_size >= 1, f"{where}.batch_size must be >= 1, got {o.batch_size}")
    need(o.optimizer in ("adamw", "sgd"), f"{where}.optimizer {o.optimizer!r}: use adamw or sgd")
    need(o.lr > 0, f"{where}.lr must be > 0, got {o.lr}")
    need(o.scheduler in ("cosine", "step", "constant"),
         f"{where}.scheduler {o.scheduler!r}: use cosine, step or constant")
    need(o.momentum >= 0 and o.weight_decay >= 0 and o.grad_clip >= 0,
         f"{where}: momentum, weight_decay and grad_clip must be >= 0")
    need(o.warmup_steps >= 0 and o.step_epochs >= 1 and 0 < o.gamma <= 1,
         f"{where}: need warmup_steps >= 0, step_epochs >= 1 and 0 < gamma <= 1")


def config_from_dict(data: dict, source: str = "config") -> TrainConfig:
    """A validated :class:`TrainConfig` from nested plain data; errors are prefixed with ``source``."""
    try:
        return build_dataclass(TrainConfig, data, "").validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def config_to_dict(cfg: Any) -> dict:
    """Nested plain data (YAML-ready) of a config or any of its sections."""
    return dataclasses.asdict(cfg)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``; validated.

    ``run.name`` defaults to the file's stem.
    """
    data: dict = {}
    source = "config"
    if path is not None:
        path = Path(path)
        data = read_yaml(path, WHOLE_MAPPINGS)
        source = str(path)
    data = apply_overrides(data, list(overrides))
    cfg = config_from_dict(data, source if not overrides else f"{source} (with --set {' '.join(overrides)})")
    if not cfg.run.name and path is not None:
        cfg.run.name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).stem)
    return cfg


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    path = Path(path)
    fileio.write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
