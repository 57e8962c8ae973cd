"""``detector``: the single-pass face detector (:mod:`hyperface.models.detector`) as a candidate source.

Why: the ``fast`` cascade scores a 16-pixel window over an image pyramid, so its cost grows with
every level, that is with the range of face sizes asked for. This source resizes the image once and
runs the detector network once: its heads at strides 8, 16, 32 and 64 find small and large faces in
the same pass, so a call costs one network run at the working size whatever the face sizes.

Working size: the image is scaled by ``s = smallest / min_face`` (:func:`working_scale`), so that a
face of ``min_face`` original pixels becomes ``smallest`` working pixels (:data:`SMALLEST_FACE`, 16:
the network is trained to find faces of about 12-40 pixels at stride 8 and bigger ones at the
coarser levels); ``s`` is lowered until the working image's longer side is at most ``max_side``,
and it is never above 2 (enlarging more adds pixels, not detail). So on an image whose longer side
exceeds ``max_side * min_face / smallest`` the smallest faces shrink below ``smallest`` working
pixels and may be missed. Shrinking by more than half averages areas, else resizing is bilinear. The working image is
padded right and bottom to multiples of 64 (the coarsest stride) in the network's mean colour, which
it normalises to zero, then run once: with onnxruntime when ``backend`` resolves to ``onnx`` (the
export is made on the first call, once per process per network: :func:`hyperface.onnx_io.cached_export`),
else with PyTorch. Each cell with face probability >= ``threshold`` gives a box; non-maximum
suppression at ``nms_iou`` runs per level, then across levels.

Boxes are mapped back to the original image with the exact per-axis scale of the resize
(``x = (u + 0.5) / sx - 0.5``, pixel centres at integers, as in the ``fast`` source), clipped to the
image's extent (``-0.5 .. w - 0.5``); boxes under 2 pixels wide or high are dropped, and so are those
larger than ``max_face`` (their size: the square root of their area, in original pixels, the size the
network is trained on) when it is given. With ``contain`` (default 0.7), a box with that share of its
area inside a larger, higher-scoring box is dropped: the network sometimes boxes a face's eyes or
mouth beside the face, and each extra candidate costs a run of the HyperFace network. At most
``max_candidates`` boxes come back, best first.

``rescore`` (default: the bundled refine network of the ``fast`` cascade,
:mod:`hyperface.inference.proposals.refine`): :meth:`DetectorProposals.scored`, which the analyzer
fuses with its own network's score, gives each box the weighted geometric mean
``detector ** (1 - w) * refine ** w`` of the detector's probability and the refine network's,
``w`` = ``rescore_weight`` (:data:`RESCORE_WEIGHT`, 0.25, chosen with the analyzer's ``source_weight``
on the face-mask training photos); ``None``: the detector's alone. ``threshold`` 0.2: on the face-mask
training photos (120 images, full pipeline with the bundled model and the first detector run) AP
0.856, against 0.827 at 0.3 (fewer candidates, 1.5x faster there) and 0.802 for ``fast``; without
``rescore`` 0.834. ``smallest`` 16 (:data:`SMALLEST_FACE`): with the bundled detector on those photos
(the first 120; measured with area-averaged shrinking, before :data:`AREA_BELOW`) the detector's own
AP is 0.918, against 0.890 at 12 and 0.926 at 20 (2.8x the pixels of 12); the full pipeline's 0.910
against 0.894 at 12, its whole call on a 640 x 480 image about 4 ms slower (``benchmarks/analyze_speed.py``).

``weights``: a ``hyperface-detector`` weights file (``hyperface train-detector --out DIR`` writes
``DIR/hyperface-detector.safetensors``), a :class:`~hyperface.models.detector.FaceDetectorNet`, or
None for the bundled file; ``threads``: onnxruntime's intra-op threads.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from hyperface.inference.assets import ASSETS, DETECTOR_WEIGHTS, resolve_weights
from hyperface.inference.lnms import contained
from hyperface.inference.network import TorchRunner
from hyperface.inference.proposals.base import ProposalSource
from hyperface.inference.proposals.refine import RefineScorer, load_refine_net
from hyperface.models.detector import ALIGN, STRIDES, FaceDetectorNet, decode_detections
from hyperface.models.proposal import RefineNet
from hyperface.models.weights import load_model
from hyperface.onnx_io import cached_export, inference_session, resolve_backend

__all__ = ["DetectorProposals", "SMALLEST_FACE", "MAX_UPSCALE", "RESCORE_WEIGHT", "working_scale"]

#: The refine network's share of a rescored box's probability: ``detector ** (1 - w) * refine ** w``.
RESCORE_WEIGHT = 0.25

#: Face size (working pixels, square root of the box area) the network finds reliably.
SMALLEST_FACE = 16.0
#: Below this scale the image is shrunk by area averaging, above it bilinearly: as training's windows
#: (``cv2.warpAffine``, bilinear) for mild shrinking, and 7x faster than averaging at 640 x 480.
AREA_BELOW = 0.5
#: The working image is never enlarged more than this.
MAX_UPSCALE = 2.0
_MAX_DECODED = 100_000  # decode_detections' cap; the real one (max_candidates) applies after the drops


def working_scale(width: int, height: int, min_face: float, smallest: float = SMALLEST_FACE,
                  max_side: int = 1280) -> float:
    """The factor the image is resized by: ``smallest / min_face``, at most 2 and such that the working
    image's longer side is at most ``max_side``."""
    return min(float(smallest) / float(min_face), MAX_UPSCALE, float(max_side) / max(width, height))


class _Detect(torch.nn.Module):
    """uint8-range float image (1, 3, H, W) -> per level (stride 8, 16, 32, 64): face probability
    (1, h, w) and box distances in pixels (1, 4, h, w), as 8 outputs."""

    def __init__(self, net: FaceDetectorNet) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(net.config.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(net.config.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = []
        for logits, dist in self.net.dense((x - self.mean) / self.std):
            out += [torch.sigmoid(logits[:, 0]), dist]
        return tuple(out)


def _load_net(weights: str | Path | FaceDetectorNet | None) -> tuple[FaceDetectorNet, Path | None]:
    """The network and the file it came from (None for a network object)."""
    if isinstance(weights, FaceDetectorNet):
        return weights, None
    if weights is None and not (ASSETS / DETECTOR_WEIGHTS).is_file():
        raise FileNotFoundError(
            f"the detector candidate source has no bundled weights ({ASSETS / DETECTOR_WEIGHTS} is not in this "
            f"installation); pass weights='path/to/{DETECTOR_WEIGHTS}' (CLI: --proposals detector:PATH), a "
            f"file written by 'hyperface train-detector --out DIR'")
    path = resolve_weights(weights, DETECTOR_WEIGHTS)
    net = load_model(path)
    if not isinstance(net, FaceDetectorNet):
        raise ValueError(f"{path}: {net.config.arch!r} weights are not a face detector (the detector candidate "
                         f"source needs 'hyperface-detector' weights, as train-detector writes)")
    return net, path


class DetectorProposals(ProposalSource):
    """``detector``: one run of the single-pass face detector at one working size (see the module docstring)."""

    name = "detector"
    scores_boxes = True

    def __init__(self, weights: str | Path | FaceDetectorNet | None = None, device: str = "cpu",
                 min_face: float = 20.0, max_face: float | None = None, smallest: float = SMALLEST_FACE,
                 max_side: int = 1280, threshold: float = 0.2, nms_iou: float = 0.5, max_candidates: int = 100,
                 backend: str = "auto", threads: int | None = None, contain: float | None = 0.7,
                 rescore: str | Path | RefineNet | None = "bundled", rescore_weight: float = RESCORE_WEIGHT) -> None:
        if not min_face > 0 or not smallest > 0 or (max_face is not None and not max_face > 0):
            raise ValueError(f"the detector source needs min_face, smallest and max_face > 0 pixels, got "
                             f"min_face={min_face}, smallest={smallest}, max_face={max_face}")
        if max_side < ALIGN:
            raise ValueError(f"the detector source needs max_side >= {ALIGN} pixels, got {max_side}")
        net, self.weights = _load_net(weights)
        self.min_face = float(min_face)
        self.max_face = None if max_face is None else float(max_face)
        self.smallest = float(smallest)
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self.max_candidates = int(max_candidates)
        if contain is not None and not 0.0 < contain <= 1.0:
            raise ValueError(f"the detector source's contain must be in (0, 1] or None, got {contain}")
        self.contain = contain
        self.threads = threads
        self.device = str(device)
        self._torch = TorchRunner(_Detect(net), self.device)
        # padding: the colour the network normalises to zero (its mean)
        self._pad = self._torch.module.mean.view(3).cpu().numpy()
        self.backend = resolve_backend(backend, self.device, "the detector source's backend")
        self._session = None  # onnxruntime session, made on first use
        if not 0.0 <= rescore_weight <= 1.0:
            raise ValueError(f"the detector source's rescore_weight must be in [0, 1], got {rescore_weight}")
        self.rescore_weight = float(rescore_weight)
        rescore_net = load_refine_net(rescore)
        self._rescorer = None if rescore_net is None else RefineScorer(rescore_net, self.device, self.backend, threads)

    def to(self, device: str) -> DetectorProposals:
        self.device = str(device)
        self._torch.to(self.device)
        if self._rescorer is not None:
            self._rescorer.to(self.device)
        return self

    def _onnx_session(self):
        if self._session is None:
            module = _Detect(self._torch.module.net).eval().cpu()
            outputs, dynamic = [], {"image": {2: "height", 3: "width"}}
            for s in STRIDES:
                outputs += [f"face{s}", f"box{s}"]
                dynamic[f"face{s}"] = {1: f"h{s}", 2: f"w{s}"}
                dynamic[f"box{s}"] = {2: f"h{s}", 3: f"w{s}"}
            data = cached_export(module, (torch.zeros(1, 3, ALIGN, ALIGN),), ["image"], outputs, dynamic)
            self._session = inference_session(data, self.threads)
        return self._session

    def working_image(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``image`` at the working size, padded to multiples of 64 in the mean colour, as a float32
        (1, 3, H, W) array of 0..255 values; with the per-axis scales (working / original width, height)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"the detector source needs an H x W x 3 RGB image, got shape {image.shape}")
        h, w = image.shape[:2]
        s = working_scale(w, h, self.min_face, self.smallest, self.max_side)
        ww, wh = max(1, round(w * s)), max(1, round(h * s))
        work = np.ascontiguousarray(image)
        if (ww, wh) != (w, h):
            work = cv2.resize(work, (ww, wh), interpolation=cv2.INTER_AREA if s < AREA_BELOW else cv2.INTER_LINEAR)
        H, W = math.ceil(wh / ALIGN) * ALIGN, math.ceil(ww / ALIGN) * ALIGN
        canvas = np.empty((1, 3, H, W), dtype=np.float32)
        canvas[0] = self._pad[:, None, None]
        canvas[0, :, :wh, :ww] = work.transpose(2, 0, 1)
        return canvas, ww / w, wh / h

    def _detect_working(self, canvas: np.ndarray, threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (in working pixels) and scores of one network run on ``canvas``, best first, on the CPU."""
        threshold = self.threshold if threshold is None else threshold
        if self.backend == "onnx":
            outs = [torch.from_numpy(o[0]) for o in self._onnx_session().run(None, {"image": canvas})]
            levels = list(zip(outs[0::2], outs[1::2]))
            return decode_detections(levels, threshold, self.nms_iou, _MAX_DECODED)
        outs = [o[0] for o in self._torch(torch.from_numpy(canvas))]
        boxes, scores = decode_detections(list(zip(outs[0::2], outs[1::2])), threshold, self.nms_iou, _MAX_DECODED)
        return boxes.float().cpu(), scores.float().cpu()

    def detect(self, image: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (K, 4) in ``image``'s pixels and their face probabilities (K,), float32, best first:
        those of probability >= ``threshold`` (``None``: the source's ``threshold``)."""
        h, w = image.shape[:2]
        canvas, sx, sy = self.working_image(image)
        boxes, scores = self._detect_working(canvas, threshold)
        if self.contain is not None and len(boxes) > 1:  # a face's parts boxed beside the face
            keep = ~contained(boxes, scores, self.contain)
            boxes, scores = boxes[keep], scores[keep]
        b = boxes.numpy().astype(np.float64)
        # working -> original pixels with the exact per-axis scale (pixel centres at integers)
        b[:, [0, 2]] = np.clip((b[:, [0, 2]] + 0.5) / sx - 0.5, -0.5, w - 0.5)
        b[:, [1, 3]] = np.clip((b[:, [1, 3]] + 0.5) / sy - 0.5, -0.5, h - 0.5)
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        keep = (bw >= 2) & (bh >= 2)
        if self.max_face is not None:
            keep &= np.sqrt(np.clip(bw, 0, None) * np.clip(bh, 0, None)) <= self.max_face
        keep = np.flatnonzero(keep)[: self.max_candidates]
        return b[keep].astype(np.float32), scores.numpy()[keep].astype(np.float32)

    def __call__(self, image: np.ndarray, key: str | None = None) -> np.ndarray:
        return self.detect(image)[0]

    def scored(self, image: np.ndarray, key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`detect`'s boxes with their probability, or with ``rescore`` the weighted geometric mean
        of it and the refine network's probability of the same box (``rescore_weight``: the latter's share)."""
        return self.scored_above(image, key, 0.0)

    def scored_above(self, image: np.ndarray, key: str | None = None,
                     floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`scored`'s boxes whose probability is >= ``floor``. A detector probability ``d`` under
        ``floor ** (1 / (1 - rescore_weight))`` cannot get there whatever the re-scorer says, so such
        cells are not decoded and their boxes not re-scored: on crowded photos most boxes are such."""
        w = self.rescore_weight if self._rescorer is not None else 0.0
        needed = float(floor) ** (1.0 / (1.0 - w)) if w < 1.0 else 0.0
        boxes, scores = self.detect(image, max(self.threshold, needed))
        if self._rescorer is not None and len(boxes):
            second = self._rescorer(image, torch.from_numpy(boxes))[1].numpy()
            scores = (scores ** (1.0 - w) * np.clip(second, 0, None) ** w).astype(np.float32)
        keep = scores >= floor
        return boxes[keep], scores[keep]
