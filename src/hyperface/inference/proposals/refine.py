"""The fast cascade's second network (``hyperface-proposal-refine``, MTCNN's R-Net) on given boxes.

It scores 24 x 24 crops of candidate boxes and regresses a finer box. ``fast`` uses it as its second
stage (boxes under its ``refine_threshold`` are dropped); ``detector`` uses its probability as a
second opinion on each box (:meth:`DetectorProposals.scored`): trained against the hard negatives
of small windows, it rejects text, hands and background blobs that a whole-image detector at low
threshold proposes. Crops are sampled as its training crops were (``roi_align`` with 2 x 2 samples a
pixel, :func:`hyperface.inference.crops.sample_crops`).
"""

from __future__ import annotations

import numpy as np

from hyperface.inference.crops import sample_crops
from hyperface.models.geometry import REFINE_SIZE
from hyperface.runtime import Runtime

__all__ = ["RefineScorer"]


class RefineScorer:
    """Face probability and refined box of each given box (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        if runtime.config.arch != "hyperface-proposal-refine":
            raise ValueError(f"{runtime.source}: {runtime.config.arch!r} is not a refine network "
                             f"(need 'hyperface-proposal-refine')")
        self.runtime = runtime

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(refined boxes (K, 4), face probabilities (K,)), float32, of ``boxes`` (K, 4) in ``image``'s pixels."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes, np.zeros(0, np.float32)
        out = self.runtime(sample_crops(image, boxes, REFINE_SIZE))
        reg = out["box"]
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        wh = boxes[:, 2:] - boxes[:, :2]
        return np.concatenate([c + reg[:, :2] * wh, c + reg[:, 2:] * wh], axis=1), out["face"]
