"""Training runs on tiny prepared sets: losses fall, resume is exact, the recipe's controls work."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hyperface.cli.main import main as cli_main
from hyperface.data.shards import PreparedDataset
from hyperface.models import create_model, load_model, read_config
from hyperface.train.checkpoint import find_checkpoint
from hyperface.train.config import ConfigError, config_from_dict, load_config
from hyperface.train.data import EpochSampler, TrainingSet, make_loader
from hyperface.train.engine import Meter, TrainStep, train_one_epoch
from hyperface.train.logs import read_csv
from hyperface.train.loss import MultiTaskLoss
from hyperface.train.stages import build_optimizer, train

from train_helpers import TINY_ARCH, TINY_KWARGS, tiny_config

ALL_TASKS = ("detection", "landmarks", "visibility", "pose", "gender")


class AllLabels(torch.utils.data.Dataset):
    """The drawn faces with two learnable extra labels so all five tasks train: "gender" is whether
    the crop's corners are bright, "visibility" whether a point lies left of the face's midline."""

    def __init__(self, ds: PreparedDataset) -> None:
        self.ds, self.crop_size, self.context, self.point_set = ds, ds.crop_size, ds.context, ds.point_set

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        s = self.ds[i]
        corners = s["image"][[0, 0, -1, -1], [0, -1, 0, -1]].mean()
        s["gender"], s["gender_mask"] = np.int64(corners > 120), np.bool_(True)
        s["visibility"] = (s["landmarks"][:, 0] < 0).astype(np.float32)
        s["visibility_mask"] = s["landmarks_mask"].copy()
        return s


def test_every_enabled_task_loss_falls(tiny_data):
    """A few epochs on the tiny set: each of the five terms is lower in the last epoch than in the first."""
    torch.manual_seed(0)
    ds = AllLabels(PreparedDataset(tiny_data["faces"], "train"))
    model = create_model(TINY_ARCH, tasks=ALL_TASKS, num_points=68, **TINY_KWARGS)
    criterion = MultiTaskLoss(ALL_TASKS, point_set="ibug68")
    cfg = config_from_dict({"data": {"train": ["x"]}, "optim": {"lr": 1e-2, "weight_decay": 0.0}})
    train_set = TrainingSet([(ds, np.arange(48))], augment=cfg.augment, input_size=32, num_points=68,
                            point_set="ibug68")
    sampler = EpochSampler(len(train_set), seed=0)
    loader = make_loader(train_set, sampler, batch_size=16, num_workers=0, drop_last=True)
    optimizer = build_optimizer(model, criterion, cfg.optim)
    step, means = 0, []
    model.train()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        meter = Meter()
        step, _ = train_one_epoch(TrainStep(model, criterion), optimizer, None, loader, model_config=model.config,
                                  device=torch.device("cpu"), meter=meter, step=step)
        means.append(meter.means())
    assert step == 6 * 3
    for task in (*ALL_TASKS, "total"):
        assert means[-1][f"loss_{task}"] < means[0][f"loss_{task}"], (task, means[0], means[-1])
    assert means[-1]["loss_landmarks"] < 0.7 * means[0]["loss_landmarks"]


def _write(tmp_path: Path, data: dict) -> Path:
    import yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_two_stage_run_writes_a_complete_run_folder(tiny_data, tmp_path):
    data = tiny_config(tiny_data, tmp_path / "runs", run={"name": "two", "tensorboard": True, "progress": True},
                       optim={"epochs": 1, "batch_size": 16},
                       stage1={"enabled": True, "arch": TINY_ARCH, "negatives": [str(tiny_data["negatives"])],
                               "optim": {"epochs": 1, "batch_size": 16, "lr": 0.003}})
    assert cli_main(["train", "--config", str(_write(tmp_path, data)), "--set", "run.log_every=2"]) == 0
    run = tmp_path / "runs" / "two"
    for name in ("config.yaml", "best.safetensors", "last.safetensors", "metrics.csv", "steps.csv",
                 "done.json", "stage1/best.safetensors", "stage1/metrics.csv", "stage1/done.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert load_config(run / "config.yaml").run.log_every == 2
    # stage two started from stage one's trunk
    assert "stage one" in read_config(run / "best.safetensors").meta["trunk_init"]
    stage1 = read_csv(run / "stage1" / "metrics.csv")
    assert "val_detection_acc" in stage1[0] and "train_loss_landmarks" not in stage1[0]
    row = read_csv(run / "metrics.csv")[-1]
    for key in ("train_loss_detection", "train_loss_landmarks", "train_loss_pose", "val_loss_landmarks",
                "val_nme68", "val_acc68@0.08", "val_pose_mae", "epoch_time_s", "samples_per_s"):
        assert key in row and math.isfinite(row[key]), key
    steps = read_csv(run / "steps.csv")
    assert [r["step"] for r in steps] == [2.0]  # 48 samples, batches of 16: 3 steps
    model = load_model(run / "best.safetensors")
    assert model.config.tasks == ("detection", "landmarks", "pose") and model.config.meta["training"]["epoch"] == 1
    # a second start into the same folder is refused; an unknown key is exit status 2
    assert cli_main(["train", "--config", str(_write(tmp_path, data))]) == 2
    assert cli_main(["train", "--config", str(_write(tmp_path, data)), "--set", "optim.lrr=1"]) == 2


def _numeric(rows: list[dict], drop=("time", "per_s", "share")) -> list[dict]:
    return [{k: v for k, v in r.items() if not any(d in k for d in drop)} for r in rows]


def test_resume_continues_exactly(tiny_data, tmp_path):
    common = dict(data={"num_workers": 1},
                  model={"arch_kwargs": dict(TINY_KWARGS, dropout=0.3)},  # dropout: the RNG state matters
                  optim={"epochs": 2, "batch_size": 16, "scheduler": "cosine", "warmup_steps": 2})
    straight = tiny_config(tiny_data, tmp_path, run={"name": "straight"}, **common)
    train(config_from_dict(straight))
    parted = tiny_config(tiny_data, tmp_path, run={"name": "parted", "max_steps": 4}, **common)
    assert train(config_from_dict(parted)) is None  # stopped inside epoch 2 (3 steps an epoch)
    run = tmp_path / "parted"
    assert len(read_csv(run / "steps.csv")) == 4 and not (run / "done.json").exists()
    assert len(read_csv(run / "metrics.csv")) == 1
    resumed = load_config(run / "config.yaml", ["run.max_steps=0"])
    assert train(resumed, resume=run) == run / "best.safetensors"

    a, b = read_csv(tmp_path / "straight" / "steps.csv"), read_csv(run / "steps.csv")
    assert len(a) == len(b) == 6
    assert a == b  # every step's losses and learning rate, bit for bit (next loss after the resume included)
    assert _numeric(read_csv(tmp_path / "straight" / "metrics.csv")) == _numeric(read_csv(run / "metrics.csv"))
    wa, wb = load_file(tmp_path / "straight" / "last.safetensors"), load_file(run / "last.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_optimise_one_task_with_frozen_branches_logs_all(tiny_data, tmp_path):
    base = tiny_config(tiny_data, tmp_path, run={"name": "base"}, optim={"epochs": 1})
    init = train(config_from_dict(base))
    heads = ["heads.*.detection.*", "heads.*.pose.*"]
    cont = tiny_config(tiny_data, tmp_path, run={"name": "cont"}, optim={"epochs": 1},
                       model={"init": str(init), "freeze": heads}, loss={"optimise": ["landmarks"]})
    out = train(config_from_dict(cont))
    before, after = load_file(init), load_file(out.parent / "last.safetensors")
    for key in before:
        changed = not torch.equal(before[key], after[key])
        frozen = ".detection." in key or ".pose." in key
        if key.startswith("heads.") or key.endswith(".weight"):
            assert changed != frozen, key
    row = read_csv(tmp_path / "cont" / "metrics.csv")[0]
    assert {"train_loss_pose", "train_loss_detection", "val_loss_pose"} <= set(row)  # logged, not optimised
    assert row["val_loss_total"] == pytest.approx(5.0 * row["val_loss_landmarks"], rel=1e-9)  # landmarks only

    bad = tiny_config(tiny_data, tmp_path, run={"name": "bad"}, model={"freeze": ["branches.*"]})
    with pytest.raises(ConfigError, match="matches no parameter"):
        train(config_from_dict(bad))
    typo = tiny_config(tiny_data, tmp_path, run={"name": "typo"})
    typo["model"]["arch_kwargs"] = {"input_size:32": None}  # "--set model.arch_kwargs={input_size:32}" in YAML
    with pytest.raises(ConfigError, match=r"arch_kwargs.*unknown argument"):
        train(config_from_dict(typo))


def test_uncertainty_weighting_and_positives_only(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, tmp_path, run={"name": "auto"}, loss={"learn_weights": True},
                      data={"positives_only": True}, optim={"epochs": 1})
    negatives_seen = []

    def on_batch(stage, batch):
        negatives_seen.append(int((batch["detection_mask"] & (batch["detection"] == 0)).sum()))

    train(config_from_dict(cfg), on_batch=on_batch)
    assert negatives_seen and sum(negatives_seen) == 0
    row = read_csv(tmp_path / "auto" / "metrics.csv")[0]
    logvars = [row[f"logvar_{t}"] for t in ("detection", "landmarks", "pose")]
    assert all(v != 0.0 for v in logvars)
    state = find_checkpoint(tmp_path / "auto").state
    assert set(state["criterion"]) == {"log_vars.detection", "log_vars.landmarks", "log_vars.pose"}
    assert json.loads((tmp_path / "auto" / "done.json").read_text())["best"]["metric"] == "val_nme68"


def test_stage_one_data_with_and_without_replaced_non_faces(tiny_data, tmp_path):
    from hyperface.train.stages import _parts

    own = config_from_dict(tiny_config(tiny_data, tmp_path))
    parts = _parts(own, "train", stage_one=True)
    assert len(parts) == 1
    labels = parts[0][0].labels()[parts[0][1]]
    assert labels["detection_mask"].all() and (labels["detection"] == 0).any() and (labels["detection"] == 1).any()

    other = config_from_dict(tiny_config(tiny_data, tmp_path, stage1={"negatives": [str(tiny_data["negatives"])]}))
    faces, negatives = _parts(other, "train", stage_one=True)
    face_labels = faces[0].labels()[faces[1]]
    assert face_labels["detection_mask"].all() and (face_labels["detection"] == 1).all()
    neg_labels = negatives[0].labels()[negatives[1]]
    assert len(neg_labels) and (neg_labels["detection"] == 0).all()
    val = _parts(other, "val", stage_one=True)
    assert [len(idx) > 0 for _, idx in val] == [True, True]


def test_oversample_shapes_the_training_mix_not_validation(tiny_data, tmp_path):
    from hyperface.train.stages import _parts

    mix = {"landmarks": 3.0, "nonface": 0.0}
    cfg = config_from_dict(tiny_config(tiny_data, tmp_path, data={"oversample": mix, "max_train_samples": 0}))
    ((ds, idx),) = _parts(cfg, "train", stage_one=False)
    labels = ds.labels()[idx]
    assert not (labels["detection_mask"] & (labels["detection"] == 0)).any()  # weight 0: no non-face
    points = labels["landmarks_mask"].any(axis=1)
    assert points.sum() == 3 * len(np.unique(idx[points]))  # every landmark crop three times
    ((val_ds, val_idx),) = _parts(cfg, "val", stage_one=False)
    val_labels = val_ds.labels()[val_idx]
    assert len(np.unique(val_idx)) == len(val_idx)  # validation is not re-weighted:
    assert (val_labels["detection_mask"] & (val_labels["detection"] == 0)).any()  # its non-faces stay


def test_train_weights_weigh_each_prepared_folder(tiny_data, tmp_path):
    """data.train_weights multiplies each folder's draws (and data.oversample's); one weight per folder."""
    from hyperface.train.config import ConfigError
    from hyperface.train.stages import _parts

    folders = [str(tiny_data["faces"]), str(tiny_data["negatives"])]
    counts = {}
    for weights in ([], [1.0, 2.0], [1.0, 0.0]):
        cfg = config_from_dict(tiny_config(tiny_data, tmp_path, data={"train": folders, "max_train_samples": 0,
                                                                       "train_weights": weights}))
        ((ds, idx),) = _parts(cfg, "train", stage_one=False)
        counts[str(weights)] = np.bincount(ds.folders()[idx], minlength=2)
    plain, double, none = counts["[]"], counts["[1.0, 2.0]"], counts["[1.0, 0.0]"]
    assert plain[1] > 0 and double[0] == plain[0] and double[1] == 2 * plain[1]
    assert none[1] == 0 and none[0] == plain[0]
    ((val_ds, val_idx),) = _parts(cfg, "val", stage_one=False)  # validation is not re-weighted
    assert np.bincount(val_ds.folders()[val_idx], minlength=2)[1] > 0
    with pytest.raises(ConfigError, match="train_weights"):
        config_from_dict(tiny_config(tiny_data, tmp_path, data={"train": folders, "train_weights": [1.0]}))


def test_channels_last_changes_the_memory_order_not_the_training(tiny_data, tmp_path):
    """run.channels_last: the same losses (to float rounding: other convolution kernels) and a weights
    file that loads, written in the usual order."""
    runs = {}
    for flag in (False, True):
        cfg = tiny_config(tiny_data, tmp_path, run={"name": f"cl-{flag}", "channels_last": flag},
                          optim={"epochs": 1, "batch_size": 16, "lr": 0.003, "scheduler": "constant"})
        runs[flag] = train(config_from_dict(cfg))
    a, b = (read_csv(tmp_path / f"cl-{flag}" / "steps.csv") for flag in (False, True))
    assert len(a) == len(b) == 3
    for row_a, row_b in zip(a, b):
        assert float(row_b["loss_total"]) == pytest.approx(float(row_a["loss_total"]), rel=1e-3)
    model = load_model(runs[True])
    assert all(t.is_contiguous() for t in model.state_dict().values())
    # the flag took effect: the stage's model holds its convolution weights in NHWC order
    from hyperface.train import distributed as D
    from hyperface.train.build import build_stage
    from hyperface.train.stages import _main_stage

    cfg = config_from_dict(tiny_config(tiny_data, tmp_path, run={"name": "cl-check", "channels_last": True}))
    spec = _main_stage(cfg, tmp_path / "cl-check", 68, "ibug68", None)
    convs = [p for p in build_stage(spec, cfg, D.setup("cpu"), None).model.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert any(not p.is_contiguous() for p in convs)  # (a 1x1 kernel is both)


def test_cpu_amp_trains_in_bfloat16_and_validates_in_float32(tiny_data, tmp_path, monkeypatch):
    """run.cpu_amp: the training steps run under bfloat16 autocast (nearly the float32 losses, not
    the same ones), validation stays float32 (its numbers are the exported model's)."""
    import hyperface.train.runner as runner

    seen: list = []
    real_evaluate = runner.evaluate

    def spy(*args, **kwargs):
        seen.append(kwargs.get("amp_dtype"))
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", spy)
    for flag in (False, True):
        cfg = tiny_config(tiny_data, tmp_path, run={"name": f"amp-{flag}", "cpu_amp": flag},
                          optim={"epochs": 1, "batch_size": 16, "lr": 0.003, "scheduler": "constant"})
        train(config_from_dict(cfg))
    a, b = (read_csv(tmp_path / f"amp-{flag}" / "steps.csv") for flag in (False, True))
    assert len(a) == len(b) == 3
    first_a, first_b = float(a[0]["loss_total"]), float(b[0]["loss_total"])
    assert first_b == pytest.approx(first_a, rel=0.05)
    assert first_b != first_a  # bfloat16 rounding: the flag took effect
    assert seen and all(dtype is None for dtype in seen)

    from hyperface.train import distributed as D
    from hyperface.train.build import build_stage
    from hyperface.train.stages import _main_stage

    for flag, expected in ((True, torch.bfloat16), (False, None)):
        cfg = config_from_dict(tiny_config(tiny_data, tmp_path, run={"name": "amp-check", "cpu_amp": flag}))
        spec = _main_stage(cfg, tmp_path / "amp-check", 68, "ibug68", None)
        parts = build_stage(spec, cfg, D.setup("cpu"), None)
        assert parts.amp_dtype is expected and parts.val_amp_dtype is None


def test_a_models_window_context_is_what_its_training_crops_show(tiny_data, tmp_path, caplog):
    """hyperface-aligned's ``arch_kwargs.context`` (the window inference cuts around the template's box)
    reaches the training and validation crops; other models see the box itself. A window wider than the
    prepared crops hold is warned about."""
    from hyperface.train import distributed as D
    from hyperface.train.build import build_stage
    from hyperface.train.stages import _main_stage

    aligned = {"arch": "hyperface-aligned", "tasks": ["landmarks"], "arch_kwargs": {"input_size": 32, "width": 0.25}}
    for model, expected in (({**aligned, "arch_kwargs": {**aligned["arch_kwargs"], "context": 1.2}}, 1.2),
                            ({**aligned, "arch_kwargs": {**aligned["arch_kwargs"], "context": 1.5}}, 1.5),
                            ({}, 1.0)):
        caplog.clear()
        cfg = config_from_dict(tiny_config(tiny_data, tmp_path, run={"name": "ctx"}, model=model))
        parts = build_stage(_main_stage(cfg, tmp_path / "ctx", 68, "ibug68", None), cfg, D.setup("cpu"), None)
        assert parts.loader.dataset.input_context == expected
        assert parts.val_loader.dataset.input_context == expected
        warned = "less than the model's window" in caplog.text  # the tiny crops hold 1.25 times each box
        assert warned == (expected > 1.25), caplog.text
