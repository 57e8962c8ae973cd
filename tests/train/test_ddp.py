"""DDP with two CPU processes (gloo), launched by torchrun as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file
from train_helpers import tiny_config

from hyperface.data.shards import PreparedDataset
from hyperface.train.logs import read_csv


def test_two_processes_share_the_data_and_end_with_identical_weights(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, tmp_path / "runs", run={"name": "ddp"}, optim={"epochs": 1, "batch_size": 8},
                      model={"arch_kwargs": {"input_size": 32, "width": 0.25, "fc_channels": 32,
                                             "branch_channels": 16, "dropout": 0.2}})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    out.mkdir()
    worker = Path(__file__).with_name("ddp_worker.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(worker.parent), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(worker), str(path), str(out)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]

    n = cfg["data"]["max_train_samples"]
    assert len(PreparedDataset(tiny_data["faces"], "train")) > n
    seen = [json.loads((out / f"seen{r}.json").read_text()) for r in range(2)]
    assert len(seen[0]) == len(seen[1]) == n // 2
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(n))

    w0, w1 = load_file(out / "weights0.safetensors"), load_file(out / "weights1.safetensors")
    assert w0.keys() == w1.keys()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    init = (tmp_path / "runs" / "ddp" / "last.safetensors")
    assert all(torch.equal(w0[k], v) for k, v in load_file(init).items())  # rank 0 wrote what both hold
    rows = read_csv(tmp_path / "runs" / "ddp" / "steps.csv")
    assert len(rows) == n // 2 // 8  # each step counted once: steps of the global batch of 2 x 8
