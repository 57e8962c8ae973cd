"""Run models over annotated images and collect per-face results, in both evaluation modes.

* ``full``: the model finds the faces itself (its default operating point); on a crop with one
  annotated face the face used is chosen by :func:`hyperface.evaluate.metrics.select_face`; on a
  photo with several annotated faces each face gets the detection that the detection matching
  assigns to it. Photos with every face annotated are also scored for detection, with all reported
  detections (lower-scored ones included) for the average precision.
* ``box``: the model is given the ground-truth box of each face (:func:`references.matching_box`)
  and its output for that box is used.

Images are read once and every model runs on them, so several models cost one pass over the data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hyperface.data.images import ImageReadError, load_image
from hyperface.data.records import GENDERS, FaceRecord, ImageRecord
from hyperface.data.video import VideoFrames
from hyperface.evaluate import metrics as M
from hyperface.evaluate.references import (
    convert_prediction,
    detection_box,
    landmark_target,
    matching_box,
    pose_bin,
    pose_reference,
)
from hyperface.evaluate.results import MODES, FaceResult, RunResult
from hyperface.evaluate.summary import GENDER_GROUPS

__all__ = ["EvaluatedModel", "ImageSource", "run_models", "evaluate_datasets", "score_face"]

log = logging.getLogger("hyperface.evaluate")


class EvaluatedModel(Protocol):
    """What the runner needs of a model (see :mod:`hyperface.evaluate.models` for FaceAnalyzer's)."""

    name: str
    point_set: str | None
    tasks: tuple[str, ...]
    score_threshold: float | None

    def detect(self, image: np.ndarray, key: str | None = None) -> list:
        """Faces at the model's default operating point."""

    def detect_all(self, image: np.ndarray, key: str | None = None) -> list:
        """Every face the model can report, lower-scored ones included (for average precision)."""

    def given(self, image: np.ndarray, boxes: np.ndarray, key: str | None = None) -> list:
        """One result (a Face, or None when the model gives nothing) per given box, in order."""


class ImageSource:
    """Decodes the image of a record; keeps the last video open so that frames read in order."""

    def __init__(self) -> None:
        self._video: VideoFrames | None = None

    def __call__(self, record: ImageRecord) -> np.ndarray:
        if record.frame is None:
            return load_image(record.image)
        if self._video is None or self._video.path != record.image:
            self.close()
            self._video = VideoFrames(record.image)
        return self._video.read(record.frame)

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None


def _carries(faces: Sequence, attr: str) -> np.ndarray:
    return np.array([getattr(f, attr) is not None for f in faces], dtype=bool)


def _boxes(faces: Sequence) -> np.ndarray:
    return np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)


def score_face(record: ImageRecord, index: int, face: FaceRecord, size: tuple[int, int],
               model: EvaluatedModel, pick) -> FaceResult | None:
    """Score one annotated face; ``pick(attr)`` returns the model's Face for that output, or None.

    Returns None when the face carries no label the model can be scored on.
    """
    result = FaceResult(image=record.key, face=index, pose_class=face.pose_class, pose_bin=pose_bin(face))
    scored = False
    target = landmark_target(face, model.point_set) if "landmarks" in model.tasks else None
    if target is not None:
        chosen = pick("landmarks")
        result.nme_set = target.point_set
        if chosen is None:
            result.nme = float("nan")
        else:
            pred = convert_prediction(chosen.landmarks, chosen.point_set or model.point_set, target.point_set)
            result.nme = M.face_nme(pred, target.points, target.point_set)
            result.nme_parts = M.face_nme_parts(pred, target.points, target.point_set) or None
        scored = True
    if "pose" in model.tasks:
        ref = pose_reference(face, size)
        if ref is not None or face.pose_class is not None:
            chosen = pick("pose")
            result.pose_pred = np.full(3, np.nan) if chosen is None else np.asarray(chosen.pose, dtype=np.float64)
            if ref is not None:
                result.pose_ref, result.pose_source = ref
            scored = True
    if "gender" in model.tasks and face.gender is not None:
        chosen = pick("gender")
        result.gender_true = int(face.gender)
        result.gender_pred = -1 if chosen is None else GENDERS.index(chosen.gender)
        result.groups = {k: face.attributes[k] for k in GENDER_GROUPS if k in face.attributes}
        scored = True
    return result if scored else None


def _full_pickers(faces: list, gt_boxes: np.ndarray) -> list:
    """For each annotated face (its box in ``gt_boxes``), a function output -> predicted Face or None."""
    if len(gt_boxes) == 1:
        def pick_one(attr: str):
            i = M.select_face(_boxes(faces), gt_boxes[0], _carries(faces, attr))
            return None if i is None else faces[i]
        return [pick_one]
    # Several annotated faces: the detection matching assigns at most one detection to each.
    scores = np.array([f.score for f in faces], dtype=np.float64)
    match = M.match_detections(_boxes(faces), scores, gt_boxes)
    order = np.argsort(-scores, kind="stable")  # the order match_detections sorts by
    assigned = {int(g): faces[int(order[i])] for i, g in enumerate(match.matched) if g >= 0}

    def make(j: int):
        def pick(attr: str):
            f = assigned.get(j)
            return f if f is not None and getattr(f, attr) is not None else None
        return pick
    return [make(j) for j in range(len(gt_boxes))]


def _annotated(record: ImageRecord) -> list[FaceRecord]:
    """The faces detection counts (not the ignore regions), in the order of the matches' indices."""
    return [f for f in record.faces if not f.attributes.get("ignore")]


def _found_faces(record: ImageRecord, match: M.DetectionMatch) -> list[tuple[dict, float, bool]]:
    """(attributes, height in pixels, found) of each annotated face, for recall by size and attribute."""
    taken = set(int(g) for g in match.matched if g >= 0)
    return [(dict(f.attributes), float(f.box[3] - f.box[1]), i in taken) for i, f in enumerate(_annotated(record))]


def _detection_matches(record: ImageRecord, faces: list, size: tuple[int, int]) -> M.DetectionMatch:
    real = _annotated(record)
    ignore = [f.box for f in record.faces if f.attributes.get("ignore")]
    gt = np.array([detection_box(record, f, size) for f in real]).reshape(-1, 4)
    return M.match_detections(_boxes(faces), [f.score for f in faces], gt, ignore or None)


def _has_labels(face: FaceRecord) -> bool:
    return (face.landmarks is not None or face.pose is not None or face.pose_class is not None
            or face.gender is not None)


def _evaluate_record(record: ImageRecord, image: np.ndarray, model: EvaluatedModel, mode: str,
                     run: RunResult) -> None:
    """Add one image's results to ``run``; nothing is added when the model raises."""
    h, w = image.shape[:2]
    size = (w, h)
    key = record.key
    scored = [i for i, f in enumerate(record.faces) if not f.attributes.get("ignore") and _has_labels(f)]
    gt_boxes = np.array([matching_box(record, record.faces[i], size) for i in scored]).reshape(-1, 4)
    det_default = det_all = None
    t0 = time.perf_counter()
    if mode == "full":
        found = list(model.detect(image, key))
        if record.all_faces_annotated:
            det_default = _detection_matches(record, found, size)
            det_all = _detection_matches(record, list(model.detect_all(image, key)), size)
        pickers = _full_pickers(found, gt_boxes) if scored else []
    else:
        given = list(model.given(image, gt_boxes, key)) if scored else []
        if len(given) != len(gt_boxes):
            raise RuntimeError(f"{model.name}: {len(given)} results for {len(gt_boxes)} given boxes")

        def make(f):
            return lambda attr: f if f is not None and getattr(f, attr) is not None else None
        pickers = [make(f) for f in given]
    seconds = time.perf_counter() - t0
    results = [score_face(record, i, record.faces[i], size, model, pick) for i, pick in zip(scored, pickers)]
    # Commit only now, so that a failure above leaves the run as it was.
    run.seconds += seconds
    run.images += 1
    run.faces.extend(r for r in results if r is not None)
    if det_default is not None:
        run.detections_default.append(det_default)
        run.detections.append(det_all)
        run.found_faces.extend(_found_faces(record, det_default))


@dataclass
class _Progress:
    every: float = 30.0
    last: float = 0.0

    def tick(self, done: int, dataset: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("%s: %d images evaluated", dataset, done)


def run_models(models: Sequence[EvaluatedModel], records: Iterable[ImageRecord], dataset: str,
               modes: Sequence[str] = MODES) -> list[RunResult]:
    """Evaluate every model in every mode on ``records``; one :class:`RunResult` per (model, mode).

    An image that cannot be decoded is reported and skipped; a model that fails on an image is
    reported and the image's faces count as missed for it (never silently dropped).
    """
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"unknown mode(s) {bad}; choose from {list(MODES)}")
    runs = {(m.name, mode): RunResult(model=m.name, dataset=dataset, mode=mode,
                                      score_threshold=m.score_threshold)
            for m in models for mode in modes}
    source = ImageSource()
    progress = _Progress()
    problems: list[str] = []
    done = 0
    try:
        for record in records:
            try:
                image = source(record)
            except ImageReadError as exc:
                problems.append(str(exc))
                log.warning("%s", exc)
                continue
            for model in models:
                for mode in modes:
                    run = runs[(model.name, mode)]
                    try:
                        _evaluate_record(record, image, model, mode, run)
                    except Exception as exc:  # noqa: BLE001 - one bad image must not stop the run
                        msg = f"{record.key}: {model.name} ({mode}) failed: {type(exc).__name__}: {exc}"
                        log.warning("%s", msg)
                        run.problems.append(msg)
                        _count_as_missed(record, image, model, mode, run)
            done += 1
            progress.tick(done, dataset)
    finally:
        source.close()
    out = list(runs.values())
    for run in out:
        run.problems[:0] = problems
    return out


def _count_as_missed(record: ImageRecord, image: np.ndarray, model: EvaluatedModel, mode: str,
                     run: RunResult) -> None:
    """Record every face of an image a model failed on as missed."""
    h, w = image.shape[:2]
    run.images += 1
    for i, face in enumerate(record.faces):
        if face.attributes.get("ignore"):
            continue
        res = score_face(record, i, face, (w, h), model, lambda attr: None)
        if res is not None:
            run.faces.append(res)
    if mode == "full" and record.all_faces_annotated:
        empty = _detection_matches(record, [], (w, h))
        run.detections.append(empty)
        run.detections_default.append(empty)
        run.found_faces.extend(_found_faces(record, empty))


def evaluate_datasets(models: Sequence[EvaluatedModel], datasets: Sequence, modes: Sequence[str] = MODES
                      ) -> list[RunResult]:
    """Run every model on every dataset (iterables of records with a ``label`` and ``problems``).

    The readers' skipped items are added to each run's problems.
    """
    runs: list[RunResult] = []
    for dataset in datasets:
        log.info("evaluating %d model(s) on %s", len(models), dataset.label)
        part = run_models(models, dataset, dataset.label, modes)
        skipped = list(getattr(dataset, "problems", []))
        for run in part:
            run.problems[:0] = skipped
            if run.images == 0:
                log.warning("%s: no image evaluated for %s (%s)", dataset.label, run.model, run.mode)
        runs += part
    return runs
