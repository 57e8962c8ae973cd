"""The metrics of ``evaluation.md``: the one definition that evaluation and training both use.

Everything here is exactly what the project's numbers mean, so that a number printed by
``hyperface evaluate`` is comparable with numbers from other tools, and the NME, AUC and pose error
that training logs per epoch (``nme68``, ``auc5``, ``pose_mae`` ...) are the same numbers on the same
predictions. The landmark and pose functions take numpy arrays or torch tensors (training's, on
any device); this module never imports torch. Point sets are named as in :mod:`hyperface.points`
(``ibug68``, ``five``) wherever a metric depends on one:

* matching a predicted box to an annotated box: the centre of the detection inside the ground-truth
  box (border included) and ``0.5 <= sqrt(area(d) / area(g)) <= 2``;
* the face used on a one-face crop: among the faces that carry the output and match, the one with the
  highest IoU with the ground-truth box;
* landmark NME (68 points: outer-eye-corner distance; 5 points: eye-centre distance), the area under
  the cumulative error curve up to the point set's limit (:data:`NME_LIMITS`), divided by it
  (``mean max(0, 1 - NME / limit)``, misses contributing 0) and the failure rate (NME above the
  limit, misses included);
* head-pose absolute errors wrapped to [0, 180] per angle, and the Spearman correlation of ``-yaw``
  with MTFL's 1-5 pose class;
* gender accuracy with misses counted wrong, on found faces, and per class;
* detection: greedy matching by decreasing score, recall / precision at a threshold and the
  all-point (VOC 2010) average precision.

A missed face is NaN in arrays of per-face errors, -1 in arrays of predicted class indices.
Boxes are (x0, y0, x1, y1) in pixels, with area ``(x1 - x0) * (y1 - y0)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hyperface.arrays import as_float_array, is_tensor, namespace
from hyperface.boxes import as_boxes, box_area, box_iou
from hyperface.points import get_point_set, mean_point_error
from hyperface.pose import wrap_degrees

__all__ = [
    "NME_LIMITS",
    "box_area",
    "box_iou",
    "match_matrix",
    "select_face",
    "nme_per_face",
    "face_nme",
    "face_nme_parts",
    "nme_68",
    "nme_5",
    "auc_scores",
    "failures",
    "landmark_summary",
    "ced_curve",
    "pose_errors",
    "pose_summary",
    "spearman_yaw_class",
    "gender_summary",
    "DetectionMatch",
    "match_detections",
    "detection_curve",
    "average_precision",
    "recall_at_precision",
    "RECALL_AT_PRECISION",
    "detection_summary",
    "match_subset",
]

#: Upper limit of the cumulative error curve (the AUC's and the failure rate's), per point set of
#: the ground truth; the point sets with an NME of their own.
NME_LIMITS: dict[str, float] = {"ibug68": 0.08, "five": 0.10}


def match_matrix(detections: ArrayLike, ground_truth: ArrayLike) -> np.ndarray:
    """(D, G) bool: detection ``d`` matches ground-truth box ``g`` by the evaluation rule.

    The centre of ``d`` lies inside ``g`` (its border included) and the size ratio
    ``sqrt(area(d) / area(g))`` is within [0.5, 2.0], both ends included. The ratio is compared as
    ``area(d) / area(g)`` in [0.25, 4], which is the same condition without a rounding square root.
    """
    d, g = as_boxes(detections), as_boxes(ground_truth)
    cx = (d[:, 0] + d[:, 2]) / 2
    cy = (d[:, 1] + d[:, 3]) / 2
    inside = ((cx[:, None] >= g[None, :, 0]) & (cx[:, None] <= g[None, :, 2])
              & (cy[:, None] >= g[None, :, 1]) & (cy[:, None] <= g[None, :, 3]))
    area_d, area_g = box_area(d), box_area(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = area_d[:, None] / area_g[None, :]
    sized = (area_g[None, :] > 0) & (ratio >= 0.25) & (ratio <= 4.0)
    return inside & sized


def select_face(boxes: ArrayLike, ground_truth_box: ArrayLike, carries: ArrayLike | None = None) -> int | None:
    """Index of the predicted face used for a crop with one annotated face, or None (missed).

    Among the faces that carry the output in question (``carries``; all when None) and match the
    ground-truth box, the one with the highest IoU with it.
    """
    b = as_boxes(boxes)
    if len(b) == 0:
        return None
    ok = match_matrix(b, ground_truth_box)[:, 0]
    if carries is not None:
        ok &= np.asarray(carries, dtype=bool).reshape(-1)
    if not ok.any():
        return None
    iou = box_iou(b, ground_truth_box)[:, 0]
    iou = np.where(ok, iou, -np.inf)
    return int(np.argmax(iou))


# --------------------------------------------------------------------------------------- landmarks

def nme_per_face(pred: Any, truth: Any, point_set: str, mask: Any = None) -> tuple[Any, Any]:
    """Per-face NME and whether each face can be measured, for (..., N, 2) points (numpy or torch).

    Mean point-to-point error over the points ``mask`` (..., N) marks (default: the finite
    ground-truth points), divided by the distance between the ground truth's two points of the
    point set's normalising pair (:attr:`~hyperface.points.PointSet.normalising_pair`: outer eye
    corners 36 and 45 for ``ibug68``, eye centres for ``five``). A face can be measured when both
    points of the pair are marked and apart; the others are NaN. Training passes its label masks
    (unlabelled points may hold anything), evaluation NaN for unannotated points.
    """
    pred, truth = as_float_array(pred), as_float_array(truth)
    xp = namespace(truth)
    if mask is None:
        mask = xp.isfinite(truth).all(-1)
    elif not is_tensor(mask):
        mask = np.asarray(mask, dtype=bool)
    ps = get_point_set(point_set)
    norm = ps.normalising_distance(truth)  # a clear error for a set with no NME of its own (aflw21)
    i, j = ps.normalising_pair
    valid = mask[..., i] & mask[..., j] & (norm > 0)
    return mean_point_error(pred, truth, mask) / xp.where(valid, norm, float("nan")), valid


def face_nme(pred: ArrayLike, truth: ArrayLike, point_set: str) -> float:
    """One face's NME on ``point_set`` (:func:`nme_per_face`), its ground truth NaN where unannotated.

    Raises ``ValueError`` for shapes that are not the point set's N x 2, or ground truth that
    cannot normalise (no finite point, or a normalising point missing or both at one place).
    """
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    n = get_point_set(point_set).num_points
    if g.shape != (n, 2) or p.shape != g.shape:
        raise ValueError(f"{point_set} NME: prediction {p.shape} and ground truth {g.shape} must both be {n} x 2")
    if not np.isfinite(g).all(-1).any():
        raise ValueError(f"{point_set} NME: the ground truth has no finite point")
    value, valid = nme_per_face(p, g, point_set)
    if not valid:
        raise ValueError(f"{point_set} NME: the normalising distance must be positive, got "
                         f"{get_point_set(point_set).normalising_distance(g)}")
    return float(value)


def face_nme_parts(pred: ArrayLike, truth: ArrayLike, point_set: str) -> dict[str, float]:
    """One face's NME part by part (:attr:`~hyperface.points.PointSet.parts`: jaw, brows, nose, eyes,
    mouth for ``ibug68``): the mean error over each part's annotated points, over the face's normalising
    distance, so that the whole face's NME is the parts' mean weighted by their annotated points. Empty
    for a set without parts; a part with no annotated point is left out. Checks as :func:`face_nme`."""
    face_nme(pred, truth, point_set)  # the same checks, the same errors
    ps = get_point_set(point_set)
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    known, norm = np.isfinite(g).all(-1), float(ps.normalising_distance(g))
    out = {}
    for name, idx in ps.parts:  # the NME's own numerator over the part's points, its own denominator
        mask = np.zeros_like(known)
        mask[list(idx)] = True
        if (mask := mask & known).any():
            out[name] = float(mean_point_error(p, g, mask)) / norm
    return out


def nme_68(pred: ArrayLike, truth: ArrayLike) -> float:
    """68-point NME: mean error / distance between the outer eye corners 36 and 45 (0-based)."""
    return face_nme(pred, truth, "ibug68")


def nme_5(pred: ArrayLike, truth: ArrayLike) -> float:
    """5-point NME: mean error / distance between the two ground-truth eye centres."""
    return face_nme(pred, truth, "five")


def auc_scores(nmes: Any, limit: float) -> Any:
    """Each face's part of the AUC, ``max(0, 1 - NME / limit)``, a missed face (NaN) 0 (numpy or torch).

    Their mean over all faces is the area under the cumulative error curve up to ``limit``
    divided by ``limit``.
    """
    e = as_float_array(nmes)
    score = 1.0 - e / limit
    return namespace(e).where(score > 0, score, 0.0)


def failures(nmes: Any, limit: float) -> Any:
    """Per face: NME above ``limit`` or missed (NaN) (numpy or torch); their mean is the failure rate."""
    return ~(as_float_array(nmes) <= limit)


def landmark_summary(nmes: ArrayLike, limit: float) -> dict:
    """Summary of per-face NMEs (NaN = missed face) against the cumulative-curve ``limit``.

    ``faces``: all faces; ``found``; ``mean`` / ``median`` over found faces (None if none);
    ``auc``: mean of :func:`auc_scores` over all faces; ``failure``: mean of :func:`failures`.
    """
    e = np.asarray(nmes, dtype=np.float64).reshape(-1)
    found = np.isfinite(e)
    n = len(e)
    out = {"faces": n, "found": int(found.sum()), "limit": float(limit),
           "mean": None, "median": None, "auc": None, "failure": None}
    if n == 0:
        return out
    if found.any():
        out["mean"] = float(np.mean(e[found]))
        out["median"] = float(np.median(e[found]))
    out["auc"] = float(np.mean(auc_scores(e, limit)))
    out["failure"] = float(np.mean(failures(e, limit)))
    return out


def ced_curve(nmes: ArrayLike, limit: float, steps: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error curve: thresholds in [0, limit] and the share of all faces at or below each.

    Misses never count as below a threshold, so the curve of a model that misses faces stays below
    ``found / faces``; its area divided by ``limit`` tends to :func:`landmark_summary`'s ``auc``.
    """
    e = np.asarray(nmes, dtype=np.float64).reshape(-1)
    t = np.linspace(0.0, limit, steps)
    if len(e) == 0:
        return t, np.zeros_like(t)
    e = np.where(np.isfinite(e), e, np.inf)
    return t, np.mean(e[None, :] <= t[:, None], axis=1)


# --------------------------------------------------------------------------------------- head pose

def pose_errors(pred: Any, reference: Any) -> Any:
    """(N, 3) absolute (roll, pitch, yaw) errors in degrees, each wrapped to [0, 180] (numpy or torch)."""
    p = as_float_array(pred).reshape(-1, 3)
    r = as_float_array(reference).reshape(-1, 3)
    if p.shape != r.shape:
        raise ValueError(f"pose_errors: prediction {p.shape} and reference {r.shape} differ in shape")
    return wrap_degrees(p - r)


def pose_summary(errors: ArrayLike) -> dict:
    """MAE per angle and their mean from (N, 3) wrapped errors; rows with NaN are missed faces."""
    e = np.asarray(errors, dtype=np.float64).reshape(-1, 3)
    found = np.all(np.isfinite(e), axis=1)
    out = {"faces": len(e), "found": int(found.sum()), "roll": None, "pitch": None, "yaw": None, "mean": None}
    if found.any():
        mae = e[found].mean(axis=0)
        out.update(roll=float(mae[0]), pitch=float(mae[1]), yaw=float(mae[2]), mean=float(mae.mean()))
    return out


def spearman_yaw_class(yaw: ArrayLike, pose_class: ArrayLike) -> float | None:
    """Spearman correlation between ``-yaw`` and MTFL's 1-5 pose class (positive when they agree).

    Class 1-2 ("left") is yaw > 0, so a correct model gives a positive correlation. Pairs with a
    missing yaw (NaN) are left out; None when fewer than two pairs remain or a side is constant.
    """
    y = np.asarray(yaw, dtype=np.float64).reshape(-1)
    c = np.asarray(pose_class, dtype=np.float64).reshape(-1)
    if y.shape != c.shape:
        raise ValueError(f"spearman_yaw_class: {y.shape} yaws but {c.shape} classes")
    keep = np.isfinite(y) & np.isfinite(c)
    if keep.sum() < 2 or np.ptp(y[keep]) == 0 or np.ptp(c[keep]) == 0:
        return None
    from scipy.stats import spearmanr  # imported here: neither training nor inference needs scipy otherwise

    return float(spearmanr(-y[keep], c[keep]).statistic)


# ------------------------------------------------------------------------------------------ gender

def gender_summary(pred: ArrayLike, truth: ArrayLike, classes: Sequence[str] = ("male", "female")) -> dict:
    """Gender accuracy: ``accuracy`` (missed faces, -1, count wrong), ``accuracy_found``, per class.

    ``per_class[name]`` is the accuracy over the faces of that true class, misses counted wrong;
    ``per_class_found[name]`` the same over the found faces of that class.
    """
    p = np.asarray(pred, dtype=np.int64).reshape(-1)
    t = np.asarray(truth, dtype=np.int64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"gender_summary: {p.shape} predictions but {t.shape} labels")
    found = p >= 0
    right = p == t

    def acc(mask: np.ndarray) -> float | None:
        return float(right[mask].mean()) if mask.any() else None

    return {
        "faces": len(t),
        "found": int(found.sum()),
        "accuracy": acc(np.ones_like(found)),
        "accuracy_found": acc(found),
        "per_class": {name: acc(t == i) for i, name in enumerate(classes)},
        "per_class_found": {name: acc((t == i) & found) for i, name in enumerate(classes)},
    }


# --------------------------------------------------------------------------------------- detection

@dataclass(frozen=True)
class DetectionMatch:
    """Detections of one image in decreasing score order, each with the ground truth it took (-1: none)."""

    scores: np.ndarray
    matched: np.ndarray
    num_ground_truth: int

    @property
    def true_positive(self) -> np.ndarray:
        return self.matched >= 0


def match_detections(boxes: ArrayLike, scores: ArrayLike, ground_truth: ArrayLike,
                     ignore: ArrayLike | None = None) -> DetectionMatch:
    """Greedy matching of one image's detections to its ground-truth boxes.

    By decreasing score, each detection takes the still unmatched ground-truth box with the highest
    IoU among those it matches (:func:`match_matrix`); a detection that takes none is a false positive.

    ``ignore`` (optional) are "don't care" boxes (dlib's ``ignore='1'``: neither face nor non-face;
    ``evaluation.md`` has no such boxes, so without them nothing changes): they are not counted as
    ground truth, and a detection that takes no ground-truth box but matches one of them is dropped
    instead of counted as a false positive.
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"match_detections: {len(b)} boxes but {len(s)} scores")
    g = as_boxes(ground_truth)
    order = np.argsort(-s, kind="stable")
    b, s = b[order], s[order]
    ok = match_matrix(b, g)
    iou = box_iou(b, g)
    taken = np.zeros(len(g), dtype=bool)
    matched = np.full(len(b), -1, dtype=np.int64)
    for i in range(len(b)):
        cand = ok[i] & ~taken
        if cand.any():
            j = int(np.argmax(np.where(cand, iou[i], -np.inf)))
            matched[i] = j
            taken[j] = True
    ig = as_boxes(ignore) if ignore is not None else np.zeros((0, 4))
    if len(ig):
        keep = (matched >= 0) | ~match_matrix(b, ig).any(axis=1)
        s, matched = s[keep], matched[keep]
    return DetectionMatch(scores=s, matched=matched, num_ground_truth=len(g))


def _pool(images: Sequence[DetectionMatch]) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and true-positive flags of all images, by decreasing score, and the ground-truth count."""
    if not images:
        return np.zeros(0), np.zeros(0, dtype=bool), 0
    scores = np.concatenate([m.scores for m in images])
    tp = np.concatenate([m.true_positive for m in images])
    order = np.argsort(-scores, kind="stable")
    return scores[order], tp[order], sum(m.num_ground_truth for m in images)


def detection_curve(images: Sequence[DetectionMatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, score) after each detection of all images, by decreasing score."""
    scores, tp, n_gt = _pool(images)
    ctp = np.cumsum(tp)
    cfp = np.cumsum(~tp)
    recall = ctp / n_gt if n_gt else np.zeros(len(tp))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = ctp / np.maximum(ctp + cfp, 1)
    return recall.astype(np.float64), precision.astype(np.float64), scores


def average_precision(recall: ArrayLike, precision: ArrayLike) -> float:
    """All-point average precision (VOC 2010): precision made monotone from the right, summed over
    the recall steps."""
    r = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


#: The precision at which :func:`detection_summary` gives the most recall a threshold reaches (issue 23's
#: face-mask target: recall >= 95% at precision >= 90%).
RECALL_AT_PRECISION = 0.9


def recall_at_precision(recall: ArrayLike, precision: ArrayLike, scores: ArrayLike,
                        floor: float = RECALL_AT_PRECISION) -> tuple[float, float | None]:
    """The most recall a score threshold gives with precision >= ``floor``, over a :func:`detection_curve`,
    and the highest threshold that gives it (the score of the last detection it keeps, ties aside);
    (0.0, None) when no threshold reaches ``floor``."""
    recall = np.asarray(recall, dtype=np.float64)
    ok = np.flatnonzero(np.asarray(precision) >= floor)
    if not len(ok):
        return 0.0, None
    best = ok[np.argmax(recall[ok])]  # the first point (highest score) with the most recall
    return float(recall[best]), float(np.asarray(scores)[best])


def detection_summary(images: Sequence[DetectionMatch], threshold: float | None = None,
                      at_threshold: Sequence[DetectionMatch] | None = None) -> dict:
    """Recall and precision at ``threshold``, all-point AP over every reported detection, and the most
    recall a threshold gives at precision >= :data:`RECALL_AT_PRECISION` (:func:`recall_at_precision`).

    ``images`` hold all reported detections (lower-scored ones included) and give the AP and the recall
    at that precision. Recall and precision come from ``at_threshold`` when given (the detections the
    model reports at its default operating point), else from the detections of ``images`` scoring at
    least ``threshold`` (all of them when ``threshold`` is None).
    """
    recall, precision, scores = detection_curve(images)
    best_recall, best_score = recall_at_precision(recall, precision, scores)
    _, _, n_gt = _pool(images)
    if at_threshold is None:
        cut = -np.inf if threshold is None else threshold
        at_threshold = [
            match_subset(m, m.scores >= cut) for m in images
        ]
    _, tp, n_gt_op = _pool(at_threshold)
    n_det = len(tp)
    return {
        "images": len(images),
        "ground_truth": n_gt,
        "threshold": threshold,
        "detections": n_det,
        "true_positives": int(tp.sum()),
        "recall": float(tp.sum() / n_gt_op) if n_gt_op else None,
        "precision": float(tp.sum() / n_det) if n_det else None,
        "ap": average_precision(recall, precision) if n_gt else None,
        "recall_at_precision": {"precision": RECALL_AT_PRECISION, "recall": best_recall if n_gt else None,
                                "score": best_score},
    }


def match_subset(match: DetectionMatch, keep: ArrayLike) -> DetectionMatch:
    """The highest-scored detections ``keep`` (a prefix) of a match, with their matches unchanged.

    Greedy matching goes by decreasing score, so dropping every detection below a score cut leaves
    the matches of the ones above as they were: no re-matching is needed for a prefix.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.any() and not keep[: int(keep.sum())].all():
        raise ValueError("match_subset: keep must select the highest-scored detections (a prefix)")
    return DetectionMatch(scores=match.scores[keep], matched=match.matched[keep],
                          num_ground_truth=match.num_ground_truth)
