"""Training of the ``fast`` candidate network (:mod:`hyperface.models.proposal`) on prepared data.

Samples are the prepared crops' candidate boxes (the centre ``crop_size / context`` square of each
crop) resized to the 16 x 16 window with area averaging, labelled with the prepared face / non-face
labels (ignored samples stay out of the score loss); the box target is the face box inside the
candidate, from the 68 points (their tight box) or the 5 MTFL points (the 5-point square), in units
of the candidate relative to its centre. Loss: cross-entropy on the score plus ``box_weight`` times
smooth-L1 on the box of positive samples that have one. Random horizontal flips and brightness /
contrast jitter augment.

Training runs through the shared engine (:func:`hyperface.train.engine.train_one_epoch` with
:class:`ProposalStep`, the engine's meter and its Ctrl-C handling); ``hyperface train-proposals``
trains both stages (:func:`train_cascade`).

Then, as MTCNN does, hard negatives: the trained network scans whole images whose faces are all
annotated (face-less photos, group photos with every face marked), windows it accepts that overlap
no face (IoU < ``hard_iou``) become extra non-face samples, and training goes on with them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import box_iou, roi_align

from hyperface.data.boxes import five_point_box
from hyperface.data.shards import PreparedDataset
from hyperface.models.proposal import (
    REFINE_SIZE, WINDOW, ProposalNet, RefineNet, hyperface_proposal, hyperface_proposal_refine,
)
from hyperface.train.engine import Meter, train_one_epoch

__all__ = ["ProposalTrainOptions", "ProposalStep", "window_samples", "train_proposal", "mine_hard_negatives",
           "evaluate_windows", "mine_stage1", "train_refine", "train_cascade"]

log = logging.getLogger(__name__)


@dataclass
class ProposalTrainOptions:
    epochs: int = 10
    hard_epochs: int = 6
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    box_weight: float = 2.0
    hard_iou: float = 0.3
    hard_threshold: float = 0.3
    max_hard_per_image: int = 300
    widths: tuple[int, ...] | None = None  # network widths (None: the architecture's default)
    seed: int = 0


def _face_box_relative(lab: dict, point_set: str, cand_wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face box inside each candidate, relative (x0, y0, x1, y1), and whether it is known."""
    n = len(cand_wh)
    target = np.zeros((n, 4), dtype=np.float32)
    known = np.zeros(n, dtype=bool)
    lm, lm_mask = lab["landmarks"], lab["landmarks_mask"]
    if point_set == "ibug68":
        full = lm_mask.all(axis=1)
        if full.any():
            p = lm[full]
            target[full] = np.concatenate([p.min(axis=1), p.max(axis=1)], axis=1)
            known |= full
    five = lab["landmarks5_mask"].all(axis=1) & ~known
    if five.any():
        wh = cand_wh[five][:, None, :]
        box = five_point_box(lab["landmarks5"][five] * wh)  # in candidate-scaled pixels
        target[five] = box / np.concatenate([wh[:, 0], wh[:, 0]], axis=1)
        known |= five
    return target, known


def window_samples(dataset: PreparedDataset, batch: int = 4096, size: int = WINDOW) -> dict[str, torch.Tensor]:
    """All samples of ``dataset`` as ``size`` x ``size`` windows: ``x`` uint8 (N, 3, size, size), ``y``
    (N,) with -1 = ignore, ``box`` (N, 4) relative face box, ``box_mask`` (N,)."""
    s, c = dataset.crop_size, dataset.context
    lo, hi = s * (0.5 - 0.5 / c) - 0.5, s * (0.5 + 0.5 / c) - 0.5  # candidate edges in crop pixels
    roi = torch.tensor([[lo, lo, hi, hi]], dtype=torch.float32)
    xs, ys, boxes, masks = [], [], [], []
    labels_all = dataset.labels()
    for start in range(0, len(dataset), batch):
        idx = range(start, min(start + batch, len(dataset)))
        images = np.stack([dataset[i]["image"] for i in idx])
        lab = labels_all[start:start + len(images)]
        t = torch.from_numpy(images).permute(0, 3, 1, 2).float()
        rois = torch.cat([torch.arange(len(t), dtype=torch.float32)[:, None], roi.expand(len(t), 4)], dim=1)
        win = roi_align(t, rois, (size, size), 1.0, -1, aligned=False)
        xs.append(win.round().clamp(0, 255).to(torch.uint8))
        y = np.where(lab["detection_mask"], lab["detection"], -1).astype(np.int64)
        ys.append(torch.from_numpy(y))
        cand = lab["box"]
        wh = np.stack([cand[:, 2] - cand[:, 0], cand[:, 3] - cand[:, 1]], axis=1).astype(np.float32)
        tgt, known = _face_box_relative({k: lab[k] for k in ("landmarks", "landmarks_mask", "landmarks5",
                                                             "landmarks5_mask")}, dataset.point_set, wh)
        boxes.append(torch.from_numpy(tgt))
        masks.append(torch.from_numpy(known))
    return {"x": torch.cat(xs), "y": torch.cat(ys), "box": torch.cat(boxes), "box_mask": torch.cat(masks)}


def _normalise(x: torch.Tensor, net: ProposalNet | RefineNet) -> torch.Tensor:
    mean = torch.tensor(net.config.mean).view(1, 3, 1, 1)
    std = torch.tensor(net.config.std).view(1, 3, 1, 1)
    return (x.float() / 255.0 - mean) / std


def _augment(x: torch.Tensor, box: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(x)
    flip = torch.rand(n, generator=gen) < 0.5
    x = x.clone()
    box = box.clone()
    x[flip] = x[flip].flip(-1)
    box[flip] = torch.stack([-box[flip, 2], box[flip, 1], -box[flip, 0], box[flip, 3]], dim=1)
    x = x.float()
    gain = torch.exp(torch.randn(n, 1, 1, 1, generator=gen) * 0.25)
    bias = torch.randn(n, 1, 1, 1, generator=gen) * 20
    grey = torch.rand(n, generator=gen) < 0.1
    x[grey] = x[grey].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * gain + mean + bias).clamp(0, 255), box


class ProposalStep(nn.Module):
    """The candidate network and its loss in one module, with the engine's step contract
    (:class:`~hyperface.train.engine.TrainStep`): returns the losses (``total``, ``score``, ``box``)
    and the label count of each term. Score: class-weighted cross-entropy; box: ``box_weight``
    times smooth-L1 on the positive samples that have a box."""

    def __init__(self, net: ProposalNet | RefineNet, class_weight: torch.Tensor, box_weight: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("class_weight", class_weight, persistent=False)
        self.box_weight = box_weight

    def forward(self, images: torch.Tensor,
                targets: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        logits, pred = self.net.forward_box(images)
        y = targets["y"]
        score = F.cross_entropy(logits, y, weight=self.class_weight)
        losses = {"total": score, "score": score}
        m = targets["box_mask"] & (y == 1)
        if m.any():
            box = F.smooth_l1_loss(pred[m], targets["box"][m], beta=0.1)
            losses["total"] = score + self.box_weight * box
            losses["box"] = box
        return losses, {"score": torch.tensor(len(y)), "box": m.sum()}


class _WindowBatches:
    """One epoch of augmented, normalised window batches in a fresh random order (from ``gen``)."""

    def __init__(self, net: ProposalNet | RefineNet, data: dict[str, torch.Tensor], batch_size: int,
                 gen: torch.Generator) -> None:
        self.net, self.data, self.batch_size, self.gen = net, data, batch_size, gen

    def __len__(self) -> int:
        return math.ceil(len(self.data["y"]) / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        d = self.data
        perm = torch.randperm(len(d["y"]), generator=self.gen)
        for start in range(0, len(perm), self.batch_size):
            i = perm[start:start + self.batch_size]
            xb, bb = _augment(d["x"][i], d["box"][i], self.gen)
            yield {"image": _normalise(xb, self.net), "y": d["y"][i], "box": bb, "box_mask": d["box_mask"][i]}


def _inputs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return batch["image"], {k: batch[k] for k in ("y", "box", "box_mask")}


def _fit(net: ProposalNet | RefineNet, data: dict[str, torch.Tensor], epochs: int, opts: ProposalTrainOptions,
         gen: torch.Generator) -> None:
    """Train ``net`` on the labelled windows of ``data`` with the shared epoch loop and meter:
    AdamW with one-cycle learning rate, classes balanced by weight (recall matters)."""
    use = data["y"] >= 0
    data = {k: v[use] for k, v in data.items()}
    batches = _WindowBatches(net, data, opts.batch_size, gen)
    opt = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts.lr, total_steps=max(1, epochs * len(batches)),
                                                pct_start=0.1)
    y = data["y"]
    pos_weight = float((y == 0).sum()) / max(1.0, float((y == 1).sum()))
    step_module = ProposalStep(net, torch.tensor([1.0, max(1.0, pos_weight)]), opts.box_weight)
    net.train()
    step = 0
    for epoch in range(epochs):
        t0, meter = time.perf_counter(), Meter()
        step, _ = train_one_epoch(step_module, opt, sched, batches, device=torch.device("cpu"), meter=meter,
                                  step=step, prepare=_inputs)
        means = meter.means()
        log.info("%s epoch %d/%d: loss %.4f (score %.4f, box %.4f) (%.0f s)", net.config.arch, epoch + 1, epochs,
                 means.get("loss_total", math.nan), means.get("loss_score", math.nan),
                 means.get("loss_box", math.nan), time.perf_counter() - t0)
    net.eval()


@torch.no_grad()
def evaluate_windows(net: ProposalNet | RefineNet, data: dict[str, torch.Tensor],
                     threshold: float = 0.5) -> dict[str, float]:
    """Recall of faces, false-positive rate on non-faces and box error of a sample set."""
    net.eval()
    y = data["y"]
    probs, preds = [], []
    for start in range(0, len(y), 4096):
        logits, box = net.forward_box(_normalise(data["x"][start:start + 4096], net))
        probs.append(torch.softmax(logits, 1)[:, 1])
        preds.append(box)
    p, box = torch.cat(probs), torch.cat(preds)
    pos, neg = y == 1, y == 0
    m = pos & data["box_mask"]
    return {
        "recall": float((p[pos] >= threshold).float().mean()) if pos.any() else float("nan"),
        "false_positive_rate": float((p[neg] >= threshold).float().mean()) if neg.any() else float("nan"),
        "box_l1": float((box[m] - data["box"][m]).abs().mean()) if m.any() else float("nan"),
        "positives": int(pos.sum()),
        "negatives": int(neg.sum()),
    }


def _decoded(records: Sequence) -> Iterator[tuple[Any, np.ndarray]]:
    """(record, RGB image) for each record whose image decodes; the others are logged and skipped."""
    from hyperface.data.images import ImageReadError, load_image

    for rec in records:
        try:
            yield rec, load_image(rec.image)
        except ImageReadError as exc:
            log.warning("%s", exc)


def mine_hard_negatives(net: ProposalNet, records: Sequence, threshold: float, hard_iou: float,
                        max_per_image: int, min_face: float = 20.0, seed: int = 0) -> torch.Tensor:
    """16 x 16 windows (uint8 (M, 3, 16, 16)) that ``net`` accepts on ``records``' images but that
    overlap no annotated face by IoU >= ``hard_iou``. Records must have all their faces annotated."""
    from hyperface.inference.proposals.fast import FastProposals
    from hyperface.runtime import RuntimeOptions

    scanner = FastProposals(net, refine=None, min_face=min_face, threshold=threshold, nms_iou=0.7,
                            max_candidates=10 * max_per_image,
                            options=RuntimeOptions("torch"))
    gen = np.random.default_rng(seed)
    out = []
    for rec, image in _decoded(records):
        windows = torch.from_numpy(scanner.windows(image))
        if len(windows) == 0:
            continue
        faces = np.array([f.box for f in rec.faces], dtype=np.float32).reshape(-1, 4)
        if len(faces):
            iou = box_iou(windows, torch.from_numpy(faces)).max(dim=1).values
            windows = windows[iou < hard_iou]
        if len(windows) > max_per_image:
            windows = windows[torch.from_numpy(gen.choice(len(windows), max_per_image, replace=False))]
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        crops = roi_align(t, [windows], (WINDOW, WINDOW), 1.0, -1, aligned=False)
        out.append(crops.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else torch.zeros((0, 3, WINDOW, WINDOW), dtype=torch.uint8)


def train_proposal(prepared: str | Path | Sequence[str | Path], out: str | Path, *,
                   hard_sources: Sequence[str] = (), options: ProposalTrainOptions | None = None) -> dict:
    """Train the proposal network on prepared folder(s), mine hard negatives on ``hard_sources``
    (dataset specs whose images have every face annotated), save weights to ``out``; returns metrics."""
    from hyperface.data.readers import open_dataset
    from hyperface.models.weights import save_weights

    opts = options or ProposalTrainOptions()
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    t0 = time.perf_counter()
    train = window_samples(PreparedDataset(prepared, split="train"))
    val = window_samples(PreparedDataset(prepared, split="val"))
    log.info("proposal data: %d train, %d val windows (%.0f s)", len(train["y"]), len(val["y"]),
             time.perf_counter() - t0)
    net = hyperface_proposal() if opts.widths is None else hyperface_proposal(widths=tuple(opts.widths))
    _fit(net, train, opts.epochs, opts, gen)
    metrics = {"stage1_val": evaluate_windows(net, val)}
    log.info("proposal stage 1 val: %s", metrics["stage1_val"])
    if hard_sources and opts.hard_epochs > 0:
        records = [r for spec in hard_sources for r in open_dataset(spec)]
        hard = mine_hard_negatives(net, records, opts.hard_threshold, opts.hard_iou, opts.max_hard_per_image,
                                   seed=opts.seed)
        log.info("proposal: %d hard negatives from %d images", len(hard), len(records))
        n = len(hard)
        train = {"x": torch.cat([train["x"], hard]), "y": torch.cat([train["y"], torch.zeros(n, dtype=torch.long)]),
                 "box": torch.cat([train["box"], torch.zeros(n, 4)]),
                 "box_mask": torch.cat([train["box_mask"], torch.zeros(n, dtype=torch.bool)])}
        _fit(net, train, opts.hard_epochs, opts, gen)
        metrics["hard_negatives"] = n
        metrics["stage2_val"] = evaluate_windows(net, val)
        log.info("proposal stage 2 val: %s", metrics["stage2_val"])
    net.config.meta = {"trained_on": [str(p) for p in ([prepared] if isinstance(prepared, (str, Path)) else prepared)],
                       "hard_negative_sources": list(hard_sources), "metrics": metrics,
                       "note": "hyperface fast candidate stage; trained by hyperface.train.proposal"}
    save_weights(net, out)
    return metrics



def mine_stage1(stage1: ProposalNet, records: Sequence, *, threshold: float = 0.5, neg_iou: float = 0.3,
                pos_iou: float = 0.65, max_per_image: int = 300, min_face: float = 20.0,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """Stage-1 boxes on ``records``' whole images (all faces annotated) as refine samples: IoU <
    ``neg_iou`` with every face = non-face, >= ``pos_iou`` = face with its box target, else left out."""
    from hyperface.inference.proposals.fast import FastProposals
    from hyperface.runtime import RuntimeOptions

    scanner = FastProposals(stage1, refine=None, min_face=min_face, threshold=threshold, nms_iou=0.7,
                            max_candidates=max_per_image,
                            options=RuntimeOptions("torch"))
    gen = np.random.default_rng(seed)
    xs, ys, boxes, masks = [], [], [], []
    for rec, image in _decoded(records):
        cand = torch.from_numpy(scanner(image))
        if len(cand) == 0:
            continue
        faces = torch.tensor(np.array([f.box for f in rec.faces], dtype=np.float32).reshape(-1, 4))
        if len(faces):
            iou = box_iou(cand, faces)
            best, which = iou.max(dim=1)
        else:
            best, which = torch.zeros(len(cand)), torch.zeros(len(cand), dtype=torch.long)
        y = torch.full((len(cand),), -1, dtype=torch.long)
        y[best < neg_iou] = 0
        y[best >= pos_iou] = 1
        keep = torch.nonzero(y >= 0).squeeze(1)
        if len(keep) > max_per_image:
            keep = keep[torch.from_numpy(gen.choice(len(keep), max_per_image, replace=False))]
        cand, y, which = cand[keep], y[keep], which[keep]
        c = (cand[:, :2] + cand[:, 2:]) / 2
        wh = (cand[:, 2:] - cand[:, :2]).clamp_min(1e-3)
        target = torch.zeros(len(cand), 4)
        if len(faces):
            f = faces[which]
            target = torch.cat([(f[:, :2] - c) / wh, (f[:, 2:] - c) / wh], dim=1)
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        crops = roi_align(t, [cand], (REFINE_SIZE, REFINE_SIZE), 1.0, -1, aligned=False)
        xs.append(crops.round().clamp(0, 255).to(torch.uint8))
        ys.append(y)
        boxes.append(target)
        masks.append(y == 1)
    if not xs:
        z = torch.zeros(0, dtype=torch.long)
        return {"x": torch.zeros((0, 3, REFINE_SIZE, REFINE_SIZE), dtype=torch.uint8), "y": z,
                "box": torch.zeros(0, 4), "box_mask": z.bool()}
    return {"x": torch.cat(xs), "y": torch.cat(ys), "box": torch.cat(boxes), "box_mask": torch.cat(masks)}


def train_refine(prepared: str | Path | Sequence[str | Path], out: str | Path, stage1: str | Path, *,
                 mine_sources: Sequence[str] = (), options: ProposalTrainOptions | None = None) -> dict:
    """Train the second stage on prepared crops (24 x 24) plus stage-1 boxes mined on ``mine_sources``
    (whole images with every face annotated); save to ``out``; returns validation metrics."""
    from hyperface.data.readers import open_dataset
    from hyperface.models.weights import load_model, save_weights

    opts = options or ProposalTrainOptions()
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    train = window_samples(PreparedDataset(prepared, split="train"), size=REFINE_SIZE)
    val = window_samples(PreparedDataset(prepared, split="val"), size=REFINE_SIZE)
    if mine_sources:
        net1 = load_model(stage1)
        records = [r for spec in mine_sources for r in open_dataset(spec)]
        mined = mine_stage1(net1, records, seed=opts.seed)
        log.info("refine: %d mined stage-1 samples (%d faces) from %d images", len(mined["y"]),
                 int((mined["y"] == 1).sum()), len(records))
        train = {k: torch.cat([train[k], mined[k]]) for k in train}
    net = hyperface_proposal_refine() if opts.widths is None else hyperface_proposal_refine(widths=tuple(opts.widths))
    _fit(net, train, opts.epochs, opts, gen)
    metrics = {"val": evaluate_windows(net, val)}
    log.info("refine val: %s", metrics["val"])
    net.config.meta = {"trained_on": [str(p) for p in ([prepared] if isinstance(prepared, (str, Path)) else prepared)],
                       "mined_on": list(mine_sources), "stage1": str(stage1), "metrics": metrics,
                       "note": "hyperface fast candidate stage 2; trained by hyperface.train.proposal"}
    save_weights(net, out)
    return metrics


def train_cascade(prepared: str | Path | Sequence[str | Path], out: str | Path, *, mine: Sequence[str] = (),
                  options: ProposalTrainOptions | None = None) -> dict:
    """Both stages into the folder ``out`` (``hyperface-proposal.safetensors`` and
    ``hyperface-proposal-refine.safetensors``, the files the ``fast`` source loads): stage 1 with
    hard negatives mined on ``mine``, then stage 2 on the crops plus stage-1 boxes mined there.
    Returns both stages' validation metrics (``hyperface train-proposals`` runs this)."""
    out = Path(out)
    stage1 = out / "hyperface-proposal.safetensors"
    m1 = train_proposal(prepared, stage1, hard_sources=mine, options=options)
    m2 = train_refine(prepared, out / "hyperface-proposal-refine.safetensors", stage1, mine_sources=mine,
                      options=options)
    return {"stage1": m1, "stage2": m2}
