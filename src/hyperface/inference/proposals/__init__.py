"""Candidate sources, chosen by name from :data:`SOURCES` (see :class:`ProposalSource`).

``fast`` (the bundled proposal network over an image pyramid; ``fast:DIR`` the two networks that
``hyperface train-proposals --out DIR`` wrote), ``detector`` (the single-pass face detector, one run
at one working size; ``detector:PATH`` a weights file, or a folder holding the
``hyperface-detector.safetensors`` that ``hyperface train-detector --out DIR`` wrote),
``selective-search`` (the paper's, slow) and ``boxes:FILE`` (boxes from any other detector, read
from a file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperface.inference.assets import DETECTOR_WEIGHTS, PROPOSAL_WEIGHTS, REFINE_WEIGHTS
from hyperface.inference.proposals.base import ProposalSource
from hyperface.inference.proposals.boxes import BoxesProposals, read_boxes_file
from hyperface.inference.proposals.detector import DetectorProposals
from hyperface.inference.proposals.fast import FastProposals
from hyperface.inference.proposals.selective_search import SelectiveSearchProposals

__all__ = ["SOURCES", "DEFAULT_PROPOSALS", "SOURCE_NAMES", "NETWORK_SOURCES", "ProposalSource", "create_proposals",
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
SOURCE_NAMES = "fast, fast:DIR, detector, detector:PATH, selective-search, boxes:FILE"
#: Sources that take the analyzer's ``device``, ``threads`` and ``backend`` and a ``min_face`` option.
NETWORK_SOURCES = ("fast", "detector")


def create_proposals(spec: str | ProposalSource, **kwargs: Any) -> ProposalSource:
    """A candidate source from its name (``"fast"``, ``"fast:DIR"``, ``"detector"``, ``"detector:PATH"``,
    ``"selective-search"``, ``"boxes:FILE"``) or as given.

    ``kwargs`` go to the source's constructor.
    """
    if isinstance(spec, ProposalSource):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"proposals must be a name or a ProposalSource, got {type(spec).__name__}")
    name, sep, arg = spec.partition(":")
    if name not in SOURCES:
        raise ValueError(f"unknown candidate source {spec!r}; choose from: {SOURCE_NAMES}")
    if name == "boxes":
        if not sep or not arg:
            raise ValueError("the boxes candidate source needs a file: 'boxes:path/to/boxes.json'")
        return BoxesProposals(Path(arg), **kwargs)
    if name == "fast" and sep:
        return FastProposals(**{**_trained_cascade(Path(arg)), **kwargs})
    if name == "detector" and sep:
        return DetectorProposals(**{"weights": _detector_weights(arg), **kwargs})
    if sep:
        raise ValueError(f"candidate source {name!r} takes no ':' argument (got {spec!r})")
    return SOURCES[name](**kwargs)


def _trained_cascade(folder: Path) -> dict[str, Path | None]:
    """``weights``/``refine`` of the fast source from a ``train-proposals --out`` folder."""
    dense, refine = folder / PROPOSAL_WEIGHTS, folder / REFINE_WEIGHTS
    if not dense.is_file():
        raise FileNotFoundError(f"fast:{folder}: no {PROPOSAL_WEIGHTS} there (hyperface train-proposals --out "
                                f"writes it)")
    return {"weights": dense, "refine": refine if refine.is_file() else None}


def _detector_weights(arg: str) -> Path:
    """``weights`` of the detector source from ``detector:PATH``: the file, or the folder's detector weights."""
    if not arg:
        raise ValueError("detector: needs a weights file or folder after the ':' ('detector:PATH'), or none at all")
    path = Path(arg).expanduser()
    if path.is_dir():
        path = path / DETECTOR_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"detector:{path.parent}: no {DETECTOR_WEIGHTS} there (hyperface "
                                    f"train-detector --out writes it)")
    elif not path.is_file():
        raise FileNotFoundError(f"detector:{path}: no such weights file or folder")
    return path
