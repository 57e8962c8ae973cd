"""Hard negatives: the current detector's false positives as non-face samples (``prepare --mode hard-negatives``).

Random and Selective Search boxes rarely look like faces, so a model trained on them alone keeps
firing on the few face-like things of real photos (a knot in wood, a clock, a dog). The remedy is a
loop: train, run the trained detector over photos whose faces are all annotated (face-free photos
and the backgrounds of the training photos), keep every detection that is not a face, add those as
non-face samples and train again (docs/training.md, "Hard negatives").

Per image whose faces are all annotated (``ImageRecord.all_faces_annotated``; negative folders are),
the detector's detections are labelled by overlap exactly as candidates are
(:func:`~hyperface.data.labels.assign_labels`, every face counted, ignored ones included): a
detection becomes a non-face sample when its IoU with every face is below ``neg_iou`` and it covers
no face (the ``contain_fraction`` and whole-face rules). So a detection on an annotated face, on an
``ignore`` face (too small to call a face or a non-face) or around a face is never kept. Images
whose faces are not all annotated give nothing: an unannotated face there would be mined as a
non-face. The crops are the candidate crops' (``crop_size``, ``context``), made by the same code.

The detector (:data:`Detector`) is a callable image -> (boxes, scores); :func:`model_detector`
builds it from weights (a :class:`~hyperface.inference.analyzer.FaceAnalyzer` without stage two),
and :func:`detector_for` loads it once per process, as the aligned mode's teacher is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from hyperface.data.labels import assign_labels, fill_labels
from hyperface.data.records import ImageRecord
from hyperface.data.sampling import PrepareOptions
from hyperface.data.shards import label_dtype

__all__ = ["Detector", "analyzer_detector", "model_detector", "detector_for", "options_detector",
           "mine_hard_negatives"]

#: RGB image (H, W, 3) uint8 -> (boxes (K, 4) x0 y0 x1 y1 in its pixels, scores (K,)): the faces it reports
Detector = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]


def analyzer_detector(analyzer) -> Detector:
    """A :data:`Detector` from a :class:`~hyperface.inference.analyzer.FaceAnalyzer`: its faces' boxes and scores."""

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = analyzer(image)
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        return boxes, np.array([f.score for f in faces], dtype=np.float64)

    return detect


def model_detector(spec: str, threshold: float, min_face: float, proposals: str = "fast") -> Detector:
    """The detector ``prepare --teacher`` names (``bundled`` or a weights file), on the CPU, one thread.

    The pipeline as it runs by default (``proposals``: the ``fast`` candidates, or ``fast:DIR``; IRP,
    L-NMS) without stage two, which changes no box or score; faces score at least ``threshold`` and are at least ``min_face``
    pixels (the ``fast`` source's smallest face).
    """
    from hyperface.inference.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer(None if spec == "bundled" else spec, stage_two=None, threads=1, proposals=proposals,
                            score_threshold=threshold, proposal_options={"min_face": min_face})
    return analyzer_detector(analyzer)


@functools.lru_cache(maxsize=None)
def detector_for(spec: str, threshold: float, min_face: float, proposals: str = "fast") -> Detector:
    """:func:`model_detector`, loaded once per process (each prepare worker loads its own)."""
    return model_detector(spec, threshold, min_face, proposals)


def options_detector(opts: PrepareOptions) -> Detector:
    """The detector ``opts`` name (teacher, threshold, min face), loaded once per process."""
    return detector_for(opts.teacher, opts.teacher_threshold, opts.teacher_min_face, opts.teacher_proposals)


def mine_hard_negatives(image: np.ndarray, record: ImageRecord, detector: Detector,
                        opts: PrepareOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's false positives in one decoded image: (boxes (M, 4), label rows (M,), scores (M,)).

    Each row is a non-face (detection 0, every other task masked) with its box, IoU with the best
    matching face and that face's index (-1 on a face-free image); source/image/split are the
    caller's. An image whose faces are not all annotated gives nothing (the detector is not run).
    """
    empty = (np.zeros((0, 4)), np.zeros(0, dtype=label_dtype(opts.num_points)), np.zeros(0))
    if not record.all_faces_annotated:
        return empty
    boxes, scores = detector(image)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"the detector gave {len(boxes)} boxes and {len(scores)} scores")
    ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores = boxes[ok], scores[ok]
    a = assign_labels(boxes, record.faces, opts.label_options())
    keep = np.flatnonzero((a.detection == 0) & ~a.dropped)
    if len(keep) == 0:
        return empty
    labels = np.zeros(len(keep), dtype=label_dtype(opts.num_points))
    for i, k in enumerate(keep):
        fill_labels(labels[i], boxes[k], a, int(k), None)  # no face targets: only the detection label
    return boxes[keep], labels, scores[keep]
