"""Interrupted runs: a save killed half-way, Ctrl-C inside an epoch; each resumes bit for bit. And a
library call to train() leaves the caller's global torch state as it found it."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from train_helpers import TINY_KWARGS, tiny_config

from hyperface.cli.main import main as cli_main
from hyperface.train import checkpoint as C
from hyperface.train import engine
from hyperface.train.config import config_from_dict, load_config
from hyperface.train.logs import read_csv
from hyperface.train.stages import StepInterrupted, train

# dropout: the RNG states matter; save_every: a checkpoint after every step
COMMON = dict(model={"arch_kwargs": dict(TINY_KWARGS, dropout=0.3)},
              optim={"epochs": 2, "batch_size": 16, "scheduler": "cosine", "warmup_steps": 2})


def _config(tiny_data, out: Path, name: str, **run) -> dict:
    return tiny_config(tiny_data, out, run={"name": name, "save_every": 1, **run}, **COMMON)


@pytest.fixture(scope="module")
def straight(tiny_data, tmp_path_factory) -> Path:
    """An uninterrupted run: 2 epochs of 3 steps."""
    out = tmp_path_factory.mktemp("straight")
    train(config_from_dict(_config(tiny_data, out, "straight")))
    return out / "straight"


def _same_run(a: Path, b: Path) -> None:
    assert read_csv(a / "steps.csv") == read_csv(b / "steps.csv")  # every step's losses and lr, bit for bit
    wa, wb = load_file(a / "last.safetensors"), load_file(b / "last.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    wa, wb = load_file(a / "best.safetensors"), load_file(b / "best.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_kill_between_the_two_writes_resumes_from_the_previous_checkpoint(tiny_data, tmp_path, monkeypatch,
                                                                              straight):
    calls = []
    write_state = C._write_state

    def killed_at_step_5(path, state):
        calls.append(state["step"])
        if state["step"] == 5:  # the weights of step 5 are written, its state is not
            raise RuntimeError("killed")
        write_state(path, state)

    monkeypatch.setattr(C, "_write_state", killed_at_step_5)
    with pytest.raises(RuntimeError, match="killed"):
        train(config_from_dict(_config(tiny_data, tmp_path, "killed")))
    monkeypatch.undo()
    run = tmp_path / "killed"
    assert calls == [1, 2, 3, 4, 5]
    # what a SIGKILL at that moment leaves: the half-written folder under its temporary name
    stray = run / "checkpoints" / ".step-000000005-0.0123456789ab.tmp"
    stray.mkdir()
    (stray / "model.safetensors").write_bytes(b"half")
    assert C.find_checkpoint(run).state["step"] == 4

    assert train(load_config(run / "config.yaml"), resume=run) == run / "best.safetensors"
    _same_run(straight, run)
    assert not stray.exists()


def test_ctrl_c_in_an_epoch_saves_that_step_and_resume_continues_exactly(tiny_data, tmp_path, straight):
    def interrupt_at_step_4(stage, batch, seen=[]):
        seen.append(stage)
        if len(seen) == 4:
            raise KeyboardInterrupt

    with pytest.raises(StepInterrupted) as info:  # a KeyboardInterrupt, after saving
        train(config_from_dict(_config(tiny_data, tmp_path, "ctrlc", save_every=0)), on_batch=interrupt_at_step_4)
    assert info.value.step == 4 and info.value.saved
    run = tmp_path / "ctrlc"
    assert C.find_checkpoint(run).state["step"] == 4 and not (run / "done.json").exists()
    train(load_config(run / "config.yaml"), resume=run)
    _same_run(straight, run)


def test_cli_ctrl_c_exits_130_with_the_resume_command(tiny_data, tmp_path, monkeypatch, capsys, straight):
    """A real SIGINT during step 2: the step completes, a checkpoint is saved, one line says how to go on."""
    split_batch = engine.split_batch
    calls = []

    def sigint_during_step_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return split_batch(*args, **kwargs)

    monkeypatch.setattr(engine, "split_batch", sigint_during_step_2)
    config = tmp_path / "sigint.yaml"
    config.write_text(yaml.safe_dump(_config(tiny_data, tmp_path / "runs", "sigint", save_every=0)))
    assert cli_main(["train", "--config", str(config)]) == 130
    monkeypatch.undo()
    run = tmp_path / "runs" / "sigint"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hyperface train: interrupted (checkpoint saved at step 2); continue with: "
                   f"hyperface train --resume {run}"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert cli_main(["train", "--resume", str(run)]) == 0
    _same_run(straight, run)


def test_train_restores_the_global_state_it_changes(tiny_data, tmp_path):
    torch.use_deterministic_algorithms(False)
    threads = torch.get_num_threads()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    cfg = tiny_config(tiny_data, tmp_path, run={"name": "state", "deterministic": True}, optim={"epochs": 1})
    train(config_from_dict(cfg))
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == cudnn
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], expected[0]) and np.array_equal(again[1], expected[1]) and again[2] == expected[2]


def test_every_file_of_a_run_is_renamed_into_place_by_fileio(tiny_data, tmp_path, monkeypatch):
    """One owner of atomic writes: the run's config, logs, done marker, checkpoints and report all
    appear through hyperface.fileio (no module of its own renames temporary files)."""
    from hyperface import fileio
    from hyperface.train.report import write_report

    renamed, replace = [], fileio.replace

    def recording(src, dst):
        renamed.append(Path(dst).relative_to(tmp_path).as_posix())
        replace(src, dst)

    monkeypatch.setattr(fileio, "replace", recording)
    cfg = tiny_config(tiny_data, tmp_path, run={"name": "io"}, optim={"epochs": 1},
                      data={"max_train_samples": 16, "max_val_samples": 8})
    train(config_from_dict(cfg))
    write_report([tmp_path / "io"], tmp_path / "report")
    assert {"io/config.yaml", "io/metrics.csv", "io/done.json", "io/checkpoints/step-000000001-0",
            "io/last.safetensors", "report/report.md", "report/all_runs.png"} <= set(renamed)


def test_a_stray_temporary_file_does_not_block_a_fresh_run(tmp_path):
    from hyperface.train import distributed as D
    from hyperface.train.stages import _start

    cfg = config_from_dict({"run": {"name": "fresh", "out_dir": str(tmp_path)}, "data": {"train": ["x"]}})
    run = tmp_path / "fresh"
    run.mkdir()
    (run / ".config.0123456789ab.tmp.yaml").write_text("half")  # what a kill during the first write leaves
    info = D.DistInfo(0, 1, 0, torch.device("cpu"))
    assert _start(cfg, None, info) == run and (run / "config.yaml").is_file()
    with pytest.raises(FileExistsError, match="--resume"):  # a started run is continued, not overwritten
        _start(cfg, None, info)
