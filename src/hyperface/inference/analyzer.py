"""``FaceAnalyzer``: the facade. Built once (networks, candidate source, engine), called per image.

A call runs a :class:`~hyperface.inference.batch.Batch` through the pipeline's steps, each of which
takes the batch and returns it with its part done (HyperFace, section 4 of docs/method.md):

1. load: each image is decoded to RGB and scaled so that its longest side is at most ``max_side``
   (never enlarged); all work happens on the scaled image and answers are mapped back to the
   original pixels;
2. candidates: from the chosen source (``detector``, ``fast``, ``selective-search``, ``boxes:FILE``),
   or the boxes the caller gave;
3. stage one (:mod:`hyperface.inference.stage_one`): the HyperFace network on all crops of all images
   in one batched call, IRP, score fusion, the threshold, L-NMS;
4. stage two (:mod:`hyperface.inference.stage_two`): each face aligned by its landmarks and analysed
   again by the aligned-face network, whose landmarks, visibility, pose and gender replace stage
   one's (``Face.sources`` says which stage each output came from).

Every network is a :class:`hyperface.runtime.Runtime` (onnxruntime by default; PyTorch with
``backend="torch"`` or a GPU), so analysing needs no PyTorch. ``analyzer.batch(images)`` gives the
same faces as calling ``analyzer(image)`` on each (up to float rounding of batched matrix products).
An analyzer pickles by its settings (and is rebuilt from them), so it can be shipped to worker
processes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hyperface.inference.assets import bundled
from hyperface.inference.batch import Batch
from hyperface.inference.bundle import Bundle, is_bundle
from hyperface.inference.inputs import COLOR_ORDERS, ImageInput, as_rgb
from hyperface.inference.lnms import DEFAULT_CONTAIN_THRESHOLD
from hyperface.inference.proposals import DEFAULT_PROPOSALS, ProposalSource, SourceContext, create_proposals
from hyperface.inference.result import Face
from hyperface.inference.stage_one import StageOne
from hyperface.inference.stage_two import StageTwo
from hyperface.inference.video import VideoAnalysis
from hyperface.runtime import Runtime, RuntimeOptions, load_runtime

__all__ = ["FaceAnalyzer", "ImageInput", "STAGES", "PIPELINES", "DEFAULT_SCORE_THRESHOLD", "FUSED_SCORE_THRESHOLD",
           "DIRECT_SCORE_THRESHOLD", "SOURCE_WEIGHT", "MAX_BOXES_PER_IMAGE", "IRP_ROUNDS"]

log = logging.getLogger(__name__)

STAGES = ("load", "candidates", "network", "irp", "lnms", "stage_two")
#: The face score a face must reach when it is the network's alone: the detection head's even odds.
DEFAULT_SCORE_THRESHOLD = 0.5
#: ... and when it is fused with the candidate source's probability (``detector``): on the face-mask
#: training photos 93.5% of the detections at 0.6 are right, recall 84.7%, both above v0.5's 0.65 with
#: the plain geometric mean (91.1%, 83.2%); 0.55, the lowest with 90% (90.6%, 86.0%), shows a false
#: face on the example image (``hyperface analyze --example``).
FUSED_SCORE_THRESHOLD = 0.6
#: The candidate source's share of a fused score (``source_weight``): ``prior ** w * network ** (1 - w)``.
#: Chosen on the face-mask training photos with the detector's ``rescore_weight`` 0.25: AP 0.924, against
#: 0.913 for plain geometric means in both places (0.5 here and 0.5 there, v0.5's).
SOURCE_WEIGHT = 0.75
#: The ways from candidates to faces: ``paper`` (HyperFace's: stage one on every candidate's crop, IRP,
#: L-NMS, then stage two) and ``direct`` (a detector that finds five points gives the faces; stage two
#: aligns each by its points: no stage one, IRP or L-NMS).
PIPELINES = ("paper", "direct")
#: The detector's (re-scored) probability a face must reach in the ``direct`` pipeline. Chosen on training
#: photos (450 of the face-mask, WIDER and web face-mask training photos, 2,897 faces >= 20 px): F1 0.669,
#: recall 54.9%, precision 85.5%; the best F1 there, 0.671, is at 0.55 with precision 80.9%
#: (``benchmarks/direct_pipeline_choices.py``).
DIRECT_SCORE_THRESHOLD = 0.6
#: Stage two's alignment rounds in the ``direct`` pipeline when ``iterations`` is not given. With the
#: detector's point stage (0.11's ``points`` network, NME 4.5% on the MTFL validation faces) one round
#: is enough: chosen on 400 300-W and 400 MTFL training faces, with the mirrored face, 68-point NME 3.63%
#: / 5-point 4.86% / pose 1.68 degrees in one round, 3.65% / 4.92% / 1.69 in two (each round costs
#: stage two's network once more). 0.10's three rounds were for the detector's own coarse points (NME 20%).
DIRECT_ITERATIONS = 1
#: IRP rounds when ``irp_rounds`` is not given, by whether the candidate source scores its boxes as faces.
#: A detector's boxes are faces already, and stage two re-aligns each face by stage one's points: on
#: training photos and faces (300 face-mask and 300 WIDER training photos, 400 300-W and 400 MTFL training
#: faces) the detector's pipeline without IRP kept its AP (0.925 / 0.669 against 0.923 / 0.668) and its
#: landmarks (68-point NME 3.76% against 3.75%, pose 1.75 against 1.73 degrees) and saves about a sixth
#: of the call (stage one's second pass). Window sources (``fast``, Selective Search) keep the paper's one
#: round, and so do boxes given to the call (another detector's box may be loose).
IRP_ROUNDS = {"detector": 0, "windows": 1, "given": 1}
#: Whether stage two also runs each face's mirror image when ``flip_average`` is not given, per pipeline.
#: On in the paper's: chosen on 400 300-W and 400 MTFL training faces (68-point NME 4.19 -> 4.02%,
#: 5-point 5.30 -> 5.03%, pose 1.93 -> 1.75 degrees, gender 97.0 -> 97.8%) for one more crop in the
#: same network call. On in the direct one since its single round (0.11; the same faces: 3.87 -> 3.63%,
#: 5.11 -> 4.86%, 1.86 -> 1.68 degrees, gender 96.8 -> 97.5%).
FLIP_AVERAGE = {"paper": True, "direct": True}
#: The mirrored face when stage two's fine landmark network follows it (``flip_average`` and
#: ``fine_flip_average`` not given), per network: with the fine network, stage two's points only align it
#: and its mirror image bought them nothing (400 300-W and 400 MTFL training faces, the bundled networks:
#: 68-point NME 3.03% with it, 3.04% without, the fine network mirrored in both), while the fine
#: network's own mirror image bought 0.13 point (3.17% -> 3.04%) for 0.9 ms a face. Both off keep stage
#: two's cost (both networks, one face, one thread) at 1.91 ms, under 2 ms: the README has the trade-off.
FLIP_AVERAGE_WITH_FINE = {"stage_two": False, "fine": False}
#: Most boxes one image may be given (each costs a crop and network runs): more is a ValueError.
MAX_BOXES_PER_IMAGE = 2000


def _settings_of(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in ("self", "__class__")}


class FaceAnalyzer:
    """Find faces and predict landmarks, visibility, head pose and gender.

    ``weights``: ``None`` (the bundled pipeline), a pipeline folder written by ``hyperface export
    --out DIR`` (all its networks), or one stage-one network: a hyperface weights file (needs PyTorch),
    an ``.onnx`` export, or a model object. ``proposals``: ``"detector"`` (``"detector:PATH"``: a
    ``train-detector`` network file or its folder), ``"fast"`` (``"fast:DIR"``: networks of
    ``train-proposals --out DIR``), ``"selective-search"``, ``"boxes:FILE"`` or a :class:`ProposalSource`;
    ``proposal_options``: the source's own options (e.g. ``{"min_face": 40}``); network sources use the
    pipeline's networks. ``score_threshold``: the face score a face must reach (``None``: 0.5 for the
    network's score alone, 0.6 for a score fused with the source's, :data:`FUSED_SCORE_THRESHOLD`);
    ``irp_rounds``/``irp_threshold``: IRP rounds (None: :data:`IRP_ROUNDS`, none after the detector, one
    after window sources and for given boxes) and the score from which a candidate is refined;
    ``lnms_iou``/``lnms_top_k``: L-NMS grouping overlap and group size; ``lnms_contain``: a face whose
    box holds this share of a higher-scoring face's box is dropped (``None``: kept); ``max_side``:
    longest image side the pipeline works at (larger images are scaled down, answers mapped back);
    ``batch_size``: crops per network call.

    ``backend``: ``"auto"`` (onnxruntime on the CPU, PyTorch on a GPU), ``"onnx"`` or ``"torch"``;
    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``threads``: intra-op threads of each network (and
    PyTorch's process-wide count when PyTorch runs them); None leaves the engines' defaults.

    ``pipeline``: ``"paper"`` (HyperFace's: stage one on every candidate, IRP, L-NMS, stage two) or
    ``"direct"`` (a detector that finds five points with each face gives the faces, and stage two
    aligns each by them: :data:`PIPELINES`).

    ``stage_two``: the aligned-face network (``"auto"``: the pipeline's when ``weights`` is a pipeline
    (the bundled one by default), else none; ``"bundled"``; a network file or model; ``None``: off),
    with ``iterations`` alignment rounds (None: 1, or :data:`DIRECT_ITERATIONS` in the direct pipeline),
    ``flip_average`` (None: :data:`FLIP_AVERAGE`, on in both pipelines when no fine network follows;
    :data:`FLIP_AVERAGE_WITH_FINE` when one does) and ``pose_from`` (see
    :mod:`hyperface.inference.stage_two`); ``fine``: stage two's fine landmark network (``"auto"``: the
    pipeline's when stage two is the pipeline's too, ``"auto"`` or ``"bundled"``; ``"bundled"``; a network
    file or model; ``None``: off),
    run once more on each face aligned by stage two's own points: its landmarks, and the pose from them,
    replace stage two's; ``fine_flip_average``: whether it also runs each face's mirror image (None:
    :data:`FLIP_AVERAGE_WITH_FINE`, which also gives stage two's ``flip_average`` default when a fine
    network runs). ``fuse_scores``/``source_weight``: see
    :mod:`hyperface.inference.stage_one`. ``color_order``: ``"bgr"`` reads 3- and 4-channel arrays as
    BGR(A), as OpenCV gives them (paths and PIL images are unaffected).

    Everything is loaded here; calls do no I/O except reading an image given by path. Defaults: the
    bundled ``detector`` source, fused scores with ``score_threshold`` 0.6, no IRP round (one from the
    network's own score 0.5 after window sources), L-NMS IoU 0.3 and top 5, then stage two and its fine
    landmark network once on each face, neither on its mirror image (:data:`FLIP_AVERAGE_WITH_FINE`).
    """

    def __init__(self, weights: str | os.PathLike | Any | None = None, device: str = "cpu",
                 proposals: str | ProposalSource = DEFAULT_PROPOSALS, backend: str = "auto",
                 score_threshold: float | None = None, irp_rounds: int | None = None,
                 irp_threshold: float | None = None,
                 lnms_iou: float = 0.3, lnms_top_k: int = 5,
                 lnms_contain: float | None = DEFAULT_CONTAIN_THRESHOLD, max_side: int = 1280, batch_size: int = 64,
                 proposal_options: dict[str, Any] | None = None, threads: int | None = None,
                 stage_two: str | os.PathLike | Any | None = "auto", iterations: int | None = None,
                 flip_average: bool | None = None, pose_from: str = "auto",
                 fine: str | os.PathLike | Any | None = "auto", fine_flip_average: bool | None = None,
                 fuse_scores: bool = True,
                 source_weight: float = SOURCE_WEIGHT, color_order: str = "rgb", pipeline: str = "paper") -> None:
        self._settings = _settings_of(dict(locals()))
        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}")
        self.pipeline = pipeline
        if color_order not in COLOR_ORDERS:
            raise ValueError(f"color_order must be one of {COLOR_ORDERS}, got {color_order!r}")
        if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < 32:
            raise ValueError(f"max_side must be a whole number >= 32 pixels, got {max_side!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        self.options = RuntimeOptions(backend, device, threads)
        self.color_order = color_order
        self.max_side = int(max_side)
        networks = self._networks(weights)
        network = (networks.runtime("stage_one", self.options, batch_size) if networks is not None
                   else load_runtime(weights, self.options, batch_size=batch_size))
        self.proposals = create_proposals(proposals, SourceContext(self.options, networks),
                                          **dict(proposal_options or {}))
        if pipeline == "direct" and not getattr(self.proposals, "gives_points", False):
            raise ValueError(f"pipeline='direct' needs a candidate source that finds five points with each face "
                             f"(a detector trained with them); {self.proposals.name!r} does not")
        fused = bool(fuse_scores) and self.proposals.scores_boxes
        if score_threshold is None:  # IRP still starts at the network's own even odds
            score_threshold = (DIRECT_SCORE_THRESHOLD if pipeline == "direct" else
                               FUSED_SCORE_THRESHOLD if fused else DEFAULT_SCORE_THRESHOLD)
            irp_threshold = DEFAULT_SCORE_THRESHOLD if irp_threshold is None else irp_threshold
        given_irp_rounds = IRP_ROUNDS["given"] if irp_rounds is None else irp_rounds
        if irp_rounds is None:
            irp_rounds = IRP_ROUNDS["detector" if self.proposals.scores_boxes else "windows"]
        self.stage_one = StageOne(network, score_threshold=score_threshold, irp_rounds=irp_rounds,
                                  given_irp_rounds=given_irp_rounds,
                                  irp_threshold=score_threshold if irp_threshold is None else irp_threshold,
                                  lnms_iou=lnms_iou, lnms_top_k=lnms_top_k, lnms_contain=lnms_contain,
                                  fuse_scores=fuse_scores, source_weight=source_weight)
        second = self._role_network("stage_two", stage_two, networks, batch_size)
        fine_network = self._role_network("fine", fine, self._fine_source(stage_two if second is not None else None,
                                                                          networks), batch_size)
        if fine_network is not None and second is None:
            raise ValueError("fine= needs stage two (the fine landmark network is aligned by stage two's points); "
                             "pass stage_two= too, or fine=None")
        if iterations is None:
            iterations = DIRECT_ITERATIONS if pipeline == "direct" else 1
        if flip_average is None:
            flip_average = FLIP_AVERAGE_WITH_FINE["stage_two"] if fine_network is not None else FLIP_AVERAGE[pipeline]
        if fine_flip_average is None:
            fine_flip_average = FLIP_AVERAGE_WITH_FINE["fine"]
        self.stage_two = None if second is None else StageTwo(second, iterations=iterations,
                                                               flip_average=flip_average, pose_from=pose_from,
                                                               fine=fine_network,
                                                               fine_flip_average=fine_flip_average)
        if pipeline == "direct" and self.stage_two is None:
            raise ValueError("pipeline='direct' needs stage two (it analyses the faces the detector's points align)")
        #: seconds spent per stage in the last call (see :data:`STAGES`), for benchmarks
        self.last_timings: dict[str, float] = {}

    # -- construction ------------------------------------------------------------------------------
    @staticmethod
    def _networks(weights: Any) -> Bundle | None:
        """The pipeline folder ``weights`` names (the bundled one for None), or None for a single network."""
        if weights is None:
            return bundled()
        if isinstance(weights, (str, os.PathLike)) and is_bundle(weights):
            return Bundle.read(weights)
        return None

    def _role_network(self, role: str, spec: Any, auto: Bundle | None, batch_size: int) -> Runtime | None:
        """The network of pipeline ``role`` that ``spec`` names: None or ``"none"``: off; ``"auto"``: the
        ``auto`` pipeline's (none when it lacks the role); ``"bundled"``: the bundled pipeline's (an error
        when it lacks the role); a pipeline folder: its network of that role; else a network file or model."""
        if spec is None or (isinstance(spec, str) and spec == "none"):
            return None
        if isinstance(spec, str) and spec in ("auto", "bundled"):
            source = auto if spec == "auto" else bundled()
            if source is None or role not in source:
                if spec == "bundled":
                    raise FileNotFoundError(f"{role}='bundled': this installation ships no {role} network")
                return None
            return source.runtime(role, self.options, batch_size)
        if isinstance(spec, (str, os.PathLike)) and is_bundle(spec):
            return Bundle.read(spec).runtime(role, self.options, batch_size)
        return load_runtime(spec, self.options, batch_size=batch_size)

    @staticmethod
    def _fine_source(stage_two: Any, networks: Bundle | None) -> Bundle | None:
        """The pipeline whose fine network ``fine="auto"`` takes: the one stage two came from (a fine network
        is trained on its own stage two's points), none for a stage two of the caller's or none at all."""
        if isinstance(stage_two, str) and stage_two == "auto":
            return networks
        if isinstance(stage_two, str) and stage_two == "bundled":
            return bundled()
        return None

    # -- properties ----------------------------------------------------------------------------------
    @property
    def config(self):
        """The stage-one network's :class:`~hyperface.models.config.ModelConfig`."""
        return self.stage_one.config

    @property
    def point_set(self) -> str | None:
        """The point set of the faces' landmarks (stage two's when it runs)."""
        if self.stage_two is not None and "landmarks" in self.stage_two.tasks:
            return self.stage_two.point_set
        return self.stage_one.point_set

    @property
    def backend(self) -> str:
        """The engine stage one runs on: ``"onnx"`` or ``"torch"``."""
        return self.stage_one.runtime.engine

    @property
    def device(self) -> str:
        return self.options.device

    @property
    def score_threshold(self) -> float:
        return self.stage_one.score_threshold

    @property
    def irp_threshold(self) -> float:
        return self.stage_one.irp_threshold

    def files(self) -> list[str | os.PathLike]:
        """Every file the analyzer reads its networks and candidates from (for output checks)."""
        runtimes = [self.stage_one.runtime] + (self.stage_two.runtimes if self.stage_two is not None else [])
        return [r.source for r in runtimes if Path(str(r.source)).is_file()] + list(self.proposals.files())

    def __repr__(self) -> str:
        return (f"FaceAnalyzer(arch={self.config.arch!r}, point_set={self.point_set!r}, tasks={self.config.tasks}, "
                f"proposals={self.proposals.name!r}, stage_two={self.stage_two!r}, backend={self.backend!r}, "
                f"device={self.device!r})")

    def __reduce__(self):
        objects = [k for k, v in self._settings.items()
                   if not isinstance(v, (str, os.PathLike, int, float, bool, dict, type(None)))]
        if objects:
            raise TypeError(f"this FaceAnalyzer was built from objects ({', '.join(objects)}) and cannot be "
                            f"pickled; build it from file paths and names to ship it to other processes")
        return (_rebuild, (self._settings,))

    # -- public API -----------------------------------------------------------------------------
    def __call__(self, image: ImageInput, boxes: Any = None) -> list[Face]:
        """Faces in one image (path, array or PIL image), best first; ``[]`` when there is none.

        ``boxes`` (K, 4) in the image's pixels replaces the candidate source for this call: one face
        per box, in the order given, whatever its score.
        """
        return self.batch([image], None if boxes is None else [boxes])[0]

    def batch(self, images: Sequence[ImageInput], boxes: Sequence[Any] | None = None,
              keys: Sequence[str | None] | None = None, color_order: str | None = None) -> list[list[Face]]:
        """Faces in each image; the same answers as one call per image, with one network call per step.

        ``boxes``: one (K, 4) array (or None: the candidate source) per image; ``keys`` names arrays
        for a ``boxes:FILE`` source (paths name themselves); ``color_order`` of these arrays (None: the
        analyzer's).
        """
        images = list(images)
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"got {len(boxes)} box arrays for {len(images)} images")
        if keys is not None and len(keys) != len(images):
            raise ValueError(f"got {len(keys)} keys for {len(images)} images")
        if not images:
            self.last_timings = dict.fromkeys(STAGES, 0.0)
            return []
        batch = self._load(images, boxes, keys, color_order or self.color_order)
        for step in self._steps():
            batch = step(batch)
        self.last_timings = {stage: batch.timings.get(stage, 0.0) for stage in STAGES}
        return batch.to_faces()

    def video(self, path: str | os.PathLike, smooth: bool = False, min_cutoff: float = 1.0, beta: float = 0.5,
              batch_size: int = 8) -> VideoAnalysis:
        """The video ``path`` opened for analysis: iterate it for one :class:`VideoFrame` per frame.

        ``smooth`` filters boxes, landmarks and pose over time (One-Euro: ``min_cutoff`` Hz, ``beta``);
        see :mod:`hyperface.inference.video`.
        """
        return VideoAnalysis(self, path, smooth=smooth, min_cutoff=min_cutoff, beta=beta, batch_size=batch_size)

    # -- pipeline --------------------------------------------------------------------------------
    def _steps(self):
        yield self._candidates
        yield self.stage_one
        if self.stage_two is not None:
            yield self._stage_two

    def _scaled(self, image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, float]:
        """``image`` (of an original ``size`` (w, h), perhaps decoded smaller) at the working size, and the
        per-axis scales working / original."""
        w, h = size
        s = min(1.0, self.max_side / max(h, w))
        sw, sh = (w, h) if s >= 1.0 else (max(1, round(w * s)), max(1, round(h * s)))
        if image.shape[1] != sw or image.shape[0] != sh:
            image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        return image, sw / w, sh / h

    def _load(self, images: list[ImageInput], boxes: Sequence[Any] | None,
              keys: Sequence[str | None] | None, color_order: str) -> Batch:
        """Decode and scale each image (a file decoded no larger than needed, one at a time), and take the
        given boxes."""
        t = time.perf_counter()
        work, scales, names, given = [], [], [], []
        for i, image in enumerate(images):
            rgb, key, size = as_rgb(image, color_order, self.max_side)
            small, sx, sy = self._scaled(rgb, size)
            del rgb
            work.append(small)
            scales.append((sx, sy))
            names.append(keys[i] if keys is not None and keys[i] is not None else key)
            given.append(boxes is not None and boxes[i] is not None)
        batch = Batch(work, scales, names, given)
        for i in range(len(images)):
            if given[i]:
                batch.add_candidates(i, self._given_boxes(boxes[i], *scales[i]))
        batch.timed("load", t)
        return batch

    @staticmethod
    def _given_boxes(boxes: Any, sx: float, sy: float) -> np.ndarray:
        """Caller's boxes (original pixels) as a checked (K, 4) array in working pixels."""
        b = np.array(boxes, dtype=np.float64)
        if b.size % 4 or (b.ndim > 1 and b.shape[-1] != 4):
            raise ValueError(f"boxes must be (K, 4) arrays of x0, y0, x1, y1, got shape {b.shape}")
        b = b.reshape(-1, 4)
        if len(b) > MAX_BOXES_PER_IMAGE:
            raise ValueError(f"{len(b)} boxes given for one image; at most {MAX_BOXES_PER_IMAGE} are analysed "
                             f"(hyperface.inference.analyzer.MAX_BOXES_PER_IMAGE)")
        bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
        if bad.any():
            raise ValueError(f"box {int(np.flatnonzero(bad)[0])} ({b[bad][0].tolist()}) is not a box: boxes are "
                             f"finite x0, y0, x1, y1 with x1 > x0 and y1 > y0")
        b[:, [0, 2]] = (b[:, [0, 2]] + 0.5) * sx - 0.5
        b[:, [1, 3]] = (b[:, [1, 3]] + 0.5) * sy - 0.5
        return b.astype(np.float32)

    def _candidates(self, batch: Batch) -> Batch:
        t = time.perf_counter()
        floor = self.stage_one.prior_floor()
        for i, image in enumerate(batch.images):
            if batch.given[i]:
                continue
            if self.pipeline == "direct":  # faces with their points, those that can reach the threshold
                found = self.proposals.found(image, self.score_threshold, points=True)
                batch.add_candidates(i, found.boxes, found.scores, found.points)
                continue
            b, prior = self.proposals.scored_above(image, batch.keys[i], floor)
            b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
            if not self.proposals.scale_invariant:  # boxes of the original image -> working pixels
                b = self._given_boxes(b, *batch.scales[i]) if len(b) else b
            batch.given[i] = self.proposals.boxes_are_faces
            batch.add_candidates(i, b, prior)
        batch.timed("candidates", t)
        return batch

    def _stage_two(self, batch: Batch) -> Batch:
        t = time.perf_counter()
        batch = self.stage_two.apply(batch)
        batch.timed("stage_two", t)
        return batch


def _rebuild(settings: dict[str, Any]) -> FaceAnalyzer:
    return FaceAnalyzer(**settings)
