"""The five HyperFace tasks and the tensors that carry their labels.

A training sample carries, per task, a target and a mask: the mask says which entries carry a label.

| task       | model output (B, ...)            | target                  | mask   |
|------------|----------------------------------|-------------------------|--------|
| detection  | (B, 2) logits, index 1 = face    | (B,) int64 0/1          | (B,)   |
| landmarks  | (B, N, 2) candidate-relative     | (B, N, 2) float         | (B, N) |
| visibility | (B, N) visibility (0..1 target)  | (B, N) float 0/1        | (B, N) |
| pose       | (B, 3) radians (roll,pitch,yaw)  | (B, 3) float, degrees   | (B,)   |
| gender     | (B, 2) logits, GENDERS order     | (B,) int64              | (B,)   |

Candidate-relative landmarks follow the paper: ``a = (x - cx) / w``, ``b = (y - cy) / h`` with
(cx, cy, w, h) the candidate box's centre and size. The pose head regresses radians (the paper's
training scale); every public interface speaks degrees.
"""

from __future__ import annotations

__all__ = ["TASKS", "DEFAULT_LOSS_WEIGHTS", "LANDMARK_LOSSES", "SAMPLE_KINDS", "validate_tasks"]

TASKS: tuple[str, ...] = ("detection", "landmarks", "visibility", "pose", "gender")

# Landmark loss terms: the paper's squared error, or absolute error.
LANDMARK_LOSSES: tuple[str, ...] = ("l2", "l1")

# Label kinds a training mix can be re-weighted by (``data.oversample``); ``landmarks`` are the
# model's own point set, ``landmarks5`` five-point labels of samples without those.
SAMPLE_KINDS: tuple[str, ...] = ("nonface", "landmarks", "landmarks5", "pose", "gender")

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {
    "detection": 1.0,
    "landmarks": 5.0,
    "visibility": 0.5,
    "pose": 5.0,
    "gender": 2.0,
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
