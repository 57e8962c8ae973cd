"""Checkpoint files: weights and state apart, RNG states restored, interrupted saves detected."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from train_helpers import TINY_ARCH, TINY_KWARGS

from hyperface.models import create_model, load_model
from hyperface.train.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state


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
    save_checkpoint(tmp_path, "last", model, {"optimizer": optimizer.state_dict(), "rng": saved_rng, "step": 7},
                    {"run": "t", "step": 7})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "last.state.pt"]  # no temp files

    other = _model()
    state = load_checkpoint(tmp_path, "last", other)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    assert state["step"] == 7 and state["info"]["run"] == "t"
    torch.optim.AdamW(other.parameters(), lr=1e-3).load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], expected[0]) and np.array_equal(again[1], expected[1]) and again[2] == expected[2]
    # the weights file alone rebuilds the model, with where it came from in its metadata
    assert load_model(tmp_path / "last.safetensors").config.meta["training"]["step"] == 7


def test_weights_and_state_of_different_steps_are_refused(tmp_path):
    model = _model()
    save_checkpoint(tmp_path, "last", model, {"step": 3}, {"step": 3})
    save_checkpoint(tmp_path, "last", model, None, {"step": 4})  # as if killed before the state was renamed
    with pytest.raises(CheckpointError, match="step 4 .* step 3"):
        load_checkpoint(tmp_path, "last", _model())
    with pytest.raises(CheckpointError, match="no best.safetensors"):
        load_checkpoint(tmp_path, "best", _model())
