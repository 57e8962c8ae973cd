"""Checkpoint files: weights and state as one folder renamed into place, RNG states restored, a
killed save never blocks resuming from the checkpoint before it."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from train_helpers import TINY_ARCH, TINY_KWARGS

from hyperface.models import create_model, load_model, save_weights
from hyperface.train import checkpoint as C
from hyperface.train.checkpoint import (
    CheckpointError, find_checkpoint, restore_weights, rng_state, save_checkpoint, set_rng_state,
)


def _model():
    return create_model(TINY_ARCH, tasks=("landmarks",), num_points=5, **TINY_KWARGS)


def test_round_trip_and_rng(tmp_path):
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 32, 32))["landmarks"].sum().backward()
    optimizer.step()
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    saved_rng = rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    folder = save_checkpoint(tmp_path, model, {"optimizer": optimizer.state_dict(), "rng": saved_rng, "step": 7},
                             {"run": "t", "step": 7})
    assert folder == tmp_path / "checkpoints" / "step-000000007-0"
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "state.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "last.safetensors"]  # no temp files
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [folder.name]

    other = _model()
    found = find_checkpoint(tmp_path)
    restore_weights(found, other)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    assert found.state["step"] == 7 and found.state["info"]["run"] == "t"
    torch.optim.AdamW(other.parameters(), lr=1e-3).load_state_dict(found.state["optimizer"])
    set_rng_state(found.state["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], expected[0]) and np.array_equal(again[1], expected[1]) and again[2] == expected[2]
    # the weights file alone rebuilds the model, with where it came from in its metadata
    assert load_model(tmp_path / "last.safetensors").config.meta["training"]["step"] == 7
    assert find_checkpoint(tmp_path / "elsewhere") is None


def test_a_save_killed_between_weights_and_state_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = _model()
    save_checkpoint(tmp_path, model, {"step": 3}, {"step": 3})

    def killed(path, state):
        raise RuntimeError("killed")

    monkeypatch.setattr(C, "_write_state", killed)
    with pytest.raises(RuntimeError, match="killed"):
        save_checkpoint(tmp_path, model, {"step": 4}, {"step": 4})
    monkeypatch.undo()
    # a SIGKILL leaves its temporary folder behind: it is ignored, and removed by the next save
    stray = tmp_path / "checkpoints" / ".step-000000005-0.0123456789ab.tmp"
    stray.mkdir()
    save_weights(model, stray / "model.safetensors")
    assert find_checkpoint(tmp_path).state["step"] == 3
    save_checkpoint(tmp_path, model, {"step": 5}, {"step": 5})
    save_checkpoint(tmp_path, model, {"step": 5}, {"step": 5})  # the same step again: a new folder
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000000005-0", "step-000000005-1"]  # the two newest; no temporary folder
    assert find_checkpoint(tmp_path).weights.parent.name == "step-000000005-1"


def test_a_damaged_newest_checkpoint_falls_back_and_the_old_layout_resumes(tmp_path):
    model = _model()
    save_checkpoint(tmp_path, model, {"step": 1}, {"step": 1})
    newest = save_checkpoint(tmp_path, model, {"step": 2}, {"step": 2})
    (newest / "state.pt").write_bytes(b"not a checkpoint")
    assert find_checkpoint(tmp_path).state["step"] == 1
    (newest.parent / "step-000000001-0" / "state.pt").unlink()
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        find_checkpoint(tmp_path)

    legacy = tmp_path / "legacy"  # last.safetensors + last.state.pt, as written before checkpoint folders
    legacy.mkdir()
    model.config.meta["training"] = {"step": 9}
    save_weights(model, legacy / "last.safetensors")
    torch.save({"step": 9, "info": {"step": 9}}, legacy / "last.state.pt")
    assert find_checkpoint(legacy).state["step"] == 9
    torch.save({"step": 8, "info": {"step": 8}}, legacy / "last.state.pt")  # weights and state of two steps
    with pytest.raises(CheckpointError, match="step 9 .* step 8"):
        find_checkpoint(legacy)


def test_a_full_disk_is_a_one_line_checkpoint_error_and_the_previous_checkpoint_stays(tmp_path, monkeypatch):
    import errno
    import io
    import os

    from hyperface import fileio

    model = _model()
    first = save_checkpoint(tmp_path, model, {"step": 3}, {"step": 3})

    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # The state file written onto a full disk (inside torch.save) ...
    monkeypatch.setattr(C, "open", lambda path, mode: io.BufferedWriter(FullDisk()), raising=False)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(tmp_path, model, {"step": 4}, {"step": 4})
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message and "previous checkpoint is kept" in message
    assert message.startswith(str(tmp_path / "checkpoints" / "step-000000004-0"))
    monkeypatch.undo()

    # ... and the weights (safetensors) with no room left.
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio, "write_bytes", full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        save_checkpoint(tmp_path, model, {"step": 5}, {"step": 5})
    with pytest.raises(CheckpointError, match=r"best.safetensors: cannot write \(No space left on device\); the "
                                              r"previous best weights are kept"):
        C.save_best(tmp_path, model, {"step": 5})
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [first.name]  # nothing half-written
    assert find_checkpoint(tmp_path).state["step"] == 3
