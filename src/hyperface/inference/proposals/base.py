"""The candidate-source contract: an RGB image in, candidate boxes out; and what every source is built with."""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hyperface.inference.bundle import Bundle
from hyperface.runtime import Runtime, RuntimeOptions, load_runtime

__all__ = ["ProposalSource", "SourceContext", "candidate_cap"]


def candidate_cap(source: str, value: Any) -> int:
    """A source's ``max_candidates``: a whole number >= 1, or a ValueError naming the source (a slice by
    0 or -3 would quietly return nothing or drop the last candidates)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"the {source} source's max_candidates must be a whole number >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SourceContext:
    """What the analyzer hands every candidate source, whichever it is: how networks run (``options``)
    and the pipeline whose networks a source uses unless told otherwise (``bundle``; None: the bundled
    one). Sources without networks ignore it."""

    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    bundle: Bundle | None = None

    def network(self, role: str, given: Any = None, batch_size: int = 64) -> Runtime:
        """The :class:`Runtime` for ``role``: ``given`` (a file or model object) when there is one, else the
        pipeline's network of that role."""
        if given is not None:
            return load_runtime(given, self.options, batch_size=batch_size)
        return self.pipeline().runtime(role, self.options, batch_size)

    def pipeline(self) -> Bundle:
        """``bundle``, or the bundled pipeline."""
        if self.bundle is not None:
            return self.bundle
        from hyperface.inference.assets import bundled

        return bundled()

    def has(self, role: str) -> bool:
        try:
            return role in self.pipeline()
        except (FileNotFoundError, ValueError):
            return False


class ProposalSource(ABC):
    """A source of candidate face boxes.

    ``__call__(image, key)`` takes an H x W x 3 uint8 RGB image and returns a float (K, 4) array of
    (x0, y0, x1, y1) boxes in that image's pixels (pixel centres at integers), best first when the
    source ranks them; ``key`` names the image (its path, ``path#frame`` for a video frame) for
    sources that look boxes up, and may be None for an array given directly.

    Sources are chosen by name (:func:`hyperface.inference.proposals.create_proposals`), which calls
    :meth:`from_spec` with the part after ``name:`` (or None), the :class:`SourceContext` and the
    user's options for the source; a source decides there what it takes.
    """

    name: ClassVar[str]
    #: False for sources whose boxes belong to the original image and must not be rescaled.
    scale_invariant: ClassVar[bool] = True
    #: True for sources whose :meth:`scored` gives face probabilities (the analyzer then fuses them).
    scores_boxes: ClassVar[bool] = False
    #: True for sources whose boxes are faces found elsewhere (another detector's): each gives one face,
    #: as boxes handed to the analyzer's call do, rather than being a candidate to score and merge.
    boxes_are_faces: ClassVar[bool] = False

    @classmethod
    def from_spec(cls, arg: str | None, context: SourceContext, **options: Any) -> ProposalSource:
        """The source for ``name[:arg]`` with the user's ``options``; this default takes no ``arg`` and no
        networks."""
        if arg is not None:
            raise ValueError(f"candidate source {cls.name!r} takes no ':' argument (got {cls.name}:{arg})")
        return cls._construct(**options)

    #: Keywords every source takes from the analyzer, not options a user gives.
    _INTERNAL_KEYWORDS: ClassVar[frozenset[str]] = frozenset({"self", "context", "options"})

    @classmethod
    def _construct(cls, **options: Any) -> ProposalSource:
        """``cls(**options)``, with an option it does not take named in a ValueError, beside those it takes."""
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(options) - set(params))
            if unknown:
                takes = [k for k, p in params.items() if k not in cls._INTERNAL_KEYWORDS
                         and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
                raise ValueError(f"candidate source {cls.name!r} has no option {', '.join(map(repr, unknown))} "
                                 f"(it takes: {', '.join(takes) or 'none'})")
        try:
            return cls(**options)
        except TypeError as exc:
            raise ValueError(f"candidate source {cls.name!r}: {exc}") from None

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

    def files(self) -> list[str | os.PathLike]:
        """The files this source reads (so that no output of a command replaces them)."""
        return []
