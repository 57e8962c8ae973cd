"""Candidate sources, chosen by name from :data:`SOURCES` (see :class:`ProposalSource`).

``fast`` (the proposal network over an image pyramid; ``fast:DIR`` the two networks that
``hyperface train-proposals --out DIR`` wrote), ``detector`` (the single-pass face detector, one run
at one working size; ``detector:PATH`` a network file, or a folder holding the
``hyperface-detector.safetensors`` that ``hyperface train-detector --out DIR`` wrote),
``selective-search`` (the paper's, slow) and ``boxes:FILE`` (boxes from any other detector, read
from a file). Each source takes what it needs from the :class:`SourceContext` and the options it is
given (:meth:`ProposalSource.from_spec`); whoever builds one needs to know none of them.
"""

from __future__ import annotations

from typing import Any

from hyperface.inference.proposals.base import ProposalSource, SourceContext
from hyperface.inference.proposals.boxes import BoxesProposals, read_boxes_file
from hyperface.inference.proposals.detector import DetectorProposals
from hyperface.inference.proposals.fast import FastProposals
from hyperface.inference.proposals.selective_search import SelectiveSearchProposals

__all__ = ["SOURCES", "DEFAULT_PROPOSALS", "SOURCE_NAMES", "ProposalSource", "SourceContext", "create_proposals",
           "read_boxes_file", "FastProposals", "DetectorProposals", "SelectiveSearchProposals", "BoxesProposals"]

#: The analyzer's, ``evaluate``'s and the benchmarks' candidate source when none is named.
DEFAULT_PROPOSALS = "detector"

SOURCES: dict[str, type[ProposalSource]] = {
    "fast": FastProposals,
    "detector": DetectorProposals,
    "selective-search": SelectiveSearchProposals,
    "boxes": BoxesProposals,
}
#: Every way to name a source, for messages and help texts.
SOURCE_NAMES = "detector, detector:PATH, fast, fast:DIR, selective-search, boxes:FILE"


def create_proposals(spec: str | ProposalSource, context: SourceContext | None = None,
                     **options: Any) -> ProposalSource:
    """A candidate source from its name (``"detector"``, ``"detector:PATH"``, ``"fast"``, ``"fast:DIR"``,
    ``"selective-search"``, ``"boxes:FILE"``) or as given; ``options`` go to the source (a ValueError
    names one it does not take)."""
    if isinstance(spec, ProposalSource):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"proposals must be a name or a ProposalSource, got {type(spec).__name__}")
    name, sep, arg = spec.partition(":")
    if name not in SOURCES:
        raise ValueError(f"unknown candidate source {spec!r}; choose from: {SOURCE_NAMES}")
    return SOURCES[name].from_spec(arg if sep else None, context or SourceContext(), **options)
