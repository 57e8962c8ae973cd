"""The five HyperFace tasks and the tensors that carry their labels.

A training sample carries, per task, a target and a mask: the mask says which entries carry a label.

| task       | model output (B, ...)            | target                  | mask   |
|------------|----------------------------------|-------------------------|--------|
| detection  | (B, 2) logits, index 1 = face    | (B,) int64 0/1          | (B,)   |
| landmarks  | (B, N, 2) candidate-relative     | (B, N, 2) float         | (B, N) |
| visibility | (B, N) visibility (0..1 target)  | (B, N) float 0/1        | (B, N) |
| pose       | (B, 3) radians (roll,pitch,yaw)  | (B, 3) float, degrees   | (B,)   |
| gender     | (B, 2) logits, GENDERS order     | (B,) int64              | (B,)   |

A sample may also carry ``pose_class`` (B,) int64, MTFL's 5-way head-pose class 1..5 with 0 for
none (no mask): the target of the pose-class margin loss, a loss term on the pose output
(:data:`EXTRA_LOSS_TERMS`), not a task with a head of its own.

Candidate-relative landmarks follow the paper: ``a = (x - cx) / w``, ``b = (y - cy) / h`` with
(cx, cy, w, h) the candidate box's centre and size. The pose head regresses radians (the paper's
training scale); every public interface speaks degrees.
"""

from __future__ import annotations

__all__ = ["TASKS", "EXTRA_LOSS_TERMS", "LOSS_TERMS", "DEFAULT_LOSS_WEIGHTS", "LANDMARK_LOSSES", "SAMPLE_KINDS",
           "validate_tasks", "validate_loss_terms"]

TASKS: tuple[str, ...] = ("detection", "landmarks", "visibility", "pose", "gender")

# Loss terms that are not tasks of their own, each computed from (and training) one task's output:
# ``pose_class`` is the pose-class margin loss, weak yaw supervision of the pose head from MTFL's
# 5-way head-pose class (``pose_class`` target, 1..5, 0 none) where a face has no full pose label.
EXTRA_LOSS_TERMS: dict[str, str] = {"pose_class": "pose"}

# Every term a loss dict may hold (and ``loss.weights`` may name), in report order.
LOSS_TERMS: tuple[str, ...] = TASKS + tuple(EXTRA_LOSS_TERMS)

# Landmark loss terms: the paper's squared error, absolute error, or the wing loss (log-shaped near 0).
LANDMARK_LOSSES: tuple[str, ...] = ("l2", "l1", "wing")

# Label kinds a training mix can be re-weighted by (``data.oversample``); ``landmarks`` are the
# model's own point set, ``landmarks5`` five-point labels of samples without those.
SAMPLE_KINDS: tuple[str, ...] = ("nonface", "landmarks", "landmarks5", "pose", "gender")

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {
    "detection": 1.0,
    "landmarks": 5.0,
    "visibility": 0.5,
    "pose": 5.0,
    "gender": 2.0,
    "pose_class": 0.0,  # off: a weight above 0 turns the pose-class margin loss on
}


def validate_tasks(tasks) -> tuple[str, ...]:
    """Return ``tasks`` in canonical order; a ValueError names any unknown task."""
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    if not tasks:
        raise ValueError(f"at least one task is needed; choose from {list(TASKS)}")
    return tuple(t for t in TASKS if t in tasks)


def validate_loss_terms(weights, tasks) -> None:
    """Check loss weight names: tasks, or extra terms whose task is among ``tasks`` (the model's)
    when their weight is above 0 (a term needs its task's output); ValueError otherwise."""
    unknown = [t for t in weights if t not in LOSS_TERMS]
    if unknown:
        raise ValueError(f"unknown task(s) or loss term(s) {unknown}; choose from {list(LOSS_TERMS)}")
    for term, task in EXTRA_LOSS_TERMS.items():
        if float(weights.get(term, 0.0)) > 0 and task not in tasks:
            raise ValueError(f"loss weight {term!r} needs the {task!r} task, which is not among {list(tasks)}")
