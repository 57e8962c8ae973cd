"""Selective Search candidates (the paper's source; slow: about a second per image).

Wraps :func:`hyperface.data.candidates.selective_search`, the same OpenCV contrib implementation
that made the training candidates, so the network sees at test time the kind of boxes it learned on.
Boxes far from square are dropped: a face box is never more than twice as tall as wide.
"""

from __future__ import annotations

import numpy as np

from hyperface.data.candidates import selective_search
from hyperface.inference.proposals.base import ProposalSource

__all__ = ["SelectiveSearchProposals"]


class SelectiveSearchProposals(ProposalSource):
    """``selective-search``: OpenCV's Selective Search on the image scaled to ``max_side``."""

    name = "selective-search"

    def __init__(self, mode: str = "fast", max_side: int = 500, max_proposals: int = 2000,
                 min_size: float = 12.0, max_aspect: float = 2.0) -> None:
        self.mode = mode
        self.max_side = max_side
        self.max_proposals = max_proposals
        self.min_size = min_size
        self.max_aspect = max_aspect

    def __call__(self, image: np.ndarray, key: str | None = None) -> np.ndarray:
        boxes = selective_search(image, mode=self.mode, max_side=self.max_side,
                                 max_proposals=self.max_proposals * 2, min_size=self.min_size)
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        ratio = np.maximum(w / np.maximum(h, 1e-6), h / np.maximum(w, 1e-6))
        return boxes[ratio <= self.max_aspect][: self.max_proposals].astype(np.float32)
