"""Atomic writes: whole or nothing, umask-respecting modes, no stray temporary files."""

import json
import os
import stat

import numpy as np
import pytest
import torch

from hyperface import fileio


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writers_round_trip_and_leave_only_the_target(tmp_path):
    fileio.write_text(tmp_path / "a.txt", "hello")
    fileio.write_json(tmp_path / "b.json", {"x": [1, 2]})
    fileio.write_npy(tmp_path / "c.npy", np.arange(5, dtype=np.int16))
    fileio.write_safetensors(tmp_path / "d.safetensors", {"w": torch.ones(2)}, {"k": "v"})
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": [1, 2]}
    assert np.load(tmp_path / "c.npy", allow_pickle=False).tolist() == [0, 1, 2, 3, 4]
    from safetensors import safe_open

    with safe_open(tmp_path / "d.safetensors", "pt") as f:
        assert f.metadata() == {"k": "v"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.npy", "d.safetensors"]


def test_files_get_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        fileio.write_text(tmp_path / "a.txt", "x")
        with fileio.atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == 0o644
    assert _mode(tmp_path / "b.bin") == 0o644


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("complete\n")
    with pytest.raises(KeyboardInterrupt):
        with fileio.atomic_open(target) as fh:
            fh.write("partial")
            raise KeyboardInterrupt
    assert target.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_temporary_name_keeps_the_extension_for_format_sniffing_writers(tmp_path):
    with fileio.atomic_path(tmp_path / "pic.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert (tmp_path / "pic.png").read_bytes() == b"png"


def test_atomic_directory_refuses_to_clobber_unless_asked(tmp_path):
    with fileio.atomic_directory(tmp_path / "shard") as d:
        (d / "x").write_text("1")
    with pytest.raises(FileExistsError):
        with fileio.atomic_directory(tmp_path / "shard") as d:
            (d / "x").write_text("2")
    assert (tmp_path / "shard" / "x").read_text() == "1"
    with fileio.atomic_directory(tmp_path / "shard", overwrite=True) as d:
        (d / "x").write_text("3")
    assert (tmp_path / "shard" / "x").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"]


def test_a_fifo_or_a_link_to_one_is_never_replaced(tmp_path):
    # Never a real device here: on a regression, running as root, it would be replaced by a file.
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    link = tmp_path / "out.jsonl"
    link.symlink_to(fifo)
    for target in (fifo, link):
        with pytest.raises(fileio.NotRegularFileError, match=r"\.jsonl is a pipe \(FIFO\), not a regular file"):
            fileio.write_text(target, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.readlink(link) == str(fifo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "pipe.jsonl"]


def test_devnull_discards_and_a_link_is_written_through(tmp_path, monkeypatch):
    fake_null = tmp_path / "null"  # stands for /dev/null (a FIFO: writing it for real would block)
    os.mkfifo(fake_null)
    monkeypatch.setattr(os, "devnull", str(fake_null))
    fileio.write_text(fake_null, "discarded")
    assert stat.S_ISFIFO(os.lstat(fake_null).st_mode)
    real = tmp_path / "results" / "r.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    fileio.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "null", "results"]
