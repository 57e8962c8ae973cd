"""Landmark snapshots: the same validation faces, predicted after every validated epoch.

The study's picture of how landmarks settle during training (one row per epoch, one column per
face) needs the model's predictions at each epoch, which the losses in ``metrics.csv`` do not keep.
After each validation the main process predicts a fixed set of validation faces (picked once, evenly
spread over the validation samples that are faces with every point labelled) and writes
``landmark_snapshots/epoch-NNN.npz`` in the stage's folder: the model-input crops (uint8), the
labelled and the predicted points in crop pixels. ``hyperface experiments report`` draws them.
Files are plain arrays (``np.load(..., allow_pickle=False)``), written atomically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hyperface import fileio
from hyperface.data.shards import relative_to_crop
from hyperface.models import to_input_tensor

__all__ = ["SNAPSHOT_DIR", "Snapshot", "pick_faces", "take_snapshot", "write_snapshot", "read_snapshots"]

SNAPSHOT_DIR = "landmark_snapshots"
_NAME = re.compile(r"^epoch-(\d+)\.npz$")


@dataclass
class Snapshot:
    """One epoch's predictions on the fixed faces; points in pixels of the ``images``."""

    epoch: int
    images: np.ndarray  # (N, S, S, 3) uint8
    truth: np.ndarray  # (N, P, 2) float32
    pred: np.ndarray  # (N, P, 2) float32


def pick_faces(dataset, n: int = 8, *, scan: int = 400) -> list[int]:
    """Indices of up to ``n`` validation samples that are faces with every landmark labelled.

    Looks at up to ``scan`` samples evenly spread over ``dataset`` (each decoded once), and takes
    ``n`` of the qualifying ones evenly spread again, so the set is the same at every epoch and in
    every run on the same data.
    """
    size = len(dataset)
    if size == 0 or n <= 0:
        return []
    probe = np.unique(np.linspace(0, size - 1, num=min(scan, size)).round().astype(int))
    good = []
    for i in probe:
        s = dataset[int(i)]
        mask = np.asarray(s.get("landmarks_mask", []), dtype=bool)
        if mask.size and mask.all() and bool(s.get("detection_mask", True)) and int(s.get("detection", 1)) == 1:
            good.append(int(i))
    if len(good) <= n:
        return good
    return [good[int(k)] for k in np.linspace(0, len(good) - 1, num=n).round()]


@torch.no_grad()
def take_snapshot(model: nn.Module, dataset, indices: list[int], epoch: int,
                  device: torch.device | str = "cpu") -> Snapshot:
    """The model's landmarks on ``dataset[indices]`` (unaugmented samples), in crop pixels.

    Landmarks are candidate-relative (``(x - cx) / w``, the box spanning -0.5..0.5) and the crop is
    what the network sees, the box enlarged by the training set's ``input_context`` (the model's window;
    1: the box itself): :func:`~hyperface.data.shards.relative_to_crop`.
    """
    samples = [dataset[i] for i in indices]
    images = np.stack([s["image"] for s in samples]).astype(np.uint8)
    size = images.shape[1]
    context = float(getattr(dataset, "input_context", 1.0))
    was_training = model.training
    model.eval()
    try:
        out = model(to_input_tensor(images, model.config, device=device))["landmarks"].float().cpu().numpy()
    finally:
        model.train(was_training)
    truth = np.stack([np.asarray(s["landmarks"], dtype=np.float32) for s in samples])
    return Snapshot(int(epoch), images, relative_to_crop(truth, context, size).astype(np.float32),
                    relative_to_crop(out, context, size).astype(np.float32))


def write_snapshot(folder: str | Path, snap: Snapshot) -> Path:
    """``folder/landmark_snapshots/epoch-NNN.npz``, written atomically."""
    path = Path(folder) / SNAPSHOT_DIR / f"epoch-{snap.epoch:03d}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, epoch=np.int64(snap.epoch), images=snap.images, truth=snap.truth, pred=snap.pred)
    return path


def read_snapshots(folder: str | Path) -> list[Snapshot]:
    """Every snapshot of a stage folder, by epoch (none: an empty list)."""
    base = Path(folder) / SNAPSHOT_DIR
    if not base.is_dir():
        return []
    found = []
    for path in base.iterdir():
        if _NAME.match(path.name):
            with np.load(path, allow_pickle=False) as z:
                found.append(Snapshot(int(z["epoch"]), z["images"], z["truth"], z["pred"]))
    return sorted(found, key=lambda s: s.epoch)
