"""The candidate-source contract: an RGB image in, candidate boxes out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

__all__ = ["ProposalSource"]


class ProposalSource(ABC):
    """A source of candidate face boxes.

    ``__call__(image, key)`` takes an H x W x 3 uint8 RGB image and returns a float (K, 4) array of
    (x0, y0, x1, y1) boxes in that image's pixels (pixel centres at integers), best first when the
    source ranks them; ``key`` names the image (its path, ``path#frame`` for a video frame) for
    sources that look boxes up, and may be None for an array given directly.
    """

    name: ClassVar[str]
    #: False for sources whose boxes belong to the original image and must not be rescaled.
    scale_invariant: ClassVar[bool] = True
    #: True for sources whose :meth:`scored` gives face probabilities (the analyzer then fuses them).
    scores_boxes: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, image: np.ndarray, key: str | None = None) -> np.ndarray:
        """Candidate boxes (K, 4) for ``image``."""

    def scored(self, image: np.ndarray, key: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Candidate boxes (K, 4) and, for sources that score them, their face probabilities (K,).

        The analyzer fuses a source's own probability with its network's (a weighted geometric mean):
        a source trained on whole photos sees context a crop does not. Unscored sources give None.
        """
        return self(image, key), None

    def scored_above(self, image: np.ndarray, key: str | None = None,
                     floor: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`scored`, where a source may leave out the boxes whose probability is under ``floor``
        (the analyzer's lowest useful one) and skip their work; unscored sources give every box."""
        boxes, scores = self.scored(image, key)
        if scores is None:
            return boxes, None
        keep = np.asarray(scores) >= floor
        return np.asarray(boxes)[keep], np.asarray(scores)[keep]

    def to(self, device: str) -> ProposalSource:
        """Move any network to ``device`` (no-op for sources without one)."""
        return self
