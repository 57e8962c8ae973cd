"""``hyperface experiments run``: the study's plan (order, seeds, dependencies) and resuming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperface.cli.main import main as cli_main
from hyperface.train.config import load_config, save_config
from hyperface.train.study import EXPERIMENTS, plan_study, run_study

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "experiments"


def test_plan_runs_seed_by_seed_and_wires_experiment_2a_into_3_and_5(tmp_path):
    runs = plan_study(CONFIGS, "cpu", [0, 1], tmp_path)
    assert [(r.seed, r.experiment) for r in runs] == [(s, e) for s in (0, 1) for e in EXPERIMENTS]
    by = {(r.seed, r.experiment): r for r in runs}
    exp3, exp5 = by[(1, "exp3")], by[(1, "exp5-uncertainty")]
    assert exp3.folder == tmp_path / "seed-1" / "exp3"
    assert exp3.config == CONFIGS / "cpu" / "exp3.yaml"
    assert f"stage1.init={tmp_path / 'seed-1' / 'exp2a' / 'stage1' / 'best.safetensors'}" in exp3.overrides
    assert f"model.init={tmp_path / 'seed-1' / 'exp2a' / 'best.safetensors'}" in exp5.overrides
    assert "run.seed=1" in exp5.overrides and "run.name=exp5-uncertainty" in exp5.overrides
    assert not any("init" in o for o in by[(0, "exp1")].overrides)
    paper = plan_study(CONFIGS, "paper", [0], tmp_path, ["exp1"])
    assert paper[0].config == CONFIGS / "exp1.yaml"


def test_every_cpu_config_resolves_to_the_compact_network(tmp_path):
    for r in plan_study(CONFIGS, "cpu", [3], tmp_path):
        cfg = load_config(r.config, list(r.overrides))
        assert cfg.model.arch == "hyperface-compact" and cfg.model.arch_kwargs == {"input_size": 64}
        assert cfg.run.seed == 3 and cfg.run.name == r.experiment
    exp5 = load_config(CONFIGS / "cpu" / "exp5.yaml")
    assert exp5.loss.optimise == ["landmarks"] and exp5.optim.epochs == 3
    assert load_config(CONFIGS / "cpu" / "exp5-uncertainty.yaml").loss.learn_weights
    assert load_config(CONFIGS / "cpu" / "exp2b.yaml").stage1.negatives == ["data/negatives-cpu"]


def test_plan_refuses_what_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="include exp2a"):
        plan_study(CONFIGS, "cpu", [0], tmp_path, ["exp1", "exp5"])
    with pytest.raises(ValueError, match="unknown experiment"):
        plan_study(CONFIGS, "cpu", [0], tmp_path, ["exp9"])
    with pytest.raises(ValueError, match="unknown scale"):
        plan_study(CONFIGS, "gpu", [0], tmp_path)
    with pytest.raises(ValueError, match="config not found"):
        plan_study(tmp_path, "cpu", [0], tmp_path, ["exp1"])
    assert cli_main(["experiments", "run", "--configs", str(tmp_path), "--experiments", "exp1",
                     "--out", str(tmp_path)]) == 2
    assert cli_main(["experiments", "run", "--seeds", "a,b", "--out", str(tmp_path)]) == 2


def test_run_study_skips_done_runs_resumes_started_ones_and_stops_at_max_steps(tmp_path):
    runs = plan_study(CONFIGS, "cpu", [0], tmp_path, ["exp1", "exp2a", "exp4"])
    done, started = runs[0].folder, runs[1].folder
    done.mkdir(parents=True)
    (done / "done.json").write_text(json.dumps({"weights": "best.safetensors"}))
    started.mkdir(parents=True)
    save_config(load_config(runs[1].config, list(runs[1].overrides)), started / "config.yaml")  # as a run writes it
    calls = []

    def fake_train(cfg, resume=None):
        calls.append((cfg.run.name, resume, cfg.optim.lr))
        return None if cfg.run.name == "exp4" else Path("best.safetensors")

    finished = run_study(runs, ["optim.lr=0.01"], train=fake_train)
    assert calls == [("exp2a", started, 0.01), ("exp4", None, 0.01)]
    assert finished == [done, started]  # exp4 stopped early: not finished
