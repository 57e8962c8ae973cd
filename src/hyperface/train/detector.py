"""Training of the single-pass face detector (:mod:`hyperface.models.detector`) on whole photos.

Why a separate loop: the detector learns from whole images with every face boxed (the face-mask
photos, dlib's photos, ``composite`` photos) and from single-face photos (300-W, MTFL), not from the
prepared crops the HyperFace networks use. Each sample is a ``crop`` x ``crop`` window cut from a
photo at a random scale (so that one of its faces is 10 to 300 pixels: every level gets faces),
flipped, with synthetic face masks drawn on faces that have landmarks, colour jitter, blur, noise,
JPEG and greyscale (the degradations of :mod:`hyperface.train.occlusion`).

Targets (FCOS-style, :func:`assign_targets`): at each level, a cell is a positive of the smallest face
whose size (sqrt of box area) is in the level's range and whose centre region (1.5 strides around the
box centre, inside the box) holds the cell; its box target is that face's box. Cells on faces marked
``ignore`` (too small to annotate reliably), on faces mostly cut off by the crop, or on faces just
outside the level's range, carry no loss; in photos whose faces are not all annotated, only cells near
an annotated face count. Loss: sigmoid focal loss over the cells that count, divided by the number of
positives, plus ``box_weight`` x GIoU loss on the positives; with ``quality`` (``--quality-focal``), the
score's loss is the quality focal loss instead, each positive's target the IoU of its own predicted box
(:func:`quality_focal_loss`; measured in docs/training.md, "Scores that know their box"). With ``points``
(a detector with the five-point head), a positive cell whose face has landmarks (300-W's 68, MTFL's 5,
AFLW's 21: turned into the five points) also learns where the face's eye centres, nose tip and mouth corners are:
``point_weight`` x L1 of the offsets from the cell, divided by the face's size.

The loop saves a checkpoint every ``save_every`` steps (atomic folders, :mod:`hyperface.train.checkpoint`)
and ``--resume`` continues from the newest one with the optimiser, schedule and random state.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from hyperface.boxes import box_size
from hyperface.data.images import ImageReadError, load_image
from hyperface.data.readers import open_dataset
from hyperface.data.records import ImageRecord
from hyperface.data.splits import DEFAULT_VAL_FRACTION, split_of
from hyperface.inference.assets import DETECTOR_WEIGHTS
from hyperface.models.detector import ALIGN, SIZE_RANGES, STRIDES, FaceDetectorNet, cell_centres, hyperface_detector
from hyperface.models.weights import save_weights
from hyperface.points import to_five
from hyperface.train.checkpoint import find_checkpoint, restore_training, rng_state, save_checkpoint
from hyperface.train.occlusion import PHOTOMETRIC, draw_mask

__all__ = ["DetectorTrainOptions", "Photo", "load_photos", "draw_sample", "assign_targets", "detector_loss",
           "quality_focal_loss", "paired_iou", "train_detector"]

log = logging.getLogger(__name__)

CENTRE_RADIUS = 1.5  # strides around a face's centre whose cells are its positives
SOFT_RANGE = 1.5     # a face up to this factor outside a level's range is ignored there, not negative
MIN_INSIDE = 0.6     # a face with less of its box inside the crop is ignored
GREY = (127, 127, 127)


@dataclass
class DetectorTrainOptions:
    steps: int = 6000
    batch_size: int = 32
    crop: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    box_weight: float = 2.0
    quality: bool = False    # score targets: the IoU of each positive's predicted box (quality focal loss), not 1
    min_size: float = 10.0   # smallest face size (pixels, after scaling) a sample is drawn at
    max_size: float = 300.0
    mask: float = 0.3        # probability of a synthetic face mask on each face with landmarks
    photometric: float = 0.1  # probability of each degradation (blur, noise, JPEG, greyscale, low light)
    max_side: int = 800      # photos are kept in memory with their longer side at most this
    save_every: int = 250
    val_fraction: float = DEFAULT_VAL_FRACTION
    seed: int = 0
    points: bool = False     # train the five-point head (a detector with the landmarks task)
    point_weight: float = 0.5
    point_head: str = "shared"  # the five-point head's form (hyperface.models.detector's docstring)
    points_only: bool = False   # train the five-point head alone: boxes and scores stay the --init file's
    widths: tuple[int, ...] | None = None  # the network's stage widths (None: hyperface_detector's)
    fpn: int | None = None                 # its FPN channels (None: hyperface_detector's)


@dataclass
class Photo:
    """One training photo in memory: pixels, face boxes (N, 4), ignore flags, landmarks per face."""

    image: np.ndarray
    boxes: np.ndarray
    ignore: np.ndarray
    landmarks: list[np.ndarray | None]
    point_sets: list[str | None]
    exhaustive: bool
    key: str
    five: np.ndarray | None = None  # (N, 5, 2) each face's five points (NaN where it has none)


def _photo(record: ImageRecord, max_side: int) -> Photo:
    image = load_image(record.image)
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    boxes = np.array([f.box for f in record.faces], dtype=np.float32).reshape(-1, 4) * s
    ignore = np.array([bool(f.attributes.get("ignore")) for f in record.faces], dtype=bool)
    marks = [None if f.landmarks is None else f.landmarks * s for f in record.faces]
    sets = [f.point_set for f in record.faces]
    return Photo(image, boxes, ignore, marks, sets, record.all_faces_annotated, record.key,
                 np.asarray([to_five(m, ps) for m, ps in zip(marks, sets)], np.float32).reshape(-1, 5, 2))


def load_photos(specs: list[str], max_side: int, val_fraction: float, limit: int | None = None) -> list[list[Photo]]:
    """The training split of each dataset spec, decoded into memory (one list per spec; a spec named twice, to
    be drawn twice as often, is decoded once). An image that cannot be read is reported with its file and
    skipped."""
    sources, decoded = [], {}
    for spec in specs:
        if spec in decoded:
            sources.append(decoded[spec])
            continue
        photos = []
        reader = open_dataset(spec)
        for record in reader:
            if split_of(record.group, val_fraction):
                continue
            try:
                photos.append(_photo(record, max_side))
            except (ImageReadError, OSError, ValueError) as exc:
                log.warning("%s: skipped (%s)", record.key, exc)
            if limit and len(photos) >= limit:
                break
        for problem in reader.problems:
            log.warning("%s", problem)
        if not photos:
            raise ValueError(f"{spec}: no training photo (after the validation split)")
        log.info("%s: %d photos, %d faces", spec, len(photos), sum(len(p.boxes) for p in photos))
        sources.append(photos)
        decoded[spec] = photos
    return sources


def draw_sample(photo: Photo, rng: np.random.Generator, opts: DetectorTrainOptions
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, np.ndarray]:
    """A ``crop`` x ``crop`` training window of ``photo``: (image, boxes (N, 4), ignore (N,), exhaustive,
    five points (N, 5, 2), NaN for a face without)."""
    crop = opts.crop
    h, w = photo.image.shape[:2]
    usable = np.flatnonzero(~photo.ignore & (box_size(photo.boxes) > 1))
    if len(usable) and rng.random() < 0.9:  # centre on a face, scaled to a random size
        face = int(rng.choice(usable))
        target = math.exp(rng.uniform(math.log(opts.min_size), math.log(opts.max_size)))
        s = float(np.clip(target / box_size(photo.boxes[face: face + 1])[0], 0.05, 8.0))
        cx, cy = (photo.boxes[face, :2] + photo.boxes[face, 2:]) / 2
        off = rng.uniform(-0.4, 0.4, size=2) * crop
        x0, y0 = cx * s - crop / 2 + off[0], cy * s - crop / 2 + off[1]
    else:  # anywhere, at a scale that keeps most of the photo
        s = crop / max(h, w) * math.exp(rng.uniform(0.0, math.log(4.0)))
        x0 = rng.uniform(min(0.0, w * s - crop), max(0.0, w * s - crop))
        y0 = rng.uniform(min(0.0, h * s - crop), max(0.0, h * s - crop))
    flip = rng.random() < 0.5
    m = np.array([[s, 0, -x0], [0, s, -y0]], dtype=np.float64)
    if flip:
        m = np.array([[-1, 0, crop - 1], [0, 1, 0]], dtype=np.float64) @ np.vstack([m, [0, 0, 1]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.warpAffine(photo.image, m, (crop, crop), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=GREY)

    def move(xy: np.ndarray) -> np.ndarray:
        return xy @ m[:, :2].T + m[:, 2]

    boxes = photo.boxes.copy()
    if len(boxes):
        corners = move(boxes.reshape(-1, 2)).reshape(-1, 4)
        boxes = np.stack([np.minimum(corners[:, 0], corners[:, 2]), np.minimum(corners[:, 1], corners[:, 3]),
                          np.maximum(corners[:, 0], corners[:, 2]), np.maximum(corners[:, 1], corners[:, 3])], 1)
    ignore = photo.ignore.copy()
    for k, (pts, ps) in enumerate(zip(photo.landmarks, photo.point_sets)):
        if pts is not None and not ignore[k] and rng.random() < opts.mask and box_size(boxes[k: k + 1])[0] >= 12:
            p = move(pts)
            if flip:  # points keep their identity; the mask only needs a left-right consistent shape
                p = move(pts[_mirror_order(ps, len(pts))])
            img, _ = draw_mask(img, p, ps, rng)
    img = _photometric(img, rng, opts.photometric)
    five = np.full((len(boxes), 5, 2), np.nan, np.float32) if photo.five is None else photo.five
    five = move(five.reshape(-1, 2)).reshape(-1, 5, 2)
    if flip:  # the face's image-left eye is now on the right: swap the points' roles back
        five = five[:, _mirror_order("five", 5)]
    return img, boxes.astype(np.float32), ignore, photo.exhaustive, five.astype(np.float32)


def _mirror_order(point_set: str | None, n: int) -> np.ndarray:
    from hyperface.points import get_point_set

    try:
        return np.asarray(get_point_set(point_set).flip_permutation)
    except (KeyError, ValueError, AttributeError, TypeError):
        return np.arange(n)


def _photometric(img: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    img = img.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for name in ("blur", "noise", "jpeg", "greyscale", "low_light"):
        if rng.random() < p:
            img, _ = PHOTOMETRIC[name](img, None, None, rng)
    return img


def assign_targets(boxes: np.ndarray, ignore: np.ndarray, exhaustive: bool, crop: int,
                   points: np.ndarray | None = None) -> list[tuple[np.ndarray, ...]]:
    """Per level: (label (h*w,) 1 face / 0 background, weight (h*w,) 0 = no loss, box (h*w, 4), five points
    (h*w, 5, 2) of the cell's face, and whether it has them (h*w,)); ``points`` (N, 5, 2), NaN: none."""
    if points is None:
        points = np.full((len(boxes), 5, 2), np.nan, np.float32)
    has_points = np.isfinite(points).all(axis=(1, 2))
    sizes = box_size(boxes)
    clipped = np.clip(boxes, 0, crop)
    inside = np.where(sizes > 0, box_size(clipped) ** 2 / np.maximum(sizes ** 2, 1e-6), 0.0)
    skip = ignore | (inside < MIN_INSIDE) | (sizes < 2)
    out = []
    for stride, (lo, hi) in zip(STRIDES, SIZE_RANGES):
        n = crop // stride
        centre = cell_centres(n, n, stride).numpy()
        label = np.zeros(n * n, np.float32)
        weight = np.ones(n * n, np.float32)
        target = np.zeros((n * n, 4), np.float32)
        point_target = np.zeros((n * n, 5, 2), np.float32)
        point_weight = np.zeros(n * n, np.float32)
        if not exhaustive:  # only the surroundings of annotated faces are known to be background
            near = np.zeros(n * n, bool)
            for b in boxes:
                bw, bh = b[2] - b[0], b[3] - b[1]
                near |= ((centre[:, 0] >= b[0] - bw) & (centre[:, 0] <= b[2] + bw)
                         & (centre[:, 1] >= b[1] - bh) & (centre[:, 1] <= b[3] + bh))
            weight[~near] = 0
        best = np.full(n * n, np.inf)
        for k in np.argsort(-sizes):  # largest first, so smaller faces overwrite shared cells
            b, size = boxes[k], sizes[k]
            in_box = ((centre[:, 0] > b[0]) & (centre[:, 0] < b[2]) & (centre[:, 1] > b[1]) & (centre[:, 1] < b[3]))
            c = (b[:2] + b[2:]) / 2
            r = CENTRE_RADIUS * stride
            core = in_box & (np.abs(centre[:, 0] - c[0]) <= r) & (np.abs(centre[:, 1] - c[1]) <= r)
            if not core.any():  # a face smaller than a cell: its nearest cell
                core = np.zeros(n * n, bool)
                core[np.argmin(((centre - c) ** 2).sum(1))] = True
            if skip[k] or not lo <= size <= hi:
                if skip[k] or lo / SOFT_RANGE <= size <= hi * SOFT_RANGE:
                    weight[in_box | core] = np.where(label[in_box | core] > 0, weight[in_box | core], 0)
                continue
            take = core & (size < best)
            label[take] = 1
            weight[take] = 1
            target[take] = b
            best[take] = size
            point_weight[take] = float(has_points[k])
            if has_points[k]:
                point_target[take] = points[k]
        out.append((label, weight, target, point_target, point_weight))
    return out


def quality_focal_loss(logit: torch.Tensor, target: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Generalized Focal Loss's quality focal loss, per cell: binary cross-entropy against a soft target (a
    positive's IoU, 0 elsewhere) scaled by ``|sigmoid(logit) - target| ** beta`` (Li et al., 2020; SCRFD's
    score loss)."""
    scale = (torch.sigmoid(logit) - target).abs().pow(beta)
    return F.binary_cross_entropy_with_logits(logit, target, reduction="none") * scale


def _area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of each box of ``a`` (N, 4) with the box of ``b`` (N, 4) in the same row (0 for empty boxes)."""
    wh = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = _area(a) + _area(b) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-9), torch.zeros_like(union))


def detector_loss(outputs: list[tuple[torch.Tensor, ...]], targets: list[tuple[torch.Tensor, ...]],
                  box_weight: float, point_weight: float = 0.0,
                  quality: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """Focal loss on the cells that count + ``box_weight`` x GIoU loss on the positives (+ ``point_weight``
    x the points' L1 in face sizes, on positives whose face has points, when the outputs have points).
    With ``quality``, the score's loss is :func:`quality_focal_loss` with each positive's target the IoU of
    its predicted box with its face's (the score then ranks well-placed boxes first)."""
    cls_terms, box_terms, point_terms, positives, with_points = [], [], [], 0.0, 0.0
    for k, (level, (label, weight, target, *point_targets)) in enumerate(zip(outputs, targets)):
        logit, dist = level[0], level[1]
        points = level[2] if len(level) > 2 else None
        b, _, h, w = logit.shape
        logit = logit.reshape(b, -1)
        pos = label > 0
        positives += float(pos.sum())
        score_target = label
        if pos.any():
            centre = cell_centres(h, w, STRIDES[k], logit.device).expand(b, -1, -1)[pos]
            d = dist.reshape(b, 4, -1).permute(0, 2, 1)[pos]
            pred = torch.cat([centre - d[:, :2], centre + d[:, 2:]], 1)
            box_terms.append(generalized_box_iou_loss(pred, target[pos], reduction="sum"))
            if quality:
                score_target = torch.zeros_like(label)
                score_target[pos] = paired_iou(pred.detach(), target[pos])
            if points is not None and point_targets:
                point_target, point_mask = point_targets[0][pos], point_targets[1][pos] > 0
                if point_mask.any():
                    offsets = points.reshape(b, -1, h * w).permute(0, 2, 1)[pos][point_mask].reshape(-1, 5, 2)
                    face = target[pos][point_mask]
                    size = ((face[:, 2:] - face[:, :2]).clamp(min=1).prod(1).sqrt())[:, None, None]
                    want = point_target[point_mask] - centre[point_mask][:, None, :]
                    point_terms.append(((offsets - want).abs() / size).mean(dim=(1, 2)).sum())
                    with_points += float(point_mask.sum())
        cell_loss = (quality_focal_loss(logit, score_target) if quality
                     else sigmoid_focal_loss(logit, label, reduction="none"))
        cls_terms.append((cell_loss * weight).sum())
    n = max(positives, 1.0)
    cls = torch.stack(cls_terms).sum() / n
    box = torch.stack(box_terms).sum() / n if box_terms else cls.new_zeros(())
    total = cls + box_weight * box
    parts = {"cls": cls.item(), "box": box.item(), "positives": positives}
    if point_terms:
        pts = torch.stack(point_terms).sum() / max(with_points, 1.0)
        total = total + point_weight * pts
        parts["points"] = pts.item()
    return total, parts


def _batch(sources: list[list[Photo]], rng: np.random.Generator, opts: DetectorTrainOptions, net: FaceDetectorNet):
    images, per_level = [], [[] for _ in STRIDES]
    for _ in range(opts.batch_size):
        photos = sources[rng.integers(len(sources))]
        img, boxes, ignore, exhaustive, five = draw_sample(photos[rng.integers(len(photos))], rng, opts)
        images.append(img)
        for k, t in enumerate(assign_targets(boxes, ignore, exhaustive, opts.crop, five)):
            per_level[k].append(t)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(net.config.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(net.config.std).view(1, 3, 1, 1) * 255
    targets = [tuple(torch.from_numpy(np.stack(parts)) for parts in zip(*level)) for level in per_level]
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last), targets


def _init(net: FaceDetectorNet, path: Path) -> None:
    """``net``'s weights from a detector's file; a five-point head the file lacks keeps its fresh weights
    (adding the head to a trained detector), and a wider ``net`` (``widths``, ``fpn``) starts with the
    file's answers (:func:`hyperface.models.grow.grow_into`)."""
    from hyperface.models.grow import grow_into
    from hyperface.models.weights import read_config, read_state_dict

    tensors = read_state_dict(path)
    own = net.state_dict()
    head = read_config(path).arch_kwargs.get("point_head", "shared")
    if net.points is not None and any(k.startswith("points.") for k in tensors) and head != net.point_head:
        if head != "shared":  # a head trained in its own form is not thrown away unasked
            raise ValueError(f"{path}: its five-point head is the {head!r} form; continue it with --point-head "
                             f"{head}")
        tensors = {k: v for k, v in tensors.items() if not k.startswith("points.")}
        log.info("%s: its shared five-point head is not used; the %s head starts fresh", path, net.point_head)
    missing = sorted(set(own) - set(tensors))
    if any(not k.startswith("points.") for k in missing):
        raise ValueError(f"{path}: not weights of this detector (it lacks {', '.join(missing[:5])})")
    grown = grow_into(net, tensors, str(path))  # a width that would shrink is its error
    extra = sorted(set(tensors) - set(own))
    if extra:
        raise ValueError(f"{path}: holds layers this detector lacks ({', '.join(extra[:5])}); a five-point "
                         "head needs --points")
    log.info("initialised from %s%s", path, f", grown to widths {net.config.arch_kwargs['widths']}, fpn "
             f"{net.config.arch_kwargs['fpn']} ({len(grown)} tensors wider, the same answers)" if grown else "")


def train_detector(specs: list[str], out: str | Path, opts: DetectorTrainOptions, *, resume: bool = False,
                   init: str | Path | None = None, time_limit: float | None = None) -> Path:
    """Train on the datasets ``specs`` (each drawn equally often); writes ``OUT/hyperface-detector.safetensors``.

    ``resume`` continues from the newest checkpoint in ``out``; ``time_limit`` (seconds) stops early
    after a checkpoint, so a later ``resume`` goes on. Returns the weights file (written when done).
    """
    if opts.crop % ALIGN:
        raise ValueError(f"crop must be a multiple of {ALIGN}, got {opts.crop}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(opts.seed)
    size = {k: v for k, v in (("widths", opts.widths), ("fpn", opts.fpn)) if v is not None}
    if opts.points_only and (not opts.points or init is None):
        raise ValueError("training the five-point head alone needs --points and --init (the detector it joins)")
    net = hyperface_detector(**({"tasks": ("detection", "landmarks"), "point_set": "five",
                                 "point_head": opts.point_head} if opts.points else {}), **size)
    if init is not None:
        _init(net, Path(init))
    trained = [p for name, p in net.named_parameters() if not opts.points_only or name.startswith("points.")]
    optimizer = torch.optim.AdamW(trained, lr=opts.lr, weight_decay=opts.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / opts.warmup)
                                                 * 0.5 * (1 + math.cos(math.pi * min(step, opts.steps) / opts.steps)))
    rng = np.random.default_rng(opts.seed)
    step = 0
    checkpoint = find_checkpoint(out) if resume else None
    if checkpoint is not None:
        step = restore_training(checkpoint, net, optimizer, schedule)
        rng = np.random.default_rng([opts.seed, step])
        log.info("resuming from step %d (%s)", step, checkpoint.weights.parent)
    sources = load_photos(specs, opts.max_side, opts.val_fraction)
    net = net.to(memory_format=torch.channels_last).train()
    if opts.points_only:  # the rest keeps the file's weights and batch statistics exactly
        net.requires_grad_(False).eval()
        net.points.requires_grad_(True).train()
    started = time.monotonic()
    meter: dict[str, float] = {}
    while step < opts.steps:
        x, targets = _batch(sources, rng, opts, net)
        loss, parts = detector_loss(net.levels(x), targets, opts.box_weight, opts.point_weight, opts.quality)
        optimizer.zero_grad(set_to_none=True)
        if loss.requires_grad:  # with --points-only, a batch without points has nothing to learn
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 10.0)
            optimizer.step()
        schedule.step()
        step += 1
        for key, v in dict(parts, loss=loss.item()).items():
            meter[key] = meter.get(key, 0.0) + v
        if step % 50 == 0:
            log.info("step %d/%d loss %.4f cls %.4f box %.4f points %.4f pos/img %.1f lr %.2e (%.0f s)", step,
                     opts.steps, meter["loss"] / 50, meter["cls"] / 50, meter["box"] / 50,
                     meter.get("points", 0.0) / 50, meter["positives"] / 50 / opts.batch_size,
                     schedule.get_last_lr()[0], time.monotonic() - started)
            meter = {}
        if step % opts.save_every == 0 or step == opts.steps:
            state = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "rng": rng_state()}
            save_checkpoint(out, net, state, {"run": str(out), "stage": "detector", "epoch": 0, "step": step})
            if time_limit is not None and time.monotonic() - started > time_limit and step < opts.steps:
                log.info("time limit reached at step %d; resume to go on", step)
                return out / "last.safetensors"
    net.config.meta["training"] = {"steps": step, "data": list(specs),
                                   "score_loss": "quality focal" if opts.quality else "focal"}
    return save_weights(net.eval().to(memory_format=torch.contiguous_format), out / DETECTOR_WEIGHTS)
