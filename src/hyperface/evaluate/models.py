"""A weights file under test: :class:`~hyperface.inference.FaceAnalyzer` in the three ways evaluation
calls it.

* ``detect``: the analyzer exactly as a user gets it (its default operating point);
* ``detect_all``: the same pipeline with the final score threshold lowered to ``ap_threshold``, so
  that the average precision covers the lower-scored detections too (IRP still refines only the
  candidates a default analyzer refines);
* ``given``: the ground-truth box given as the only candidate, one call per box, with no final
  score threshold: the face is known to be there, so the output for that box is always used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hyperface.inference import Face, FaceAnalyzer
from hyperface.inference.proposals import DEFAULT_PROPOSALS

__all__ = ["AnalyzerModel", "model_names"]


def model_names(weights: list[str]) -> list[str]:
    """Short, unique row names for weights files: the file stem, disambiguated by its folder."""
    stems = [Path(w).stem for w in weights]
    names = []
    for w, stem in zip(weights, stems):
        if stems.count(stem) > 1:
            parent = Path(w).parent.name
            stem = f"{parent}/{stem}" if parent else stem
        names.append(stem)
    # Still equal (same file twice): number them.
    out = []
    for i, n in enumerate(names):
        out.append(n if names.count(n) == 1 else f"{n}#{names[:i].count(n) + 1}")
    return out


class AnalyzerModel:
    """One weights file, with the analyzers evaluation needs (built lazily, sharing one candidate source)."""

    def __init__(self, weights: str | Path | None, name: str | None = None, *, device: str = "cpu",
                 proposals: str = DEFAULT_PROPOSALS, ap_threshold: float = 0.0, **options: Any) -> None:
        self.weights = weights
        self.options = dict(options, device=device)
        self.default = FaceAnalyzer(weights=weights, proposals=proposals, **self.options)
        self.name = name or (Path(weights).stem if weights is not None else "bundled")
        self.point_set: str | None = self.default.point_set
        self.tasks: tuple[str, ...] = tuple(self.default.config.tasks)
        self.score_threshold: float | None = self.default.score_threshold
        if not 0.0 <= ap_threshold <= self.default.score_threshold:
            raise ValueError(f"ap_threshold must be in [0, {self.default.score_threshold}] (the default "
                             f"threshold), got {ap_threshold}")
        self.ap_threshold = float(ap_threshold)
        self._all: FaceAnalyzer | None = None
        self._box: FaceAnalyzer | None = None

    def _variant(self, score_threshold: float) -> FaceAnalyzer:
        opts = dict(self.options)
        opts["score_threshold"] = score_threshold
        opts.setdefault("irp_threshold", self.default.stage_one.irp_threshold)
        return FaceAnalyzer(weights=self.weights, proposals=self.default.proposals, **opts)

    def detect(self, image: np.ndarray, key: str | None = None) -> list[Face]:
        return self.default.batch([image], keys=[key])[0]

    def detect_all(self, image: np.ndarray, key: str | None = None) -> list[Face]:
        if self.ap_threshold >= self.default.score_threshold:
            return self.detect(image, key)
        if self._all is None:
            self._all = self._variant(self.ap_threshold)
        return self._all.batch([image], keys=[key])[0]

    def given(self, image: np.ndarray, boxes: np.ndarray, key: str | None = None) -> list[Face | None]:
        if self._box is None:
            self._box = self._variant(0.0)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return []
        return list(self._box.batch([image], boxes=[boxes], keys=[key])[0])  # one face per given box, in order
