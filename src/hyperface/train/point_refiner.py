"""Training of the detector's point stage (:mod:`hyperface.models.point_refiner`) on the detector's own boxes.

Why on its boxes: the point stage reads faces where the detector put them, loose or off-centre, so it
learns from exactly those. :func:`collect_faces` runs a detector over the training split of datasets
with five or 68 points (MTFL, 300-W, ...), keeps for each annotated face the detector's best box
holding the centre of its points (as ``benchmarks/detector_points.py`` measures, :func:`box_of_face`),
and stores the box's surroundings (its width and height doubled about its centre, resampled to 96 x
96) with the true five points about the box's centre in units of its size. Training then cuts each batch's crops from these in one
``affine_grid`` / ``grid_sample`` call with a random box change (scale, shift, rotation, mirror) and a
brightness / contrast change, so one stored face gives endless box errors. Loss: the mean point error
over the eye-centre distance (the NME it is measured by). Validation: the NME on the validation
split's faces, cut at the detector's box unchanged.

Checkpoints go to ``OUT/checkpoints`` (``--resume`` continues from the newest, ``--time-limit`` stops
after one); the weights file ``OUT/hyperface-point-refiner.safetensors`` is written at the end.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from hyperface.data.images import ImageReadError, load_image
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs
from hyperface.inference.assets import POINTS_WEIGHTS
from hyperface.inference.crops import sample_crops
from hyperface.models.point_refiner import PointRefiner, hyperface_point_refiner
from hyperface.models.weights import load_weights_into, read_config, save_weights
from hyperface.boxes import scale_boxes
from hyperface.points import get_point_set, to_five
from hyperface.train.checkpoint import (
    CheckpointError, find_checkpoint, restore_training, rng_state, save_checkpoint,
)

__all__ = ["PointTrainOptions", "FaceCrops", "box_of_face", "collect_faces", "random_crops", "point_loss",
           "train_step", "validate", "train_point_refiner", "STORE_SIZE", "STORE_SCALE"]

log = logging.getLogger(__name__)

#: Each face is stored as the square ``STORE_SCALE`` times its box about the box's centre, at this size.
STORE_SIZE = 96
STORE_SCALE = 2.0
#: Left and right swap in a mirrored face: eye centres, nose tip, mouth corners.
MIRROR = list(get_point_set("five").flip_permutation)


@dataclass
class PointTrainOptions:
    steps: int = 6000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05         # share of the steps the learning rate rises over (one cycle)
    scale_jitter: float = 0.08   # std of the log box scale
    shift_jitter: float = 0.05   # std of the box shift, in box sizes
    rotation: float = 10.0       # std of the rotation, degrees
    photometric: float = 0.2     # std of the brightness and contrast change
    val_fraction: float = 0.1
    save_every: int = 500
    seed: int = 0
    init: str | None = None      # start from these point-stage weights (e.g. the bundled file), not fresh ones


@dataclass
class FaceCrops:
    """Faces cut around the detector's boxes: ``crops`` (N, 96, 96, 3) uint8 (twice the box) and the true
    five points ``targets`` (N, 5, 2) about the box's centre, in units of its width and height."""

    crops: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.crops)


def box_of_face(boxes: np.ndarray, truth: np.ndarray) -> int | None:
    """Index of the first (best) of ``boxes`` (K, 4) that holds the centre of the points ``truth`` (5, 2)."""
    cx, cy = truth.mean(axis=0)
    inside = np.flatnonzero((boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3]))
    return int(inside[0]) if len(inside) else None


def collect_faces(specs: Iterable[str], detector, split: str, val_fraction: float = 0.1,
                  limit: int | None = None) -> FaceCrops:
    """The faces with five (or 68) points of ``specs``' ``split`` that ``detector`` (a ``detector``
    candidate source) finds; an image that cannot be read is reported and skipped."""
    specs = list(specs)
    crops, targets, missed, images = [], [], 0, 0
    for spec in parse_data_specs(specs):
        for record in EvalDataset(spec.label, [spec.spec], split=split, val_fraction=val_fraction, limit=limit):
            try:
                image = load_image(record.image)
            except ImageReadError as exc:
                log.warning("skipped: %s", exc)
                continue
            images += 1
            boxes = detector.faces(image, points=False).boxes
            for face in record.faces:
                truth = to_five(face.landmarks, face.point_set)
                if not np.isfinite(truth).all():
                    continue
                k = box_of_face(boxes, truth)
                if k is None:
                    missed += 1
                    continue
                box = boxes[k].astype(np.float64)
                centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
                crops.append(sample_crops(image, scale_boxes(box, STORE_SCALE), STORE_SIZE)[0])
                targets.append((truth - centre) / size)
            if images % 1000 == 0:
                log.info("%s: %d images, %d faces", split, images, len(crops))
    if not crops:
        raise ValueError(f"no face with five or 68 points was found in the {split} split of {', '.join(specs)}")
    log.info("%s split: %d faces from %d images (%d annotated faces not found)", split, len(crops), images, missed)
    return FaceCrops(np.stack(crops), np.asarray(targets, np.float32))


def _normalisation(net: PointRefiner) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's input mean and std, (1, 3, 1, 1) each (its ONNX export normalises pixels with them)."""
    return torch.tensor(net.config.mean).view(1, 3, 1, 1), torch.tensor(net.config.std).view(1, 3, 1, 1)


def _cut(stored: torch.Tensor, theta: torch.Tensor, net: PointRefiner) -> torch.Tensor:
    """``net``'s input: crops (B, 3, S, S) of uint8 stored faces (B, 3, 96, 96) at the boxes ``theta`` gives,
    normalised as the network's input."""
    size = net.config.input_size
    mean, std = _normalisation(net)
    grid = F.affine_grid(theta, [len(stored), 3, size, size], align_corners=False)
    return F.grid_sample((stored.float() / 255.0 - mean) / std, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _crop_theta(n: int, context: float) -> torch.Tensor:
    """``affine_grid``'s matrices for the box itself (times ``context``) in the stored face."""
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = context / STORE_SCALE
    return theta


def random_crops(stored: torch.Tensor, targets: torch.Tensor, net: PointRefiner, opts: PointTrainOptions,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's network input and its targets: each stored face cut at a randomly changed box.

    A box scaled ``s``, shifted ``d`` (box sizes) and turned ``a`` maps the new box's units ``v`` to the
    old box's ``u = d + s R(a) v``, so the targets become ``v = R(a)^T (u - d) / s`` (mirrored: x negated
    and left and right swapped).
    """
    n = len(stored)
    context = float(net.config.arch_kwargs["context"])
    s = torch.exp(torch.randn(n, generator=gen) * opts.scale_jitter)
    d = torch.randn(n, 2, generator=gen) * opts.shift_jitter
    a = torch.randn(n, generator=gen) * math.radians(opts.rotation)
    cos, sin = torch.cos(a), torch.sin(a)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    mirror = torch.rand(n, generator=gen) < 0.5
    sign = torch.ones(n, 2)
    sign[mirror, 0] = -1.0
    # stored-face coordinates are old-box units * 2 / STORE_SCALE; the crop spans the new box times context
    linear = rot * (s * context / STORE_SCALE)[:, None, None] * sign[:, None, :]
    theta = torch.cat([linear, (d * 2 / STORE_SCALE)[:, :, None]], dim=2)
    v = torch.einsum("nji,npj->npi", rot, targets - d[:, None]) / s[:, None, None]
    v[mirror] = v[mirror][:, MIRROR] * torch.tensor([-1.0, 1.0])
    x = _cut(stored, theta, net)
    gain = 1 + opts.photometric * torch.randn(n, 1, 1, 1, generator=gen).clamp(-2, 2)
    bias = opts.photometric * torch.randn(n, 1, 1, 1, generator=gen).clamp(-2, 2)
    mean, std = _normalisation(net)
    return torch.clamp(x * gain + bias, -mean / std, (1 - mean) / std), v  # within the pixels' range


def point_loss(predicted: torch.Tensor, truth: torch.Tensor, min_eyes: float = 0.05) -> torch.Tensor:
    """Mean point distance over the true eye-centre distance (points (B, 5, 2) in box units), that is the
    NME; as a loss the distance is held at ``min_eyes`` box widths at least (a face seen from the side)."""
    eyes = (truth[:, 0] - truth[:, 1]).norm(dim=-1).clamp(min=min_eyes)
    return ((predicted - truth).norm(dim=-1).mean(dim=-1) / eyes).mean()


def train_step(net: PointRefiner, optimizer: torch.optim.Optimizer, stored: torch.Tensor, targets: torch.Tensor,
               opts: PointTrainOptions, gen: torch.Generator) -> float:
    """One optimiser step on a batch of stored faces (B, 3, 96, 96) with their targets; returns the loss."""
    x, v = random_crops(stored, targets, net, opts, gen)
    loss = point_loss(net(x)["landmarks"], v)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def validate(net: PointRefiner, faces: FaceCrops, batch: int = 512) -> float:
    """NME (eye-centre distance) of ``net`` on ``faces`` cut at the detector's boxes unchanged."""
    was = net.training
    net.eval()
    context = float(net.config.arch_kwargs["context"])
    parts = []
    for i in range(0, len(faces), batch):
        stored = torch.from_numpy(faces.crops[i:i + batch]).permute(0, 3, 1, 2)
        parts.append(net(_cut(stored, _crop_theta(len(stored), context), net))["landmarks"])
    net.train(was)
    return float(point_loss(torch.cat(parts), torch.from_numpy(faces.targets), min_eyes=1e-6))


def train_point_refiner(train: FaceCrops, val: FaceCrops | None, out: str | Path, opts: PointTrainOptions, *,
                        resume: bool = False, time_limit: float | None = None, data: list[str] | None = None) -> Path:
    """Train on ``train`` (validating on ``val`` at each checkpoint); writes ``OUT/hyperface-point-refiner.safetensors``.

    ``resume`` continues from the newest checkpoint in ``out`` (the same options and data, else a
    :class:`CheckpointError` names what changed); ``time_limit`` (seconds) stops after the first
    checkpoint past it (returning that checkpoint's weights), so a later ``resume`` goes on.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(opts.seed)
    net = hyperface_point_refiner()
    started_from = None
    if opts.init is not None:
        load_weights_into(net, opts.init)
        # what the file had been trained on, kept in this run's record: its steps alone would tell less
        started_from = {"file": Path(opts.init).name, "training": read_config(opts.init).meta.get("training")}
        log.info("initialised from %s", opts.init)
    optimizer = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=opts.lr, total_steps=opts.steps,
                                                   pct_start=opts.warmup)
    gen = torch.Generator().manual_seed(opts.seed)
    step = 0
    settings = {k: v for k, v in asdict(opts).items() if k != "save_every"} | {"data": list(data or [])}
    checkpoint = find_checkpoint(out) if resume else None
    if checkpoint is not None:
        saved = checkpoint.state.get("settings", settings)
        changed = sorted(k for k in settings if saved.get(k) != settings[k])
        if changed:
            raise CheckpointError(f"{checkpoint.weights.parent}: the run was started with other settings ("
                                  + ", ".join(f"{k} {saved.get(k)!r}, now {settings[k]!r}" for k in changed)
                                  + "); resume it with the same ones, or start a new --out")
        step = restore_training(checkpoint, net, optimizer, schedule)
        gen.set_state(checkpoint.state["generator"])
        log.info("resuming from step %d (%s)", step, checkpoint.weights.parent)
    stored = torch.from_numpy(train.crops).permute(0, 3, 1, 2)
    targets = torch.from_numpy(train.targets)
    net.train()
    started, seen, running = time.monotonic(), 0, None
    while step < opts.steps:
        index = torch.randint(0, len(stored), (opts.batch_size,), generator=gen)
        loss = train_step(net, optimizer, stored[index], targets[index], opts, gen)
        schedule.step()
        step, seen = step + 1, seen + opts.batch_size
        running = loss if running is None else 0.98 * running + 0.02 * loss
        if step % 100 == 0:
            elapsed = time.monotonic() - started
            log.info("step %d/%d loss %.4f lr %.2e %.0f crops/s (%.0f s)", step, opts.steps, running,
                     schedule.get_last_lr()[0], seen / elapsed, elapsed)
        if step % opts.save_every == 0 or step == opts.steps:
            nme = validate(net, val) if val is not None and len(val) else None
            if nme is not None:
                log.info("step %d: validation NME %.4f", step, nme)
            state = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "rng": rng_state(),
                     "generator": gen.get_state(), "settings": settings}
            save_checkpoint(out, net, state, {"run": str(out), "stage": "points", "epoch": 0, "step": step,
                                              "val_nme": nme})
            if time_limit is not None and time.monotonic() - started > time_limit and step < opts.steps:
                log.info("time limit reached at step %d; resume to go on", step)
                return out / "last.safetensors"
    net.config.meta["training"] = {"steps": step, "data": list(data or [])}
    if started_from is not None:
        net.config.meta["training"]["init"] = started_from
    return save_weights(net.eval(), out / POINTS_WEIGHTS)
