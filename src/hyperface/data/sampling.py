"""Per-image sampling for the prepare job: candidates of one image, labelled and balanced.

Candidates (Selective Search, jitter around each face, random boxes) are labelled by overlap
(:mod:`hyperface.data.labels`) and a balanced subset is kept. Every random draw comes from a
generator seeded by the image's source-relative key (:func:`image_rng`), so samples do not depend on
which worker, shard split or run produced them.

Defaults per face: 4 positives (half from Selective Search where it has them, the rest jittered),
1 landmark-only sample (IoU between the landmark and positive thresholds, detection ignored) and
5 negatives; 8 negatives per face-less image. About 1 : 1.25 face : non-face before the negative
sources, close to the paper's balanced batches, and enough variety per face for a few epochs of
augmentation without storing a dozen near-duplicates per face.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hyperface.data.aligned import ALIGN_BY
from hyperface.data.candidates import SS_MODES, jitter_boxes, random_boxes, selective_search
from hyperface.data.labels import LabelOptions, assign_labels, face_targets, fill_labels
from hyperface.data.records import ImageRecord
from hyperface.data.shards import label_dtype
from hyperface.data.splits import DEFAULT_VAL_FRACTION, hash64
from hyperface.points import get_point_set

__all__ = ["PrepareOptions", "PREPARE_MODES", "image_rng", "sample_image"]

# Candidate kinds, for the balance policy.
_SS, _JITTER, _PARTIAL, _RANDOM, _WHOLE = range(5)


PREPARE_MODES = ("candidates", "aligned", "hard-negatives")


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that decides the samples; recorded in the manifest and checked on resume."""

    crop_size: int = 160          # stored crop side; 1.25 x a 128 px model input leaves room to augment
    context: float = 1.25         # crop = candidate box enlarged by this about its centre
    point_set: str = "ibug68"
    pos_iou: float = 0.5
    neg_iou: float = 0.35
    landmark_iou: float = 0.35
    attr_iou: float = 0.5
    contain_fraction: float = 0.5
    positives_per_face: int = 4
    partials_per_face: int = 1
    negatives_per_face: int = 5
    negatives_per_image: int = 8
    negatives_from_faces: bool = True  # non-faces also from images whose faces are not all annotated
    ss_mode: str = "fast"         # fast | quality | single | none
    ss_max_side: int = 256
    ss_max_proposals: int = 200
    min_box: float = 12.0         # smallest candidate side, source pixels
    val_fraction: float = DEFAULT_VAL_FRACTION
    seed: int = 0
    images_per_shard: int = 64
    mode: str = "candidates"      # candidates (stage one) | aligned (stage two) | hard-negatives (false positives)
    teacher: str = "none"         # "bundled", a weights file or "none": aligned's aligner, hard-negatives' detector
    teacher_threshold: float = 0.5  # hard-negatives: the detector's score threshold (FaceAnalyzer's default)
    teacher_min_face: float = 20.0  # hard-negatives: smallest face the detector looks for (the fast source's default)
    teacher_proposals: str = "fast"  # hard-negatives: the detector's candidate source (fast, fast:DIR, ...)
    align_by: str = "points"      # aligned: each face's own points, or "pipeline": stage two's (data.aligned.ALIGN_BY)

    def __post_init__(self) -> None:
        get_point_set(self.point_set)
        if self.mode not in PREPARE_MODES:
            raise ValueError(f"mode must be one of {PREPARE_MODES}, got {self.mode!r}")
        if self.mode == "hard-negatives" and self.teacher == "none":
            raise ValueError("mode hard-negatives needs a detector: teacher 'bundled' or a weights file")
        if not 0.0 <= self.teacher_threshold <= 1.0:
            raise ValueError(f"teacher_threshold must be in [0, 1], got {self.teacher_threshold}")
        if self.align_by not in ALIGN_BY:
            raise ValueError(f"align_by must be one of {ALIGN_BY}, got {self.align_by!r}")
        if self.align_by != "points" and self.mode != "aligned":
            raise ValueError(f"align_by {self.align_by!r} is for mode aligned, not {self.mode!r}")
        if not self.teacher_min_face > 0:
            raise ValueError(f"teacher_min_face must be > 0 pixels, got {self.teacher_min_face}")
        self.label_options()  # validates thresholds
        if self.ss_mode not in (*SS_MODES, "none"):
            raise ValueError(f"ss_mode must be one of {(*SS_MODES, 'none')}, got {self.ss_mode!r}")
        if self.crop_size < 8:
            raise ValueError(f"crop_size must be >= 8, got {self.crop_size}")
        if self.context < 1.0:
            raise ValueError(f"context must be >= 1 (the crop contains the candidate), got {self.context}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        for name in ("positives_per_face", "partials_per_face", "negatives_per_face", "negatives_per_image",
                     "ss_max_proposals", "images_per_shard", "ss_max_side"):
            least = 1 if name in ("images_per_shard", "ss_max_side") else 0
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be >= {least}, got {getattr(self, name)}")

    @property
    def num_points(self) -> int:
        return get_point_set(self.point_set).num_points

    def label_options(self) -> LabelOptions:
        return LabelOptions(self.pos_iou, self.neg_iou, self.landmark_iou, self.attr_iou, self.contain_fraction)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["num_points"] = self.num_points
        return d



def image_rng(key: str, seed: int = 0) -> np.random.Generator:
    """The random generator of one image: from its key, so any run draws the same samples."""
    return np.random.default_rng([seed, hash64(key)])



def _choose(rng: np.random.Generator, idx: np.ndarray, n: int) -> np.ndarray:
    if n <= 0 or len(idx) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(idx) <= n:
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False))


def _candidates(image: np.ndarray, record: ImageRecord, opts: PrepareOptions,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All candidate boxes of an image and their kind."""
    h, w = image.shape[:2]
    boxes, kinds = [], []

    def add(b: np.ndarray, kind: int) -> None:
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        boxes.append(b)
        kinds.append(np.full(len(b), kind, dtype=np.int8))

    if opts.ss_mode != "none":
        add(selective_search(image, mode=opts.ss_mode, max_side=opts.ss_max_side,
                             max_proposals=opts.ss_max_proposals, min_size=opts.min_box, rng=rng), _SS)
    for face in record.faces:
        if face.attributes.get("ignore"):
            continue
        add(jitter_boxes(face.box, opts.positives_per_face, rng, min_iou=opts.pos_iou), _JITTER)
        add(jitter_boxes(face.box, opts.partials_per_face, rng, min_iou=opts.landmark_iou,
                         max_iou=opts.pos_iou, shift=0.35, scale=0.5, aspect=0.2), _PARTIAL)
    n_neg = opts.negatives_per_face * len(record.faces) if record.faces else opts.negatives_per_image
    add(random_boxes(w, h, 3 * n_neg, rng, min_side=opts.min_box), _RANDOM)
    if not record.faces:
        add(np.array([0.0, 0.0, w, h]), _WHOLE)
    return np.concatenate(boxes), np.concatenate(kinds)


def sample_image(image: np.ndarray, record: ImageRecord, opts: PrepareOptions,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, labelled candidates of one decoded image: (boxes (M, 4), labels (M,) rows).

    Label rows are :func:`~hyperface.data.shards.label_dtype` with the per-sample fields filled
    (box, IoU, matched face, task labels and masks, pose source); source/image/split are the
    caller's.
    """
    h, w = image.shape[:2]
    boxes, kinds = _candidates(image, record, opts, rng)
    faces = record.faces
    a = assign_labels(boxes, faces, opts.label_options())
    ignore = np.array([bool(f.attributes.get("ignore")) for f in faces] or [False])
    on_ignored = (a.face >= 0) & ignore[np.maximum(a.face, 0)] & (a.detection != 0)
    usable = ~a.dropped & ~on_ignored
    chosen: list[np.ndarray] = []
    for f, face in enumerate(faces):
        if face.attributes.get("ignore"):
            continue
        mine = usable & (a.face == f)
        pos = mine & (a.detection == 1)
        ss_pos = _choose(rng, np.flatnonzero(pos & (kinds == _SS)), opts.positives_per_face // 2)
        jit_pos = _choose(rng, np.flatnonzero(pos & (kinds == _JITTER)), opts.positives_per_face - len(ss_pos))
        if len(ss_pos) + len(jit_pos) < opts.positives_per_face:  # too few jittered: more from SS
            rest = np.setdiff1d(np.flatnonzero(pos & (kinds == _SS)), ss_pos)
            ss_pos = np.concatenate([ss_pos, _choose(rng, rest, opts.positives_per_face - len(ss_pos) - len(jit_pos))])
        partial = _choose(rng, np.flatnonzero(mine & (a.detection == -1) & a.landmarks), opts.partials_per_face)
        chosen += [np.sort(ss_pos), jit_pos, partial]
    negatives_ok = not faces or record.all_faces_annotated or opts.negatives_from_faces
    if negatives_ok:
        n_neg = opts.negatives_per_face * sum(not f.attributes.get("ignore") for f in faces) if faces \
            else opts.negatives_per_image
        neg = usable & (a.detection == 0)
        whole = np.flatnonzero(neg & (kinds == _WHOLE))
        ss_neg = _choose(rng, np.flatnonzero(neg & (kinds == _SS)), (n_neg - len(whole)) // 2)
        rnd_neg = _choose(rng, np.flatnonzero(neg & (kinds == _RANDOM)), n_neg - len(whole) - len(ss_neg))
        if len(whole) + len(ss_neg) + len(rnd_neg) < n_neg:
            rest = np.setdiff1d(np.flatnonzero(neg & (kinds == _SS)), ss_neg)
            ss_neg = np.sort(np.concatenate([ss_neg, _choose(rng, rest, n_neg - len(whole) - len(ss_neg) - len(rnd_neg))]))
        chosen += [whole, ss_neg, rnd_neg]
    sel = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)

    targets = [face_targets(face, opts.point_set, (w, h)) for face in faces]
    labels = np.zeros(len(sel), dtype=label_dtype(opts.num_points))
    for i, k in enumerate(sel):
        fi = int(a.face[k])
        fill_labels(labels[i], boxes[k], a, int(k), targets[fi] if fi >= 0 else None)
    keep = (labels["detection_mask"] | labels["landmarks_mask"].any(axis=1) | labels["landmarks5_mask"].any(axis=1)
            | labels["visibility_mask"].any(axis=1) | labels["pose_mask"] | labels["gender_mask"]
            | (labels["pose_class"] > 0))  # any label
    return boxes[sel][keep], labels[keep]
