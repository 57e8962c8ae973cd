"""Sampling, selection and collation of training data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperface.data.shards import PreparedDataset
from hyperface.train.config import AugmentConfig
from hyperface.train.data import EpochSampler, TrainingSet, collate, make_loader, select_indices


def test_sampler_splits_each_epoch_between_ranks():
    samplers = [EpochSampler(10, seed=3, rank=r, world_size=2) for r in range(2)]
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        parts = [[i for _, i in s] for s in samplers]
        assert sorted(parts[0] + parts[1]) == list(range(10))
        assert len(parts[0]) == len(parts[1]) == len(samplers[0]) == 5
        assert all(e == epoch for s in samplers for e, _ in s)
    orders = []
    for epoch in range(2):
        samplers[0].set_epoch(epoch)
        orders.append(samplers[0].indices().tolist())
    assert orders[0] != orders[1]  # reshuffled every epoch


def test_sampler_pads_uneven_sizes_and_skips_on_resume():
    s = [EpochSampler(7, seed=0, rank=r, world_size=3) for r in range(3)]
    got = [list(x) for x in s]
    assert [len(g) for g in got] == [3, 3, 3]
    assert {i for g in got for _, i in g} == set(range(7))
    full = [i for _, i in s[1]]
    s[1].set_start(2)
    assert [i for _, i in s[1]] == full[2:]
    assert [i for _, i in s[1]] == full  # the start applies once
    unpadded = [EpochSampler(7, shuffle=False, rank=r, world_size=3, pad=False) for r in range(3)]
    assert sorted(i for u in unpadded for _, i in u) == list(range(7))
    assert [len(u) for u in unpadded] == [3, 2, 2]


def test_collate_stacks_into_tensors():
    samples = [{"image": np.zeros((4, 4, 3), np.uint8), "detection": np.int64(i), "pose_mask": np.bool_(True),
                "landmarks": np.full((68, 2), i, np.float32)} for i in range(3)]
    batch = collate(samples)
    assert batch["image"].shape == (3, 4, 4, 3) and batch["image"].dtype == torch.uint8
    assert batch["detection"].tolist() == [0, 1, 2] and batch["pose_mask"].dtype == torch.bool
    assert batch["landmarks"].shape == (3, 68, 2)


def test_select_indices_by_labels(tiny_data):
    ds = PreparedDataset(tiny_data["faces"], "train")
    labels = ds.labels()
    all_idx = select_indices(ds)
    assert len(all_idx) == len(ds)
    pos = select_indices(ds, positives_only=True)
    assert not np.any(labels["detection_mask"][pos] & (labels["detection"][pos] == 0))
    assert np.any(~labels["detection_mask"][pos])  # landmark-only samples stay
    det = select_indices(ds, detection_only=True)
    assert labels["detection_mask"][det].all() and len(det) < len(ds)
    sub = select_indices(ds, max_samples=10)
    assert len(sub) == 10 and np.array_equal(sub, select_indices(ds, max_samples=10))


def test_oversample_draws_label_kinds_in_proportion(tiny_data):
    ds = PreparedDataset(tiny_data["faces"], "train")
    labels = ds.labels()
    nonface = labels["detection_mask"] & (labels["detection"] == 0)
    points = labels["landmarks_mask"].any(axis=1)
    assert nonface.sum() >= 4 and points.sum() >= 2
    idx = select_indices(ds, oversample={"landmarks": 2.0, "nonface": 0.5})
    counts = np.bincount(idx, minlength=len(ds))
    # Every landmark sample twice; non-faces one in two; samples of neither kind once.
    assert np.all(counts[points] == 2)
    assert abs(counts[nonface].sum() - nonface.sum() / 2) <= 1 and counts[nonface].max() <= 1
    assert np.all(counts[~points & ~nonface] == 1)
    assert len(idx) == round(2 * points.sum() + nonface.sum() / 2 + (~points & ~nonface).sum())
    # A fixed epoch size keeps the proportions; weight 0 drops a kind.
    half = select_indices(ds, oversample={"landmarks": 2.0, "nonface": 0.5}, max_samples=len(idx) // 2)
    assert len(half) == len(idx) // 2 and abs(points[half].sum() - points[idx].sum() / 2) <= 2
    assert not nonface[select_indices(ds, oversample={"nonface": 0.0})].any()
    with pytest.raises(ValueError, match="unknown sample kind"):
        select_indices(ds, oversample={"faces": 1.0})


class _Memory(torch.utils.data.Dataset):
    """Face-less crops whose (unlabelled) landmarks have 5 points: another point set's shape."""

    crop_size, context, point_set = 20, 1.25, "five"

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"image": np.full((20, 20, 3), i, np.uint8), "detection": np.int64(0), "detection_mask": np.bool_(True),
                "landmarks": np.zeros((5, 2), np.float32), "landmarks_mask": np.zeros(5, bool)}


def test_training_set_joins_parts_and_fills_missing_labels(tiny_data):
    faces = PreparedDataset(tiny_data["faces"], "train")
    ts = TrainingSet([(faces, np.arange(4)), (_Memory(), np.arange(3))], input_size=24, num_points=68,
                     point_set="ibug68", augment=AugmentConfig(), seed=0)
    assert len(ts) == 7
    s = ts[(0, 5)]
    assert s["image"].shape == (24, 24, 3) and s["index"] == 5
    assert s["landmarks"].shape == (68, 2) and not s["landmarks_mask"].any()
    assert s["gender_mask"] == False and s["pose"].shape == (3,)  # noqa: E712
    # the same (epoch, index) gives the same augmentation; another epoch another one
    np.testing.assert_array_equal(ts[(1, 2)]["image"], ts[(1, 2)]["image"])
    assert not np.array_equal(ts[(1, 2)]["landmarks"], ts[(2, 2)]["landmarks"])
    loader = make_loader(ts, EpochSampler(len(ts), seed=0), batch_size=4, num_workers=0, drop_last=False)
    batches = list(loader)
    assert [b["image"].shape[0] for b in batches] == [4, 3]
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == list(range(7))


def test_labelled_points_of_another_shape_are_an_error():
    class Labelled(_Memory):
        def __getitem__(self, i):
            s = super().__getitem__(i)
            s["landmarks_mask"] = np.ones(5, bool)
            return s

    ts = TrainingSet([(Labelled(), np.arange(3))], input_size=16, num_points=68, point_set="ibug68")
    with pytest.raises(ValueError, match="one point set"):
        ts[0]


def test_select_indices_reads_labels_of_in_memory_samples_of_any_shape():
    """Datasets without ``labels()``: the kinds come from the samples, whose images and label
    arrays may differ in shape from one sample to the next."""

    class Mixed(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            sample = {"image": np.zeros((10 + i, 12, 3), np.uint8), "detection": np.int64(i % 2),
                      "detection_mask": np.bool_(True)}
            if i >= 2:
                sample["landmarks_mask"] = np.ones(5 + i, bool)
            return sample

    assert select_indices(Mixed(), positives_only=True).tolist() == [1, 3]
    assert select_indices(Mixed(), oversample={"landmarks": 2.0}).tolist() == [0, 1, 2, 2, 3, 3]
