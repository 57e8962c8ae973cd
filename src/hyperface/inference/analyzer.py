"""``FaceAnalyzer``: the facade. Built once (weights, candidate source, backend), called per image.

Pipeline per batch of images (HyperFace, section 4 of ../shared/docs/hyperface.md):

1. the image is scaled so that its longest side is at most ``max_side`` (never enlarged); all work
   happens on the scaled image and answers are mapped back to the original pixels;
2. candidates from the chosen source (``fast``, ``detector``, ``selective-search``, ``boxes:FILE``);
3. all candidates of all images cut (the prepared data's crop geometry; ``roi_align`` on GPUs) and
   scored by one batched network call (:mod:`hyperface.inference.crops`, :mod:`hyperface.inference.network`); the
   network sees the candidate box itself, as training's ``crop_to_input`` gives it without jitter
   (a model whose ``config.meta["context"]`` says otherwise gets its box enlarged by that much);
4. IRP (:mod:`hyperface.inference.irp`) re-runs the network once per round on boxes fitted to the
   landmarks of candidates scoring >= ``irp_threshold``;
5. candidates scoring >= ``score_threshold`` are merged by L-NMS (:mod:`hyperface.inference.lnms`);
6. stage two (:mod:`hyperface.inference.stage_two`): each face aligned by its landmarks and analysed
   again by the aligned-face network, whose landmarks, visibility, pose and gender replace stage
   one's (``Face.sources`` says which stage each output came from).

``analyzer.batch(images)`` gives the same faces as calling ``analyzer(image)`` on each (up to float
rounding of batched matrix products): every step is per image except the batched network call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
import torch
from PIL import Image

import hyperface.models  # noqa: F401  (registers every architecture a weights file may name)
from hyperface.data.images import load_image, to_rgb_array
from hyperface.data.records import GENDERS
from hyperface.inference.assets import resolve_stage_two, resolve_weights
from hyperface.inference.candidates import Candidates, decode_outputs
from hyperface.inference.crops import extract_crops, extract_crops_cv2, image_to_tensor
from hyperface.inference.irp import iterative_region_proposals
from hyperface.inference.lnms import DEFAULT_CONTAIN_THRESHOLD, landmark_nms
from hyperface.inference.network import OnnxNetwork, check_device, load_network
from hyperface.inference.proposals import DEFAULT_PROPOSALS, NETWORK_SOURCES, ProposalSource, create_proposals
from hyperface.inference.result import Face
from hyperface.inference.stage_two import StageTwo
from hyperface.inference.video import VideoAnalysis
from hyperface.models.heads import HyperFaceModel
from hyperface.models.preprocess import to_input_tensor

__all__ = ["FaceAnalyzer", "ImageInput", "STAGES", "DEFAULT_SCORE_THRESHOLD", "FUSED_SCORE_THRESHOLD",
           "SOURCE_WEIGHT"]

log = logging.getLogger(__name__)

ImageInput = Union[str, Path, np.ndarray, Image.Image]
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


def as_rgb(image: ImageInput) -> tuple[np.ndarray, str | None]:
    """(H x W x 3 uint8 RGB, key) from a path, an array (RGB, grey, or RGBA) or a PIL image."""
    if isinstance(image, (str, Path)):
        return load_image(image), str(image)
    if isinstance(image, Image.Image):
        return to_rgb_array(image), None
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8 RGB, got dtype {arr.dtype}")
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 4):  # grey, or RGBA composited on white
            arr = to_rgb_array(Image.fromarray(arr)) if arr.size else arr
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"image arrays must be H x W x 3 RGB, got shape {image.shape}")
        return np.ascontiguousarray(arr), None
    raise TypeError(f"an image is a path, a numpy RGB array or a PIL image, got {type(image).__name__}")


class FaceAnalyzer:
    """Find faces and predict landmarks, visibility, head pose and gender.

    ``weights``: a hyperface weights file (``None``: the bundled ``hyperface-compact``), an ``.onnx``
    export (with ``backend="onnx"``) or a model object. ``proposals``: ``"fast"`` (``"fast:DIR"``: networks of ``train-proposals --out DIR``),
    ``"detector"`` (``"detector:PATH"``: a ``train-detector`` weights file or its folder),
    ``"selective-search"``, ``"boxes:FILE"`` or a :class:`ProposalSource`. ``score_threshold``: the
    face score a face must reach (``None``: 0.5 for the network's score alone, 0.6 for a score fused
    with the source's, :data:`FUSED_SCORE_THRESHOLD`); ``irp_rounds``/``irp_threshold``: IRP rounds and the score
    from which a candidate is refined; ``lnms_iou``/``lnms_top_k``: L-NMS grouping overlap and group
    size; ``lnms_contain``: a face whose box holds this share of a higher-scoring face's box is
    dropped (``None``: kept); ``max_side``: longest image side the pipeline works at (larger images are scaled down,
    answers mapped back); ``batch_size``: crops per network call; ``proposal_options``: keyword
    arguments of the candidate source (e.g. ``{"min_face": 40}`` for ``fast`` or ``detector``). ``backend``:
    ``"auto"`` (onnxruntime on the CPU where it imports, else PyTorch), ``"torch"`` or ``"onnx"``;
    every network of the pipeline uses it. ``threads``: intra-op threads of onnxruntime's sessions
    *and* of PyTorch, which is process-wide (``torch.set_num_threads``), so it also changes other
    PyTorch code in the process; ``None`` leaves both at their defaults.
    ``stage_two``: the aligned-face network (``"auto"``: the bundled one when ``weights`` is the
    bundled model too, else none; ``"bundled"``; a weights file or model; ``None``: off), with
    ``iterations`` alignment rounds, ``flip_average`` and ``pose_from`` (see
    :mod:`hyperface.inference.stage_two`). ``fuse_scores``: where the candidate source scores its
    boxes (``detector``), a face's score is the weighted geometric mean ``prior ** w * network ** (1 - w)``
    of that probability and the network's, ``w`` = ``source_weight`` (:data:`SOURCE_WEIGHT`, 0.75:
    the source sees the whole photo, a crop does not); ``False``: the network's alone. Fused,
    candidates whose own probability is under ``score_threshold ** (1 / w)`` are not analysed: they
    could not reach the threshold.
    Everything is loaded here; calls do no I/O except reading an image given by path.

    Defaults: the bundled ``detector`` source (see :mod:`hyperface.inference.proposals.detector`),
    fused scores with ``score_threshold`` 0.6, one IRP round from the network's own score 0.5 (as
    ``irp_threshold`` follows an explicit ``score_threshold``), L-NMS IoU 0.3 and top 5; with the
    bundled model they find all 25 faces of dlib's testing photos with no false face, and AP 0.934 on
    the face-mask validation photos (``benchmarks/analyze_dlib.py``, docs/model_card.md).
    """

    def __init__(self, weights: str | Path | HyperFaceModel | None = None, device: str = "cpu",
                 proposals: str | ProposalSource = DEFAULT_PROPOSALS, backend: str = "auto",
                 score_threshold: float | None = None, irp_rounds: int = 1,
                 irp_threshold: float | None = None,
                 lnms_iou: float = 0.3, lnms_top_k: int = 5,
                 lnms_contain: float | None = DEFAULT_CONTAIN_THRESHOLD, max_side: int = 1280, batch_size: int = 64,
                 proposal_options: dict[str, Any] | None = None, threads: int | None = None,
                 stage_two: str | Path | HyperFaceModel | None = "auto", iterations: int = 1,
                 flip_average: bool = False, pose_from: str = "auto", fuse_scores: bool = True,
                 source_weight: float = SOURCE_WEIGHT) -> None:
        bundled_stage_one = weights is None
        if not isinstance(weights, HyperFaceModel):
            weights = resolve_weights(weights)
        self.device = check_device(device)
        if threads is not None:
            if int(threads) < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(int(threads))
        self.network = load_network(weights, backend=backend, device=device, batch_size=batch_size,
                                    threads=threads)
        self.backend = "onnx" if isinstance(self.network, OnnxNetwork) else "torch"
        self.config = self.network.config
        self.point_set = self.config.point_set
        self.context = float(self.config.meta.get("context", 1.0))
        opts = dict(proposal_options or {})
        if isinstance(proposals, str) and proposals.partition(":")[0] in NETWORK_SOURCES:
            opts.setdefault("device", device)
            opts.setdefault("threads", threads)
            opts.setdefault("backend", self.backend)
        self.proposals = create_proposals(proposals, **opts)
        stage_two_weights = resolve_stage_two(stage_two, bundled_stage_one)
        self.stage_two = None if stage_two_weights is None else StageTwo(
            stage_two_weights, backend=self.backend, device=device, threads=threads, iterations=iterations,
            flip_average=flip_average, pose_from=pose_from, batch_size=batch_size)
        self.fuse_scores = bool(fuse_scores)
        if not 0.0 < source_weight <= 1.0:
            raise ValueError(f"source_weight must be in (0, 1], got {source_weight}")
        self.source_weight = float(source_weight)
        if score_threshold is None:  # IRP still starts at the network's own even odds
            fused = self.fuse_scores and self.proposals.scores_boxes
            score_threshold = FUSED_SCORE_THRESHOLD if fused else DEFAULT_SCORE_THRESHOLD
            irp_threshold = DEFAULT_SCORE_THRESHOLD if irp_threshold is None else irp_threshold
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if max_side < 32:
            raise ValueError(f"max_side must be >= 32 pixels, got {max_side}")
        self.score_threshold = float(score_threshold)
        self.irp_rounds = int(irp_rounds)
        self.irp_threshold = float(score_threshold if irp_threshold is None else irp_threshold)
        self.lnms_iou = float(lnms_iou)
        self.lnms_top_k = int(lnms_top_k)
        self.lnms_contain = None if lnms_contain is None else float(lnms_contain)
        self.max_side = int(max_side)
        #: seconds spent per stage in the last call (see :data:`STAGES`), for benchmarks
        self.last_timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return (f"FaceAnalyzer(arch={self.config.arch!r}, point_set={self.point_set!r}, tasks={self.config.tasks}, "
                f"proposals={self.proposals.name!r}, stage_two={self.stage_two!r}, backend={self.backend!r}, "
                f"device={str(self.device)!r})")

    # -- public API -----------------------------------------------------------------------------
    def __call__(self, image: ImageInput, boxes: np.ndarray | None = None) -> list[Face]:
        """Faces in one image (path, RGB array or PIL image), best first; ``[]`` when there is none.

        ``boxes`` (K, 4) in the image's pixels replaces the candidate source for this call.
        """
        return self.batch([image], None if boxes is None else [boxes])[0]

    def batch(self, images: Sequence[ImageInput], boxes: Sequence[np.ndarray | None] | None = None,
              keys: Sequence[str | None] | None = None) -> list[list[Face]]:
        """Faces in each image; the same answers as one call per image, with one network call per step.

        ``keys`` names arrays for a ``boxes:FILE`` source (paths name themselves).
        """
        timings = dict.fromkeys(STAGES, 0.0)
        t0 = time.perf_counter()
        loaded = [as_rgb(im) for im in images]
        if keys is not None:
            loaded = [(arr, key if key is not None else k) for (arr, k), key in zip(loaded, keys, strict=True)]
        timings["load"] = time.perf_counter() - t0
        faces = self._analyze(loaded, boxes, timings)
        self.last_timings = timings
        return faces

    def video(self, path: str | Path, smooth: bool = False, min_cutoff: float = 1.0, beta: float = 0.5,
              batch_size: int = 8) -> VideoAnalysis:
        """The video ``path`` opened for analysis: iterate it for one :class:`VideoFrame` per frame.

        ``smooth`` filters boxes, landmarks and pose over time (One-Euro: ``min_cutoff`` Hz, ``beta``);
        see :mod:`hyperface.inference.video`.
        """
        return VideoAnalysis(self, path, smooth=smooth, min_cutoff=min_cutoff, beta=beta, batch_size=batch_size)

    # -- pipeline --------------------------------------------------------------------------------
    def _scaled(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        h, w = image.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s >= 1.0:
            return image, 1.0, 1.0
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
        return cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA), sw / w, sh / h

    def _evaluate(self, images: list[np.ndarray], tensors: list[torch.Tensor] | None, boxes: torch.Tensor,
                  image_index: torch.Tensor) -> Candidates:
        """Network outputs for ``boxes`` (K, 4) of images ``image_index`` (K,): one batched call.

        On a CPU the crops are the prepared data's own (``extract_crops_cv2``); on a GPU one
        ``roi_align`` per image on ``tensors``.
        """
        s = self.config.input_size
        if tensors is None:
            crops_np = np.empty((len(boxes), s, s, 3), dtype=np.uint8)
            idx, b = image_index.cpu().numpy(), boxes.cpu().numpy()
            for i in np.unique(idx).tolist():
                sel = idx == i
                crops_np[sel] = extract_crops_cv2(images[i], b[sel], s, self.context)
            crops = torch.from_numpy(crops_np)
        else:
            crops_f = torch.empty((len(boxes), 3, s, s), dtype=torch.float32, device=self.device)
            for i in torch.unique(image_index).tolist():
                sel = image_index == i
                crops_f[sel] = extract_crops(tensors[i], boxes[sel], s, self.context)
            crops = crops_f.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)  # training crops are uint8
        outputs = self.network(to_input_tensor(crops, self.config, device=self.device))
        return decode_outputs(outputs, boxes, image_index)

    def _analyze(self, loaded: list[tuple[np.ndarray, str | None]], given: Sequence | None,
                 timings: dict[str, float]) -> list[list[Face]]:
        if given is not None and len(given) != len(loaded):
            raise ValueError(f"got {len(given)} box arrays for {len(loaded)} images")
        scaled, images, tensors, all_boxes, all_index, all_prior = [], [], [], [], [], []
        t = time.perf_counter()
        for i, (image, key) in enumerate(loaded):
            small, sx, sy = self._scaled(image)
            scaled.append((sx, sy))
            if given is not None and given[i] is not None:
                b = np.asarray(given[i], dtype=np.float32).reshape(-1, 4).copy()
                prior, from_original = None, True
            else:
                b, prior = self.proposals.scored_above(small, key, self._prior_floor())
                b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
                from_original = not self.proposals.scale_invariant
                if from_original:
                    b = b.copy()
            if from_original and (sx != 1.0 or sy != 1.0):  # original pixels -> working pixels
                b[:, [0, 2]] = (b[:, [0, 2]] + 0.5) * sx - 0.5
                b[:, [1, 3]] = (b[:, [1, 3]] + 0.5) * sy - 0.5
            ok = np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b = b[ok]
            if prior is None or not self.fuse_scores:  # NaN: no probability of the source's to fuse
                prior = np.full(len(b), np.nan, np.float32)
            else:
                prior = prior[ok]
            images.append(small)
            if self.device.type != "cpu":
                tensors.append(image_to_tensor(small, self.device))
            all_boxes.append(torch.from_numpy(b).to(self.device))
            all_index.append(torch.full((len(b),), i, dtype=torch.long, device=self.device))
            all_prior.append(torch.as_tensor(prior, dtype=torch.float32, device=self.device))
        boxes, index, prior = torch.cat(all_boxes), torch.cat(all_index), torch.cat(all_prior)
        timings["candidates"] = time.perf_counter() - t

        t = time.perf_counter()
        tensors_or_none = tensors if self.device.type != "cpu" else None
        cands = self._evaluate(images, tensors_or_none, boxes, index)
        timings["network"] = time.perf_counter() - t

        t = time.perf_counter()
        if self.irp_rounds > 0:
            cands = iterative_region_proposals(
                cands, lambda b, i: self._evaluate(images, tensors_or_none, b, i), rounds=self.irp_rounds,
                threshold=self.irp_threshold, point_set=self.point_set)
        timings["irp"] = time.perf_counter() - t

        t = time.perf_counter()
        scored = ~torch.isnan(prior)
        if bool(scored.any()):  # the candidate source's own face probability: weighted geometric mean
            w = self.source_weight
            fused = prior.clamp(min=0) ** w * cands.score.clamp(min=0) ** (1.0 - w)
            cands = replace(cands, score=torch.where(scored, fused, cands.score))
        cands = cands.select(cands.score >= self.score_threshold)
        merged = landmark_nms(cands, self.lnms_iou, self.lnms_top_k, self.point_set, self.lnms_contain)
        timings["lnms"] = time.perf_counter() - t

        t = time.perf_counter()
        merged, sources = self._stage_two(images, merged)
        results = [self._faces(merged.select(merged.image == i), *scaled[i], sources) for i in range(len(loaded))]
        timings["stage_two"] = time.perf_counter() - t
        return results

    def _prior_floor(self) -> float:
        """The lowest source probability that can still reach ``score_threshold`` when fused (0: unfused):
        the source leaves out boxes under it, so they cost no network run."""
        if not self.fuse_scores:
            return 0.0
        return self.score_threshold ** (1.0 / self.source_weight)

    def _stage_two(self, images: list[np.ndarray], c: Candidates) -> tuple[Candidates, dict[str, str]]:
        """Stage two's answers in place of stage one's, and which stage each output comes from."""
        sources = {task: "stage1" for task in ("box", "score", "landmarks", "visibility", "pose", "gender")}
        if self.stage_two is None or c.landmarks is None:
            return c, sources
        out = self.stage_two(images, c.landmarks.cpu().numpy(), self.point_set, c.image.cpu().numpy())
        new: dict[str, torch.Tensor] = {}
        for task in ("landmarks", "visibility", "pose", "gender"):
            value = getattr(out, task)
            if value is not None:
                new[task] = torch.as_tensor(value, dtype=torch.float32, device=c.score.device)
                sources[task] = "stage2"
        return replace(c, **new), sources

    def _faces(self, c: Candidates, sx: float, sy: float, sources: dict[str, str]) -> list[Face]:
        """Rows of ``c`` as :class:`Face` objects in original-image pixels, best first."""
        c = c.select(torch.argsort(c.score, descending=True, stable=True)).to("cpu")

        def back(xy: np.ndarray) -> np.ndarray:  # working pixels -> original pixels
            out = np.array(xy, dtype=np.float64)
            out[..., 0::2] = (out[..., 0::2] + 0.5) / sx - 0.5
            out[..., 1::2] = (out[..., 1::2] + 0.5) / sy - 0.5
            return out

        boxes = back(c.boxes.numpy())
        lms = None if c.landmarks is None else back(c.landmarks.numpy())
        faces = []
        for k in range(len(c)):
            gender = prob = None
            if c.gender is not None:
                g = int(torch.argmax(c.gender[k]))
                gender, prob = GENDERS[g], float(c.gender[k, g])
            faces.append(Face(
                box=boxes[k], score=float(c.score[k]),
                landmarks=None if lms is None else lms[k],
                point_set=self._point_set(sources) if lms is not None else None,
                visibility=None if c.visibility is None else c.visibility[k].numpy(),
                pose=None if c.pose is None else c.pose[k].numpy(),
                gender=gender, gender_probability=prob,
                sources={k: v for k, v in sources.items() if k in ("box", "score") or getattr(c, k) is not None}))
        return faces

    def _point_set(self, sources: dict[str, str]) -> str | None:
        return self.stage_two.point_set if sources["landmarks"] == "stage2" else self.point_set

