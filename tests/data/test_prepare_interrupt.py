"""Ctrl-C during ``hyperface prepare``: one line naming what is kept, exit status 130, and the same
command resumes to the result an uninterrupted run gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hyperface.cli.main import main
from hyperface.data import prepare as P
from hyperface.data.shards import PreparedDataset, shard_is_complete

ARGS = ["--no-progress", "--crop-size", "32", "--ss-mode", "none", "--images-per-shard", "1", "--min-box", "6",
        "--val-fraction", "0"]


def _source(root, gen, images: int) -> str:
    for k in range(images):
        gen.pts(root / f"f{k:02d}.pts", gen.points(68, offset=(10 + k, 8), scale=40))
        gen.image(root / f"f{k:02d}.png", size=(80, 64), color=(40 * k % 255, 90, 30))
    return f"pts:{root}"


def _samples(out) -> list[np.ndarray]:
    ds = PreparedDataset(out, split=None)
    return [ds[i]["image"] for i in range(len(ds))]


def test_ctrl_c_is_one_line_exit_130_and_the_same_command_resumes(tmp_path, gen, monkeypatch, capsys):
    source = _source(tmp_path / "src", gen, 3)
    out = tmp_path / "out"
    real, calls = P.process_shard, []

    def interrupted_at_the_second(task, opts, folder):
        calls.append(task.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task, opts, folder)

    monkeypatch.setattr(P, "process_shard", interrupted_at_the_second)
    try:
        status = main(["prepare", "--source", source, "--out", str(out), *ARGS])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C left the command as a KeyboardInterrupt traceback")
    assert status == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"hyperface prepare: interrupted (1 of 3 shards done and kept in {out}); run the same command "
                   f"again to resume")
    monkeypatch.undo()
    assert main(["prepare", "--source", source, "--out", str(out), *ARGS]) == 0
    assert main(["prepare", "--source", source, "--out", str(tmp_path / "clean"), *ARGS]) == 0
    resumed, clean = _samples(out), _samples(tmp_path / "clean")
    assert len(resumed) == len(clean) > 0 and all(np.array_equal(a, b) for a, b in zip(resumed, clean))


def test_ctrl_c_to_the_terminal_group_with_workers_prints_no_traceback(tmp_path, gen):
    source = _source(tmp_path / "src", gen, 24)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hyperface.cli.main", "prepare", "--source", source, "--out", str(out),
           "--workers", "2", *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a terminal's job is
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "shards").is_dir() and any(shard_is_complete(p) for p in (out / "shards").iterdir()):
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: every process of the group gets it
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("hyperface prepare: interrupted (")
