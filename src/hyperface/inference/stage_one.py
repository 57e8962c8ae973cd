"""Stage one: the HyperFace network on every candidate's crop, then IRP, score fusion and L-NMS.

HyperFace, section 4 of docs/method.md. All candidates of all images of a
:class:`~hyperface.inference.batch.Batch` are cut (the prepared data's crop geometry:
:func:`hyperface.inference.crops.extract_crops`) and scored by one batched network call; the network
sees the candidate box itself, as training's ``crop_to_input`` gives it without jitter (a model
whose ``config.meta["context"]`` says otherwise gets its box enlarged by that much).

1. IRP (:mod:`hyperface.inference.irp`) re-runs the network once per round (``irp_rounds``) on boxes
   fitted to the landmarks of candidates scoring >= ``irp_threshold``;
2. where the candidate source scored its boxes (``detector``), a face's score is the weighted
   geometric mean ``prior ** w * network ** (1 - w)`` (``w`` = ``source_weight``);
3. candidates scoring >= ``score_threshold`` are merged by L-NMS (:mod:`hyperface.inference.lnms`).

Boxes the caller gave are faces as they are: each is refined by IRP (``given_irp_rounds``, by default
``irp_rounds``) whatever its score, never
dropped by the threshold nor merged with another, and gives exactly one face (its box fitted to its
landmarks), so a caller gets one answer per box, in order.

Candidates that came with five points (the ``direct`` pipeline: a detector that finds the points) are
faces already: they skip the network, IRP and L-NMS, keep the source's box and probability (the
threshold applies to it), and their points go to stage two, which aligns the face by them. The
network's faces of the same batch (given boxes) then carry their five points too, so that all faces
reach stage two in one point set.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from hyperface.inference.batch import Batch
from hyperface.inference.boxfit import fit_boxes
from hyperface.inference.candidates import Candidates, concat, decode_outputs
from hyperface.inference.crops import extract_crops
from hyperface.inference.irp import iterative_region_proposals
from hyperface.inference.lnms import DEFAULT_CONTAIN_THRESHOLD, landmark_nms
from hyperface.points import convert_points
from hyperface.runtime import Runtime

__all__ = ["StageOne"]


def _probability(name: str, value: float, low_open: bool = False) -> float:
    value = float(value)
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in {'(0' if low_open else '[0'}, 1], got {value}")
    return value


class StageOne:
    """Candidates -> faces (see the module docstring); ``runtime`` is the HyperFace network."""

    def __init__(self, runtime: Runtime, *, score_threshold: float, irp_rounds: int = 1, irp_threshold: float = 0.5,
                 given_irp_rounds: int | None = None, lnms_iou: float = 0.3, lnms_top_k: int = 5,
                 lnms_contain: float | None = DEFAULT_CONTAIN_THRESHOLD, fuse_scores: bool = True,
                 source_weight: float = 0.75) -> None:
        if runtime.io.kind != "crops" or "detection" not in runtime.config.tasks and "landmarks" not in \
                runtime.config.tasks:
            raise ValueError(f"{runtime.source}: {runtime.config.arch!r} is not a stage-one HyperFace network")
        given_irp_rounds = irp_rounds if given_irp_rounds is None else given_irp_rounds
        for name, rounds in (("irp_rounds", irp_rounds), ("given_irp_rounds", given_irp_rounds)):
            if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {rounds!r}")
        if isinstance(lnms_top_k, bool) or not isinstance(lnms_top_k, (int, np.integer)) or lnms_top_k < 1:
            raise ValueError(f"lnms_top_k must be a whole number >= 1, got {lnms_top_k!r}")
        self.runtime = runtime
        self.config = runtime.config
        self.point_set = self.config.point_set
        self.context = float(self.config.meta.get("context", 1.0))
        self.score_threshold = _probability("score_threshold", score_threshold)
        self.irp_rounds = int(irp_rounds)
        self.given_irp_rounds = int(given_irp_rounds)
        self.irp_threshold = _probability("irp_threshold", irp_threshold)
        self.lnms_iou = _probability("lnms_iou", lnms_iou)
        self.lnms_top_k = int(lnms_top_k)
        self.lnms_contain = None if lnms_contain is None else _probability("lnms_contain", lnms_contain, True)
        self.fuse_scores = bool(fuse_scores)
        self.source_weight = _probability("source_weight", source_weight, True)

    def prior_floor(self) -> float:
        """The lowest source probability that can still reach ``score_threshold`` when fused (0: unfused):
        the source leaves out boxes under it, so they cost no network run."""
        return self.score_threshold ** (1.0 / self.source_weight) if self.fuse_scores else 0.0

    def evaluate(self, images: list[np.ndarray], boxes: np.ndarray, index: np.ndarray) -> Candidates:
        """Network outputs for ``boxes`` (K, 4) of images ``index`` (K,): one batched network call."""
        s = self.config.input_size
        crops = np.empty((len(boxes), s, s, 3), dtype=np.uint8)
        for i in np.unique(index).tolist():
            sel = index == i
            crops[sel] = extract_crops(images[i], boxes[sel], s, self.context)
        return decode_outputs(self.runtime(crops), boxes, index)

    def __call__(self, batch: Batch) -> Batch:
        direct = np.isfinite(batch.points).all(axis=(1, 2)) if len(batch.points) else np.zeros(0, bool)
        if direct.any():
            return self._direct(batch, direct)
        return self._networked(batch)

    def _direct(self, batch: Batch, direct: np.ndarray) -> Batch:
        """Faces that came with their five points as they are, beside the network's faces of the others."""
        t = time.perf_counter()
        found = Candidates(boxes=batch.boxes[direct], image=batch.index[direct], score=batch.prior[direct],
                           landmarks=batch.points[direct])
        found = found.select(found.score >= self.score_threshold)
        rest = ~direct
        others = replace(batch, boxes=batch.boxes[rest], index=batch.index[rest], prior=batch.prior[rest],
                         points=batch.points[rest])
        networked = self._networked(others).faces
        if networked.landmarks is not None and self.point_set != "five":
            five = [convert_points(lm, None, self.point_set, "five")[0] for lm in networked.landmarks]
            networked.landmarks = np.asarray(five, np.float32).reshape(-1, 5, 2)
        keep = ("boxes", "image", "score", "landmarks")
        networked = Candidates(**{k: getattr(networked, k) for k in keep})
        batch.faces = concat([networked, found])
        batch.point_set = "five"
        batch.timed("lnms", t)
        return batch

    def _networked(self, batch: Batch) -> Batch:
        t = time.perf_counter()
        cands = self.evaluate(batch.images, batch.boxes, batch.index)
        batch.timed("network", t)

        t = time.perf_counter()
        given = np.asarray(batch.given, dtype=bool)[cands.image] if len(cands) else np.zeros(0, bool)
        for is_given, rounds, threshold in ((False, self.irp_rounds, self.irp_threshold),
                                            (True, self.given_irp_rounds, 0.0)):  # a given box is always a face
            rows = np.flatnonzero(given == is_given)
            if rounds > 0 and len(rows):
                refined = iterative_region_proposals(cands.select(rows), lambda b, i: self.evaluate(batch.images, b, i),
                                                     rounds=rounds, threshold=threshold, point_set=self.point_set)
                cands = cands.assign(rows, refined)
        batch.timed("irp", t)

        t = time.perf_counter()
        prior = batch.prior
        scored = ~np.isnan(prior) if self.fuse_scores else np.zeros(len(prior), bool)
        if scored.any():  # the candidate source's own face probability: weighted geometric mean
            w = self.source_weight
            fused = np.clip(prior, 0, None) ** w * np.clip(cands.score, 0, None) ** (1.0 - w)
            cands.score = np.where(scored, fused, cands.score).astype(np.float32)
        kept = cands.select(given)
        if kept.landmarks is not None and len(kept):
            kept.boxes = fit_boxes(kept.landmarks, self.point_set)
        found = cands.select(~given & (cands.score >= self.score_threshold))
        found = landmark_nms(found, self.lnms_iou, self.lnms_top_k, self.point_set, self.lnms_contain)
        batch.faces = concat([kept, found])
        batch.point_set = self.point_set
        batch.timed("lnms", t)
        return batch
