"""Network outputs for a set of candidate boxes, decoded to image pixels and degrees.

IRP and L-NMS work on a :class:`Candidates` (a few arrays with one row per candidate) so that every
step is an array operation over all candidates of all images at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from hyperface.inference.crops import relative_to_image

__all__ = ["Candidates", "decode_outputs", "concat", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float32), stable for large logits."""
    z = np.asarray(logits, dtype=np.float32)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Candidates:
    """K candidates: ``boxes`` (K, 4) pixels, ``image`` (K,) index of the image in the batch,
    ``score`` (K,) face probability, then per task (None when the model lacks it): ``landmarks``
    (K, N, 2) pixels, ``visibility`` (K, N), ``pose`` (K, 3) degrees, ``gender`` (K, 2) probabilities
    in :data:`hyperface.data.records.GENDERS` order. All float32 but ``image`` (int64)."""

    boxes: np.ndarray
    image: np.ndarray
    score: np.ndarray
    landmarks: np.ndarray | None = None
    visibility: np.ndarray | None = None
    pose: np.ndarray | None = None
    gender: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def _map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Candidates:
        return Candidates(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                             for f in fields(self)})

    def select(self, index: np.ndarray) -> Candidates:
        """Rows ``index`` (indices or a boolean mask)."""
        return self._map(lambda a: a[index])

    def assign(self, index: np.ndarray, other: Candidates) -> Candidates:
        """A copy with rows ``index`` replaced by the rows of ``other`` (same length as ``index``)."""
        out = self._map(np.copy)
        for f in fields(self):
            dst, src = getattr(out, f.name), getattr(other, f.name)
            if dst is not None and src is not None:
                dst[index] = src
        return out


def decode_outputs(outputs: Mapping[str, np.ndarray], boxes: np.ndarray, image: np.ndarray) -> Candidates:
    """Raw network outputs for crops at ``boxes`` (K, 4) -> :class:`Candidates`.

    Detection and gender logits become probabilities, candidate-relative landmarks become image
    pixels, pose radians become degrees. A model without a detection head scores every candidate 1.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    det = outputs.get("detection")
    lm, vis, pose, gender = (outputs.get(t) for t in ("landmarks", "visibility", "pose", "gender"))
    return Candidates(
        boxes=boxes,
        image=np.asarray(image, dtype=np.int64).reshape(-1),
        score=softmax(det)[:, 1] if det is not None else np.ones(len(boxes), np.float32),
        landmarks=None if lm is None else relative_to_image(lm.astype(np.float32), boxes),
        visibility=None if vis is None else vis.astype(np.float32),
        pose=None if pose is None else np.degrees(pose).astype(np.float32),
        gender=None if gender is None else softmax(gender),
    )


def concat(items: list[Candidates]) -> Candidates:
    """Rows of several :class:`Candidates` one after another (same tasks)."""
    first = items[0]
    return replace(first, **{f.name: None if getattr(first, f.name) is None
                             else np.concatenate([getattr(c, f.name) for c in items]) for f in fields(first)})
