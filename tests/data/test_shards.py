"""Shard files and PreparedDataset: atomic writes, splits, several roots, pickling, DataLoader workers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hyperface import fileio
from hyperface.data.shards import (
    FORMAT_NAME, FORMAT_VERSION, SAMPLE_KEYS, PreparedDataset, label_dtype, shard_is_complete,
    write_shard,
)

S = 24


def _make_root(root: Path, shards: dict[str, list[int]], *, num_points: int = 68, crop_size: int = S,
               context: float = 1.25) -> Path:
    """A prepared folder whose shards hold samples with the given splits; pixel value = sample id."""
    entries = []
    uid = 0
    for name, splits in shards.items():
        n = len(splits)
        images = np.zeros((n, crop_size, crop_size, 3), dtype=np.uint8)
        labels = np.zeros(n, dtype=label_dtype(num_points))
        for i, split in enumerate(splits):
            images[i] = uid % 256
            labels[i]["split"] = split
            labels[i]["detection"] = uid % 2
            labels[i]["detection_mask"] = True
            labels[i]["iou"] = uid / 100
            labels[i]["image"] = 0
            if uid % 4 == 0:
                labels[i]["gender"], labels[i]["gender_mask"] = 1, True
                labels[i]["landmarks"][:] = 0.25
                labels[i]["landmarks_mask"][:] = True
            uid += 1
        write_shard(root / "shards" / name, images, labels, {"name": name, "images": ["a.jpg"], "counts": {}})
        entries.append({"name": name, "path": f"shards/{name}", "samples": n})
    manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                "sources": [{"name": "test:src", "format": "test"}],
                "options": {"crop_size": crop_size, "context": context, "point_set": "ibug68" if num_points == 68
                            else "five", "num_points": num_points},
                "shards": entries, "counts": {"samples": uid}}
    fileio.write_json(root / "manifest.json", manifest)
    return root


def test_dataset_reads_splits_in_order_with_the_contract_types(tmp_path):
    root = _make_root(tmp_path / "p", {"00-00000": [0, 1, 0], "00-00001": [1, 0]})
    all_ = PreparedDataset(root, split=None)
    train = PreparedDataset(root)  # default split: train
    val = PreparedDataset(root, split="val")
    assert (len(all_), len(train), len(val)) == (5, 3, 2)
    assert [int(all_[i]["image"][0, 0, 0]) for i in range(5)] == [0, 1, 2, 3, 4]
    assert [int(train[i]["image"][0, 0, 0]) for i in range(3)] == [0, 2, 4]
    assert [int(val[i]["image"][0, 0, 0]) for i in range(2)] == [1, 3]
    s = train[0]
    assert tuple(s) == SAMPLE_KEYS
    assert s["image"].shape == (S, S, 3) and s["image"].dtype == np.uint8 and s["image"].flags.writeable
    assert s["landmarks"].shape == (68, 2) and s["landmarks"].dtype == np.float32
    assert s["landmarks5"].shape == (5, 2) and s["landmarks5_mask"].shape == (5,)
    assert s["pose"].shape == (3,) and s["pose"].dtype == np.float32
    assert s["detection"].dtype == np.int64 and s["gender"].dtype == np.int64
    assert s["gender_mask"] and s["gender"] == 1 and s["landmarks_mask"].all()
    assert train[-1]["index"] == 2
    assert (train.crop_size, train.context, train.point_set, train.num_points) == (S, 1.25, "ibug68", 68)
    assert train.tasks_present == ("detection", "landmarks", "gender")
    assert val.tasks_present == ("detection",)  # samples 1 and 3 carry neither gender nor landmarks
    info = all_.info(3)
    assert info["source"] == "test:src" and info["split"] == "val" and info["shard"] == "00-00001"
    assert info["iou"] == pytest.approx(0.03)
    with pytest.raises(IndexError):
        train[3]
    assert len(all_.labels()) == 5 and all_.labels()["split"].tolist() == [0, 1, 0, 1, 0]


def test_several_roots_and_geometry_mismatch(tmp_path):
    a = _make_root(tmp_path / "a", {"00-00000": [0, 0]})
    b = _make_root(tmp_path / "b", {"00-00000": [0, 0, 0]})
    ds = PreparedDataset([a, b])
    assert len(ds) == 5 and ds.manifest["counts"]["samples"] == 5
    assert [int(ds[i]["image"][0, 0, 0]) for i in range(5)] == [0, 1, 0, 1, 2]
    c = _make_root(tmp_path / "c", {"00-00000": [0]}, crop_size=32)
    with pytest.raises(ValueError, match="crop_size"):
        PreparedDataset([a, c])
    with pytest.raises(FileNotFoundError, match="manifest"):
        PreparedDataset(tmp_path / "nothing")
    with pytest.raises(ValueError, match="split"):
        PreparedDataset(a, split="test")


def test_pickles_without_open_maps_and_works_with_dataloader_workers(tmp_path):
    root = _make_root(tmp_path / "p", {f"00-{k:05d}": [0] * 7 for k in range(3)})
    ds = PreparedDataset(root, split=None)
    _ = ds[0]  # open a shard in this process
    assert ds._open
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._open == {} and len(clone) == 21
    assert np.array_equal(clone[20]["image"], ds[20]["image"])
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    seen = torch.cat([batch["image"][:, 0, 0, 0] for batch in loader]).tolist()
    assert seen == [i % 256 for i in range(21)]
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["landmarks"].shape == (3, 68, 2) and batch["detection"].dtype == torch.int64


def test_write_shard_is_atomic_and_never_overwrites(tmp_path):
    d = tmp_path / "shards" / "00-00000"
    images = np.zeros((2, S, S, 3), dtype=np.uint8)
    labels = np.zeros(2, dtype=label_dtype(5))
    write_shard(d, images, labels, {"images": []})
    assert shard_is_complete(d)
    assert json.loads((d / "shard.json").read_text())["samples"] == 2
    with pytest.raises(OSError):
        write_shard(d, images + 1, labels, {"images": []})
    assert np.load(d / "images.npy", allow_pickle=False).max() == 0  # untouched
    assert [p.name for p in (tmp_path / "shards").iterdir()] == ["00-00000"]  # no temporary left
    with pytest.raises(ValueError, match="N x S x S x 3"):
        write_shard(tmp_path / "x", np.zeros((2, S, S), dtype=np.uint8), labels, {})
    # A half-written shard (no shard.json) is not complete.
    part = tmp_path / "shards" / "00-00001"
    part.mkdir()
    np.save(part / "labels.npy", labels)
    assert not shard_is_complete(part)


def test_a_damaged_shard_is_found_on_load_with_what_to_delete(tmp_path):
    from hyperface.data.shards import ShardError

    root = _make_root(tmp_path / "p", {"00-00000": [0, 1, 0], "00-00001": [1, 0]})
    assert len(PreparedDataset(root, split=None)) == 5
    images = root / "shards" / "00-00001" / "images.npy"
    images.write_bytes(images.read_bytes()[:-S * S])  # truncated: the last crop partly gone
    with pytest.raises(ShardError, match=r"00-00001: damaged shard: images.npy is unreadable or truncated.*"
                                         r"Delete the folder .*00-00001"):
        PreparedDataset(root, split=None)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shards"][0]["samples"] = 4  # the manifest and the shard disagree
    fileio.write_json(root / "manifest.json", manifest)
    with pytest.raises(ShardError, match="00-00000: damaged shard: shard.json says 3 samples, the manifest 4"):
        PreparedDataset(root, split=None)
