"""``detector``: the single-pass face detector (:mod:`hyperface.models.detector`) as a candidate source.

Why: the ``fast`` cascade scores a 16-pixel window over an image pyramid, so its cost grows with
every level, that is with the range of face sizes asked for. This source resizes the image once and
runs the detector network on it: its heads at strides 8, 16, 32 and 64 find small and large faces in
the same pass, so a call costs one network run at the working size whatever the face sizes, and one
more on a sixteenth of its pixels for the largest faces (``passes``, below).

Working size: the image is scaled by ``s = smallest / min_face`` (:func:`working_scale`), so that a
face of ``min_face`` original pixels becomes ``smallest`` working pixels (:data:`SMALLEST_FACE`, 16:
the network is trained to find faces of about 12-40 pixels at stride 8 and bigger ones at the coarser
levels); ``s`` is lowered until the working image's longer side is at most ``max_side``
(:data:`MAX_WORKING_SIDE`, 1280), and it is never above 2 (enlarging more adds pixels, not detail). So
on an image whose longer side exceeds ``max_side * min_face / smallest`` the smallest faces shrink
below ``smallest`` working pixels and may be missed: ``min_face=10`` works at 1.25x, not 1.6x, on
WIDER's 1024-pixel photos; a cap of 2560 was measured with it and not taken (it lost on the validation
photos for 1.38x the time: docs/training.md, after "The candidate cap"). Shrinking by more than half
averages areas, else resizing is bilinear. The working image is padded right and bottom to multiples of
64 (the coarsest stride) in the network's mean colour, which it normalises to (almost) zero, then run
(:class:`hyperface.runtime.Runtime`). Each cell with face probability >= ``threshold`` gives a box;
non-maximum suppression at ``nms_iou`` runs per level, then across levels.

Passes (``passes``, :data:`PASSES`): the network also runs on the working image quartered (each side
a quarter, halved twice bilinearly: :func:`_coarser`) and keeps from that coarser pass only the faces
of at least :data:`COARSE_SMALLEST` (32) of its own working pixels. The passes' faces are merged by
non-maximum suppression at ``nms_iou`` and the ``contain`` rule, on their probabilities with
``rescore``'s second opinion where the analyzer asks for it (:meth:`DetectorProposals.found`): on a
small photo that is all face, the quarter-size pass may box part of it surer than the first pass boxes
the whole, and the refine network tells them apart. Why: the network is sure of faces of 16-40 working
pixels and much less of large ones: a clear face 80 pixels high or more at the default size often
scores 0.2-0.5, and a face filling a 900-pixel photo is not found at all; the coarser pass brings such
faces back into the sizes it knows. Chosen on 300 training photos of each set (full pipeline, AP of
faces >= 20 px; ``python benchmarks/detector_passes.py``): one pass 0.669 / 0.842 / 0.925 (WIDER / web
face-mask photos / Kaggle face-mask photos), passes (1, 0.25) 0.669 / 0.879 / 0.924, (1, 0.5) 0.669 /
0.876 / 0.924, (1, 0.5, 0.25) 0.669 / 0.885 / 0.924: the quarter-size pass gives most of the gain for a
sixteenth of the pixels (the detector's stage 1.2-1.4x its single pass on the speed test image; (1,
0.5) 1.3-1.5x, (1, 0.5, 0.25) 1.5-1.8x). ``passes=(1.0,)``: the single pass of 0.13 and before.

Mirrored view (``flip``, off by default; ``--detector-flip``): each pass also runs on its working image
mirrored (the padding left where it is), and the two views' faces are paired
(:func:`hyperface.inference.proposals.detections.flip_merged`: a pair becomes its score-weighted mean
box with the mean probability, a face one view alone saw keeps half its probability). Each face is
ranked by two looks rather than one, and the answer is mirror-symmetric. It raised the AP on the
training photos of every set (WIDER faces >= 20 px 0.719 -> 0.738; ``python
benchmarks/detector_passes.py --flip``) for twice the detector's time, so it is not the default:
docs/training.md, "The mirrored view", has the rule's choice, the validation figures and its losses.

Boxes are mapped back to the original image with the exact per-axis scale of the resize
(``x = (u + 0.5) / sx - 0.5``, pixel centres at integers, as in the ``fast`` source), clipped to the
image's extent (``-0.5 .. w - 0.5``); boxes under 2 pixels wide or high are dropped, and so are those
larger than ``max_face`` (their size: the square root of their area, in original pixels, the size the
network is trained on) when it is given. With ``contain`` (default 0.7), a box with that share of its
area inside a larger, higher-scoring box is dropped: the network sometimes boxes a face's eyes or mouth
beside the face, and each extra candidate costs a run of the HyperFace network. At most
``max_candidates`` boxes come back, best first (:data:`MAX_CANDIDATES`, 1000: more faces than WIDER's
crowd photos hold at the default ``min_face``). Until 0.14 the cap was 100, and crowds lost faces to it
(300 WIDER training photos: AP 0.669 -> 0.719; a call costs more only where there are more faces:
docs/training.md, "The candidate cap").

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

``points`` (default: the pipeline's point stage when it has one, :mod:`hyperface.inference.proposals.point_stage`):
a ``hyperface-point-refiner`` network that reads each face's five points from a crop of its box, as
MTCNN's last stage does, in place of the detector's own point head (which learned little more than
the average face: docs/training.md); ``None``: the detector's own points, if it has a point head.
Points cost a run of it per face, so they are computed only where asked for: :meth:`DetectorProposals.faces`
gives them unless ``points=False``, :meth:`DetectorProposals.found` (what the analyzer calls) only with
``points=True``; the ``direct`` pipeline asks, the paper's does not.

``weights``: a ``hyperface-detector`` network file (``hyperface train-detector --out DIR`` writes
``DIR/hyperface-detector.safetensors``; ``hyperface export`` its ONNX), a model object, or None for
the pipeline's detector (the bundled one unless the analyzer's weights are an exported pipeline);
``options``: how it runs (:class:`hyperface.runtime.RuntimeOptions`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from hyperface.boxes import box_size
from hyperface.inference.assets import DETECTOR_WEIGHTS
from hyperface.inference.bundle import Bundle, is_bundle
from hyperface.inference.proposals.base import ProposalSource, SourceContext, candidate_cap
from hyperface.inference.proposals.detections import (Detections, concatenated, decode_detections, flip_merged,
                                                      merged, mirrored, without_parts)
from hyperface.inference.proposals.point_stage import PointStage
from hyperface.inference.proposals.refine import RefineScorer
from hyperface.models.geometry import DETECTOR_ALIGN, DETECTOR_STRIDES
from hyperface.runtime import RuntimeOptions

__all__ = ["DetectorProposals", "Detections", "SMALLEST_FACE", "MAX_UPSCALE", "RESCORE_WEIGHT", "PASSES",
           "COARSE_SMALLEST", "MAX_CANDIDATES", "MAX_WORKING_SIDE", "working_scale", "decode_detections"]

#: The refine network's share of a rescored box's probability: ``detector ** (1 - w) * refine ** w``.
RESCORE_WEIGHT = 0.25

#: Face size (working pixels, square root of the box area) the network finds reliably.
SMALLEST_FACE = 16.0
#: Below this scale the image is shrunk by area averaging, above it bilinearly: as training's windows
#: (``cv2.warpAffine``, bilinear) for mild shrinking, and 7x faster than averaging at 640 x 480.
AREA_BELOW = 0.5
#: The working image is never enlarged more than this.
MAX_UPSCALE = 2.0
#: Longest side of the working image. Above it a ``min_face`` under :data:`SMALLEST_FACE` is not honoured in
#: full (``min_face=10`` works at 12.8 pixels on a 1024-pixel photo); 2560, which would honour it on every
#: image the analyzer passes, was measured and not taken (the module docstring).
MAX_WORKING_SIDE = 1280
#: The detector's passes, as scales of the working image: the first finds every face, the coarser ones
#: the large faces the network is unsure of at the working size (see the module docstring).
PASSES = (1.0, 0.25)
#: Smallest face (working pixels of its own pass) a coarser pass keeps: smaller ones are the first pass's.
COARSE_SMALLEST = 2 * SMALLEST_FACE
#: Most candidates a call returns (each pass, and the merged set): a bound on a call's work that WIDER's
#: crowds stay under at the default ``min_face``; at 100 (0.14 and before) a crowd lost faces the detector
#: had found (see the module docstring).
MAX_CANDIDATES = 1000
_MAX_DECODED = 100_000  # decode_detections' cap; the real one (max_candidates) applies after the drops


def working_scale(width: int, height: int, min_face: float, smallest: float = SMALLEST_FACE,
                  max_side: int = MAX_WORKING_SIDE) -> float:
    """The factor the image is resized by: ``smallest / min_face``, at most 2 and such that the working
    image's longer side is at most ``max_side``."""
    return min(float(smallest) / float(min_face), MAX_UPSCALE, float(max_side) / max(width, height))


def _resized(image: np.ndarray, width: int, height: int, scale: float) -> np.ndarray:
    """``image`` at ``width`` x ``height`` (``scale`` times its size): area averaging below
    :data:`AREA_BELOW`, else bilinear; the same array when the size is its own."""
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if scale < AREA_BELOW else cv2.INTER_LINEAR)


def _coarser(work: np.ndarray, relative: float) -> np.ndarray:
    """The working image ``work`` at ``relative`` times its size: halved bilinearly while the scale left
    is at most a half (each pixel the mean of four, as area averaging, at a fifth of its cost), then
    resized by :func:`_resized` for the rest."""
    while relative <= 0.5 and min(work.shape[:2]) >= 2:
        work = cv2.resize(work, (round(work.shape[1] / 2), round(work.shape[0] / 2)), interpolation=cv2.INTER_LINEAR)
        relative *= 2.0
    ww, wh = max(1, round(work.shape[1] * relative)), max(1, round(work.shape[0] * relative))
    return _resized(work, ww, wh, relative)


def _passes(passes: Sequence[float]) -> tuple[float, ...]:
    """``passes`` checked (numbers in (0, 1], the working size 1 among them), largest first."""
    try:
        values = tuple(float(p) for p in passes)
    except (TypeError, ValueError):
        values = ()
    if not values or 1.0 not in values or not all(0.0 < p <= 1.0 for p in values) or len(set(values)) < len(values):
        raise ValueError(f"the detector source's passes must be distinct scales in (0, 1] with 1 (the working "
                         f"size) among them, e.g. (1, 0.5, 0.25); got {passes!r}")
    return tuple(sorted(values, reverse=True))


def _detector_file(arg: str) -> Path:
    """The network of ``detector:PATH``: the file, or the detector weights of a ``train-detector --out`` folder."""
    if not arg:
        raise ValueError("detector: needs a network file or folder after the ':' ('detector:PATH'), or none at all")
    path = Path(arg).expanduser()
    if path.is_dir() and not is_bundle(path):
        path = path / DETECTOR_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"detector:{path.parent}: no {DETECTOR_WEIGHTS} there (hyperface "
                                    f"train-detector --out writes it)")
    elif not path.exists():
        raise FileNotFoundError(f"detector:{path}: no such network file or folder")
    return path


class DetectorProposals(ProposalSource):
    """``detector``: the single-pass face detector at the working size, and at a quarter of it for the
    largest faces (see the module docstring)."""

    name = "detector"
    scores_boxes = True

    def __init__(self, weights: str | os.PathLike | Any = None, *, options: RuntimeOptions | None = None,
                 context: SourceContext | None = None, min_face: float = 20.0, max_face: float | None = None,
                 smallest: float = SMALLEST_FACE, max_side: int = MAX_WORKING_SIDE, threshold: float = 0.2,
                 nms_iou: float = 0.5, max_candidates: int = MAX_CANDIDATES, contain: float | None = 0.7,
                 rescore: str | os.PathLike | Any | None = "bundled", rescore_weight: float = RESCORE_WEIGHT,
                 points: str | os.PathLike | Any | None = "bundled", passes: Sequence[float] = PASSES,
                 flip: bool = False) -> None:
        for label, value in (("min_face", min_face), ("smallest", smallest), ("max_face", max_face)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"the detector source needs {label} > 0 pixels, got {value!r}")
        self.passes = _passes(passes)
        if not isinstance(flip, (bool, np.bool_)):
            raise ValueError(f"the detector source's flip must be True or False, got {flip!r}")
        self.flip = bool(flip)
        if max_side < DETECTOR_ALIGN:
            raise ValueError(f"the detector source needs max_side >= {DETECTOR_ALIGN} pixels, got {max_side}")
        if contain is not None and not 0.0 < contain <= 1.0:
            raise ValueError(f"the detector source's contain must be in (0, 1] or None, got {contain}")
        self.max_candidates = candidate_cap(self.name, max_candidates)
        if not 0.0 <= rescore_weight <= 1.0:
            raise ValueError(f"the detector source's rescore_weight must be in [0, 1], got {rescore_weight}")
        context = context or SourceContext(options or RuntimeOptions())
        if isinstance(weights, (str, os.PathLike)) and is_bundle(weights):  # an exported pipeline's detector
            context, weights = SourceContext(context.options, Bundle.read(weights)), None
        self.runtime = context.network("detector", weights)
        if self.runtime.config.arch != "hyperface-detector":
            raise ValueError(f"{self.runtime.source}: {self.runtime.config.arch!r} is not a face detector (the "
                             f"detector candidate source needs 'hyperface-detector', as train-detector writes)")
        self.min_face = float(min_face)
        self.max_face = None if max_face is None else float(max_face)
        self.smallest = float(smallest)
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self.contain = contain
        self.rescore_weight = float(rescore_weight)
        self._rescorer = None
        if rescore is not None and not (rescore == "bundled" and not context.has("refine")):
            self._rescorer = RefineScorer(context.network("refine", None if rescore == "bundled" else rescore))
        self._point_stage = None
        if points is not None and not (points == "bundled" and not context.has("points")):
            self._point_stage = PointStage(context.network("points", None if points == "bundled" else points))

    @classmethod
    def from_spec(cls, arg: str | None, context: SourceContext, **options: Any) -> DetectorProposals:
        if arg is not None:
            options = {"weights": _detector_file(arg), **options}
        return cls._construct(context=context, **options)

    def files(self) -> list[str | os.PathLike]:
        return [f for f in (self.runtime.source, self._rescorer and self._rescorer.runtime.source,
                            self._point_stage and self._point_stage.runtime.source) if f]

    def working_image(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``image`` at the working size, padded to multiples of 64 in the mean colour, as a uint8
        (1, H, W, 3) array; with the per-axis scales (working / original width, height)."""
        return self._padded(self._working(image), image.shape)

    def working_images(self, image: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        """:meth:`working_image` for every pass, largest first: the coarser ones are resized from the
        first (:func:`_coarser`)."""
        work = self._working(image)
        return [self._padded(_coarser(work, relative), image.shape) for relative in self.passes]

    def _working(self, image: np.ndarray) -> np.ndarray:
        """``image`` resized to the working size (:func:`working_scale`), not padded."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"the detector source needs an H x W x 3 RGB image, got shape {image.shape}")
        h, w = image.shape[:2]
        s = working_scale(w, h, self.min_face, self.smallest, self.max_side)
        return _resized(np.ascontiguousarray(image), max(1, round(w * s)), max(1, round(h * s)), s)

    def _padded(self, work: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, float, float]:
        """A resized image as the network takes it (:meth:`_canvas`), with its per-axis scales against the
        original image of ``shape``."""
        return self._canvas(work), work.shape[1] / shape[1], work.shape[0] / shape[0]

    def _canvas(self, work: np.ndarray) -> np.ndarray:
        """``work`` padded right and bottom to multiples of 64 in the network's mean colour, (1, H, W, 3)."""
        wh, ww = work.shape[:2]
        H, W = math.ceil(wh / DETECTOR_ALIGN) * DETECTOR_ALIGN, math.ceil(ww / DETECTOR_ALIGN) * DETECTOR_ALIGN
        if (H, W) == (wh, ww):  # nothing to pad: the network reads the image itself (never written to)
            return np.ascontiguousarray(work, dtype=np.uint8)[None]
        canvas = np.empty((1, H, W, 3), dtype=np.uint8)
        canvas[0, :wh, :ww] = work
        canvas[0, wh:, :] = self.runtime.pad_value
        canvas[0, :wh, ww:] = self.runtime.pad_value
        return canvas

    @property
    def gives_points(self) -> bool:
        """True when each face can come with its five points: from the point stage, or from the detector's
        own point head (the landmarks task)."""
        return self._point_stage is not None or "landmarks" in self.runtime.config.tasks

    def _decode(self, canvas: np.ndarray, threshold: float) -> Detections:
        """The faces (in working pixels) of one network run on ``canvas``, best first."""
        out = self.runtime(canvas)
        levels = [tuple(out[f"{kind}{s}"][0] for kind in ("face", "box", "points") if f"{kind}{s}" in out)
                  for s in DETECTOR_STRIDES]
        return decode_detections(levels, threshold, self.nms_iou, _MAX_DECODED)

    def faces(self, image: np.ndarray, threshold: float | None = None, points: bool = True) -> Detections:
        """The faces in ``image``'s pixels, best first: those of probability >= ``threshold`` (``None``: the
        source's ``threshold``; with ``flip``, in either view), with their five points when
        :attr:`gives_points` and ``points``."""
        found = self._detected(image, self.threshold if threshold is None else threshold, points)
        return self._with_points(image, found) if points else found

    def _detected(self, image: np.ndarray, threshold: float, points: bool, rescore: bool = False) -> Detections:
        """:meth:`faces` before the point stage: with the detector's own points only when ``points`` and
        there is no point stage to read better ones. Every pass's faces, merged (module docstring); with
        ``rescore``, the passes' faces are rescored (:meth:`_rescored`) before the merge, so that the box
        kept where two passes box one face is the one the refine network also believes."""
        own_points = points and self._point_stage is None
        # each pass cut to max_candidates before the re-scorer sees it, the merged set once more after
        passes = [self._kept(self._seen(image.shape, working, i > 0, threshold, own_points))
                  for i, working in enumerate(self.working_images(image))]
        found = passes[0] if len(passes) == 1 else concatenated(passes)
        if rescore:  # one run of the refine network for every pass's boxes
            found = self._rescored(image, found)
        return found if len(passes) == 1 else self._kept(merged(found, self.nms_iou, self.contain))

    def _kept(self, found: Detections) -> Detections:
        """``found`` without boxes under 2 pixels wide or high and, with ``max_face``, larger ones; at most
        ``max_candidates``, best first."""
        b = found.boxes
        keep = (b[:, 2] - b[:, 0] >= 2) & (b[:, 3] - b[:, 1] >= 2)
        if self.max_face is not None:
            keep &= box_size(b) <= self.max_face
        return found.select(np.flatnonzero(keep)[: self.max_candidates])

    def _seen(self, shape: tuple[int, ...], working: tuple[np.ndarray, float, float], coarse: bool,
              threshold: float, points: bool) -> Detections:
        """One pass's faces (:meth:`_pass`); with ``flip``, paired with those of its mirror image
        (:func:`flip_merged`): a face either view saw at ``threshold`` or more is kept, with the mean of
        the two views' probabilities (so it may be under ``threshold``)."""
        found = self._pass(shape, working, coarse, threshold, points)
        if not self.flip:
            return found
        return flip_merged(found, self._pass(shape, working, coarse, threshold, points, mirror=True), self.nms_iou)

    def _pass(self, shape: tuple[int, ...], working: tuple[np.ndarray, float, float], coarse: bool,
              threshold: float, points: bool, mirror: bool = False) -> Detections:
        """One run of the network on a working image (:meth:`working_images`), or with ``mirror`` on its
        mirror image: its faces in the pixels of the image of ``shape`` (float32, best first), from a
        ``coarse`` pass only those of :data:`COARSE_SMALLEST` working pixels or more; with the network's
        own points when ``points``."""
        h, w = shape[:2]
        canvas, sx, sy = working
        width = round(sx * w)  # the working image's, without the padding
        if mirror:  # mirrored in place, the padding left where it was
            canvas = canvas.copy()
            canvas[0, :, :width] = canvas[0, :, width - 1::-1]
        found = self._decode(canvas, threshold)
        if mirror:
            found = mirrored(found, width)
        if coarse and len(found):
            found = found.select(box_size(found.boxes) >= COARSE_SMALLEST)
        found = without_parts(found, self.contain)
        # working -> original pixels with the exact per-axis scale (pixel centres at integers)
        b = found.boxes.astype(np.float64)
        b[:, 0::2] = np.clip((b[:, 0::2] + 0.5) / sx - 0.5, -0.5, w - 0.5)
        b[:, 1::2] = np.clip((b[:, 1::2] + 0.5) / sy - 0.5, -0.5, h - 0.5)
        dense = None
        if found.points is not None and points:
            dense = ((found.points.astype(np.float64) + 0.5) / [sx, sy] - 0.5).astype(np.float32)
        return Detections(b.astype(np.float32), found.scores.astype(np.float32), dense)

    def _with_points(self, image: np.ndarray, found: Detections) -> Detections:
        """``found`` with the point stage's points, when there is one (else as it is: the detector's own)."""
        if self._point_stage is not None:
            found.points = self._point_stage(image, found.boxes)
        return found

    def detect(self, image: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (K, 4) in ``image``'s pixels and their face probabilities (K,), float32, best first:
        those of probability >= ``threshold`` (``None``: the source's ``threshold``; with ``flip``, in either
        view)."""
        found = self.faces(image, threshold, points=False)
        return found.boxes, found.scores

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
        found = self.found(image, floor)
        return found.boxes, found.scores

    def found(self, image: np.ndarray, floor: float = 0.0, points: bool = False) -> Detections:
        """:meth:`faces` rescored as :meth:`scored` says, those whose probability is >= ``floor``; with
        their five points when ``points`` (the point stage runs on these faces only)."""
        w = self.rescore_weight if self._rescorer is not None else 0.0
        needed = float(floor) ** (1.0 / (1.0 - w)) if w < 1.0 else 0.0
        found = self._detected(image, max(self.threshold, needed), points, rescore=self._rescorer is not None)
        found = found.select(found.scores >= floor)
        return self._with_points(image, found) if points else found

    def _rescored(self, image: np.ndarray, found: Detections) -> Detections:
        """``found`` with :meth:`scored`'s probabilities (the detector's and the refine network's)."""
        if len(found):
            w = self.rescore_weight
            second = self._rescorer(image, found.boxes)[1]
            found.scores = (found.scores ** (1.0 - w) * np.clip(second, 0, None) ** w).astype(np.float32)
        return found
