"""Network outputs for a set of candidate boxes, decoded to image pixels and degrees.

IRP and L-NMS work on a :class:`Candidates` (a few tensors with one row per candidate) so that
every step is a tensor operation over all candidates of all images at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from hyperface.inference.crops import relative_to_image

__all__ = ["Candidates", "decode_outputs"]


@dataclass
class Candidates:
    """K candidates: ``boxes`` (K, 4) pixels, ``image`` (K,) index of the image in the batch,
    ``score`` (K,) face probability, then per task (None when the model lacks it): ``landmarks``
    (K, N, 2) pixels, ``visibility`` (K, N), ``pose`` (K, 3) degrees, ``gender`` (K, 2) probabilities
    in :data:`hyperface.data.records.GENDERS` order."""

    boxes: torch.Tensor
    image: torch.Tensor
    score: torch.Tensor
    landmarks: torch.Tensor | None = None
    visibility: torch.Tensor | None = None
    pose: torch.Tensor | None = None
    gender: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def _map(self, fn) -> Candidates:
        return Candidates(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                             for f in fields(self)})

    def select(self, index: torch.Tensor) -> Candidates:
        """Rows ``index`` (indices or a boolean mask)."""
        return self._map(lambda t: t[index])

    def assign(self, index: torch.Tensor, other: Candidates) -> Candidates:
        """A copy with rows ``index`` replaced by the rows of ``other`` (same length as ``index``)."""
        out = self._map(torch.clone)
        for f in fields(self):
            dst, src = getattr(out, f.name), getattr(other, f.name)
            if dst is not None and src is not None:
                dst[index] = src
        return out

    def to(self, device: torch.device | str) -> Candidates:
        return self._map(lambda t: t.to(device))

    @staticmethod
    def empty_like(other: Candidates) -> Candidates:
        return other.select(torch.zeros(0, dtype=torch.long, device=other.boxes.device))


def decode_outputs(outputs: dict[str, torch.Tensor], boxes: torch.Tensor, image: torch.Tensor) -> Candidates:
    """Raw network outputs for crops at ``boxes`` (K, 4) -> :class:`Candidates`.

    Detection and gender logits become probabilities, candidate-relative landmarks become image
    pixels, pose radians become degrees. A model without a detection head scores every candidate 1.
    """
    det = outputs.get("detection")
    score = (torch.softmax(det.float(), dim=1)[:, 1] if det is not None
             else torch.ones(len(boxes), dtype=torch.float32, device=boxes.device))
    lm = outputs.get("landmarks")
    vis = outputs.get("visibility")
    pose = outputs.get("pose")
    gender = outputs.get("gender")
    return Candidates(
        boxes=boxes.float(),
        image=image.long(),
        score=score,
        landmarks=None if lm is None else relative_to_image(lm.float(), boxes.float()),
        visibility=None if vis is None else vis.float(),
        pose=None if pose is None else pose.float() * (180.0 / math.pi),
        gender=None if gender is None else torch.softmax(gender.float(), dim=1),
    )


def concat(items: list[Candidates]) -> Candidates:
    """Rows of several :class:`Candidates` one after another (same tasks)."""
    first = items[0]
    return replace(first, **{f.name: None if getattr(first, f.name) is None
                             else torch.cat([getattr(c, f.name) for c in items]) for f in fields(first)})
