"""From prepared folders to batches: sample selection, augmentation per sample, sampling, collation.

* :func:`select_indices` picks samples by their labels alone (positives only, detection-labelled
  only, no non-faces, an evenly spread subset, a mix re-weighted by label kind) without decoding
  any image. Re-weighting is how a small point-set source is not drowned by large 5-point,
  gender-only and non-face sources: ``{"landmarks": 2, "nonface": 0.2}`` draws every 68-point crop
  twice and every fifth non-face.
* :class:`TrainingSet` joins several datasets, augments each sample with a generator seeded from
  (seed, epoch, index), so augmentation is the same whichever worker or process draws it, and
  resizes to the model input.
* :class:`EpochSampler` is a distributed sampler: one shuffled order per epoch shared by every
  process, each process taking every ``world_size``-th sample (padded to equal length), with a start
  offset to continue an epoch after ``--resume``. It yields ``(epoch, index)`` so that the dataset
  knows the epoch in any worker.
* :func:`collate` stacks sample dicts into tensors (images stay uint8 NHWC; the engine normalises
  them on the device).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hyperface.points import get_point_set
from hyperface.tasks import SAMPLE_KINDS
from hyperface.train.augment import augment_kwargs, augment_sample
from hyperface.train.config import AugmentConfig

__all__ = [
    "sample_weights",
    "select_indices",
    "TrainingSet",
    "EpochSampler",
    "collate",
    "make_loader",
    "LABEL_KEYS",
]

# Per-task target keys; a sample without them gets zeros and a False mask (``pose_class``, MTFL's
# 1..5, has no mask: 0 means none).
LABEL_KEYS = ("detection", "detection_mask", "landmarks", "landmarks_mask", "visibility", "visibility_mask",
              "landmarks5", "landmarks5_mask", "pose", "pose_mask", "gender", "gender_mask", "pose_class")


def _label_kinds(dataset: Dataset) -> dict[str, np.ndarray]:
    """Per sample: its face / non-face label and which label kinds it carries.

    From ``dataset.labels()`` when it has one (no image decoded), else from the samples themselves
    (small in-memory datasets only). ``landmarks5`` counts only samples without own-set landmarks.
    """
    n = len(dataset)
    if hasattr(dataset, "labels"):
        rows = dataset.labels()

        def flag(key: str) -> np.ndarray:  # any entry of the mask set
            return rows[key].reshape(n, -1).any(axis=1) if key in rows.dtype.names else np.zeros(n, bool)

        det = np.asarray(rows["detection"], dtype=np.int64)
    else:
        samples = [dataset[i] for i in range(n)]

        def flag(key: str) -> np.ndarray:
            return np.array([bool(np.any(s.get(key, False))) for s in samples], dtype=bool)

        det = np.array([int(s.get("detection", 0)) for s in samples], dtype=np.int64)
    det_mask, own = flag("detection_mask"), flag("landmarks_mask")
    return {"detection_mask": det_mask, "nonface": det_mask & (det == 0), "landmarks": own,
            "landmarks5": flag("landmarks5_mask") & ~own, "pose": flag("pose_mask"), "gender": flag("gender_mask")}


def sample_weights(kinds: dict[str, np.ndarray], factors: dict[str, float]) -> np.ndarray:
    """Each sample's draw weight: the largest factor among the kinds it carries (1 if none listed)."""
    n = len(kinds["nonface"])
    best = np.full(n, -np.inf)
    for kind, factor in factors.items():
        if kind not in SAMPLE_KINDS:
            raise ValueError(f"unknown sample kind {kind!r}; choose from {list(SAMPLE_KINDS)}")
        best = np.where(kinds[kind], np.maximum(best, float(factor)), best)
    return np.where(np.isfinite(best), best, 1.0)


def select_indices(dataset: Dataset, *, positives_only: bool = False, detection_only: bool = False,
                   no_negatives: bool = False, max_samples: int = 0,
                   oversample: dict[str, float] | None = None,
                   scale: np.ndarray | None = None) -> np.ndarray:
    """Indices of the samples to use, chosen from labels only.

    ``positives_only``/``no_negatives`` drop labelled non-faces; ``detection_only`` keeps samples
    with a face/non-face label; ``max_samples`` keeps an evenly spread subset (the same every run).
    ``oversample`` maps label kinds (:data:`SAMPLE_KINDS`) to draw weights: the result then holds
    ``max_samples`` (or, when 0, the sum of the weights) indices spread in proportion to the
    weights, a sample of weight 2 twice, of weight 0.25 one in four (systematic sampling, so the
    same every run). ``scale`` (one factor per sample of ``dataset``) multiplies the draw weights
    (``data.train_weights``: a factor per prepared folder).
    """
    n = len(dataset)
    keep = np.ones(n, dtype=bool)
    weigh = bool(oversample) or scale is not None
    kinds = _label_kinds(dataset) if (positives_only or no_negatives or detection_only or weigh) else None
    if positives_only or no_negatives:
        keep &= ~kinds["nonface"]
    if detection_only:
        keep &= kinds["detection_mask"]
    idx = np.flatnonzero(keep)
    if weigh:
        weights = sample_weights(kinds, oversample or {})[idx]
        if scale is not None:
            weights = weights * np.asarray(scale, dtype=np.float64)[idx]
        total = float(weights.sum())
        count = int(max_samples) if max_samples else int(round(total))
        if total <= 0 or count <= 0:
            return np.zeros(0, dtype=np.int64)
        positions = (np.arange(count) + 0.5) * (total / count)
        idx = idx[np.minimum(np.searchsorted(np.cumsum(weights), positions, side="right"), len(idx) - 1)]
    elif max_samples and len(idx) > max_samples:
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_samples).round().astype(np.int64))]
    return idx.astype(np.int64)


class TrainingSet(Dataset):
    """Samples of one or more datasets (each with its own indices), augmented and resized.

    ``parts`` is a list of ``(dataset, indices)``; every dataset has ``crop_size``/``context``
    attributes (as :class:`~hyperface.data.shards.PreparedDataset`) and yields sample dicts.
    ``num_points``/``point_set`` are the model's: samples whose landmarks have another shape must be
    unlabelled (e.g. prepared non-face folders) and get zeros. ``augment=None`` gives the plain
    candidate box (validation); ``self_occlusion`` (a margin in degrees, default: the augment
    section's) still labels what a turned head hides, so validation is measured on the same labels.
    ``input_context``: the network sees each box enlarged this many times (the model's window, its
    ``arch_kwargs["context"]``); a stored crop should hold that much around the box (its own ``context``).
    Items are dicts of numpy values with ``index`` the position here.
    """

    def __init__(self, parts: Sequence[tuple[Dataset, np.ndarray]], *, input_size: int, num_points: int,
                 point_set: str | None, augment: AugmentConfig | None = None, seed: int = 0,
                 self_occlusion: float | None = None, input_context: float = 1.0) -> None:
        self.parts = [(ds, np.asarray(idx, dtype=np.int64)) for ds, idx in parts]
        self.input_size = int(input_size)
        self.num_points = int(num_points)
        self.point_set = point_set
        self.augment = augment
        self.seed = int(seed)
        self.input_context = float(input_context)
        self.self_occlusion = float(self_occlusion if self_occlusion is not None
                                    else augment.self_occlusion if augment is not None else 0.0)
        self._offsets = np.concatenate([[0], np.cumsum([len(idx) for _, idx in self.parts])]).astype(np.int64)
        self._part_point_sets = []
        for ds, _ in self.parts:
            name = getattr(ds, "point_set", None)
            self._part_point_sets.append(get_point_set(name) if name else None)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def source(self, i: int) -> tuple[Dataset, int]:
        """The dataset and index within it of sample ``i``."""
        p = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return self.parts[p][0], int(self.parts[p][1][i - self._offsets[p]])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        p = int(np.searchsorted(self._offsets, i, side="right") - 1)
        ds, j = self.parts[p][0], int(self.parts[p][1][i - self._offsets[p]])
        sample = ds[j]
        a = self.augment
        rng = np.random.default_rng([self.seed, int(epoch), int(i)]) if a is not None else None
        kwargs = {**augment_kwargs(a), "self_occlusion": self.self_occlusion}
        sample = augment_sample(sample, rng, context=float(ds.context), out_size=self.input_size,
                                point_set=self._part_point_sets[p], input_context=self.input_context, **kwargs)
        sample = self._conform(sample, f"training part {p} (sample {j})")
        sample["index"] = np.int64(i)
        return sample

    def _conform(self, sample: dict[str, Any], where: str) -> dict[str, Any]:
        """Fill missing labels with zeros/False; resize unlabelled landmarks to the model's count."""
        n = self.num_points
        shapes = {"landmarks": ((n, 2), np.float32), "landmarks_mask": ((n,), bool),
                  "visibility": ((n,), np.float32), "visibility_mask": ((n,), bool),
                  "landmarks5": ((5, 2), np.float32), "landmarks5_mask": ((5,), bool),
                  "pose": ((3,), np.float32), "pose_mask": ((), bool), "detection": ((), np.int64),
                  "detection_mask": ((), bool), "gender": ((), np.int64), "gender_mask": ((), bool),
                  "pose_class": ((), np.int64)}
        out = {"image": sample["image"]}
        for key, (shape, dtype) in shapes.items():
            value = sample.get(key)
            if value is None or np.shape(value) != shape:
                mask_key = key if key.endswith("_mask") else f"{key}_mask"
                if value is not None and np.any(sample.get(mask_key, False)):
                    raise ValueError(f"{where}: {key} has shape {np.shape(value)} but the model needs "
                                     f"{shape}; train on prepared folders with one point set")
                value = np.zeros(shape, dtype=dtype)
            out[key] = np.asarray(value, dtype=dtype)
        return out


class EpochSampler(Sampler):
    """Shuffled, distributed, resumable: yields ``(epoch, index)`` for this process's share.

    Every process draws the same permutation from (seed, epoch), pads it by wrapping round to a
    multiple of ``world_size`` and takes positions ``rank, rank + world_size, ...`` (as
    :class:`torch.utils.data.DistributedSampler` does). ``set_start(k)`` skips the first ``k`` of
    this process's samples once (to continue an interrupted epoch).
    """

    def __init__(self, size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 pad: bool = True) -> None:
        if size < 1:
            raise ValueError("EpochSampler needs at least one sample")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world size {world_size}")
        self.size, self.shuffle, self.seed = int(size), shuffle, int(seed)
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0
        self._start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_start(self, start: int) -> None:
        self._start = int(start)

    def indices(self) -> np.ndarray:
        """This process's indices for the current epoch (ignoring the start offset)."""
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.size) if self.shuffle
                 else np.arange(self.size))
        if self.pad:
            total = math.ceil(self.size / self.world_size) * self.world_size
            order = np.resize(order, total)  # wraps round
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.size / self.world_size)
        return len(range(self.rank, self.size, self.world_size))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start, self._start = self._start, 0
        for i in self.indices()[start:]:
            yield self.epoch, int(i)


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack sample dicts key by key into tensors."""
    return {key: torch.from_numpy(np.stack([np.asarray(s[key]) for s in samples])) for key in samples[0]}


def _worker_init(_: int) -> None:
    # One thread per worker: the workers themselves are the parallelism.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class _ForkSafeLoader(DataLoader):
    """Stops OpenCV's thread pool while the workers fork: a forked copy of a live pool hangs the worker
    in ``cv2.setNumThreads`` (e.g. after ``prepare`` gave the caller its OpenCV threads back)."""

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.num_workers == 0:
            return super().__iter__()
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return super().__iter__()
        finally:
            cv2.setNumThreads(threads)


def make_loader(dataset: Dataset, sampler: EpochSampler, *, batch_size: int, num_workers: int,
                drop_last: bool, pin_memory: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader over ``sampler`` with :func:`collate`; its own generator keeps the global RNG alone."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return _ForkSafeLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate, drop_last=drop_last, pin_memory=pin_memory,
                      worker_init_fn=_worker_init if num_workers > 0 else None, generator=generator,
                      persistent_workers=False)
