"""``hyperface train-proposals``: the candidate cascade trains through the shared engine from the CLI."""

from __future__ import annotations

import json
import signal

import numpy as np

from hyperface.cli.main import main as cli_main
from hyperface.inference.proposals import FastProposals
from hyperface.models import read_config
from hyperface.train import proposal


def test_train_proposals_command_writes_both_stages(tiny_data, tmp_path, capsys):
    prepared = [str(tiny_data["faces"]), str(tiny_data["negatives"])]
    out = tmp_path / "weights"
    assert cli_main(["train-proposals", "--prepared", *prepared, "--out", str(out), "--epochs", "1",
                     "--hard-epochs", "0"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"stage1", "stage2"} and 0.0 <= metrics["stage2"]["val"]["recall"] <= 1.0
    stage1, stage2 = out / "hyperface-proposal.safetensors", out / "hyperface-proposal-refine.safetensors"
    assert read_config(stage1).meta["metrics"] == metrics["stage1"]
    source = FastProposals(stage1, refine=stage2, threshold=0.0, refine_threshold=0.0, max_candidates=5)
    assert source(np.full((64, 80, 3), 90, dtype=np.uint8)).shape[1] == 4
    assert not hasattr(proposal, "main")  # no second command line inside the package

    assert cli_main(["train-proposals", "--prepared", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no prepared-data manifest" in capsys.readouterr().err


def test_ctrl_c_stops_proposal_training_at_a_step_boundary(tiny_data, tmp_path, monkeypatch, capsys):
    """The engine's epoch loop (shared with the main training) takes Ctrl-C between steps."""
    augment, calls = proposal._augment, []

    def sigint_in_step_2(*args):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return augment(*args)

    monkeypatch.setattr(proposal, "_augment", sigint_in_step_2)
    out = tmp_path / "weights"
    assert cli_main(["train-proposals", "--prepared", str(tiny_data["faces"]), "--out", str(out),
                     "--epochs", "3"]) == 130  # one batch an epoch: stage 1 is cut in its second epoch
    assert len(calls) == 2  # step 2 completed, step 3 never started
    assert "interrupted" in capsys.readouterr().err and not out.exists()
