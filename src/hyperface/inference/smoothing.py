"""Temporal smoothing of video results: faces are tracked from frame to frame by box overlap and
their box, landmarks and pose are filtered with the One-Euro filter (Casiez, Roussel, Vogel, CHI
2012): strong smoothing when a face is still (no jitter), little when it moves (no lag).

Visibility, gender and score are passed through unchanged. A face seen in no frame for more than
``max_missing`` frames loses its track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hyperface.boxes import box_iou
from hyperface.inference.result import Face

__all__ = ["OneEuroFilter", "FaceSmoother"]


class OneEuroFilter:
    """One-Euro filter of an array signal; ``min_cutoff`` in Hz (lower = smoother), ``beta`` speed gain.

    Speeds are measured relative to ``scale`` (e.g. the face size), so one setting suits faces of any
    size.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        self.rate = float(fps)
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        dx = (x - self.x) * self.rate / max(scale, 1e-9)
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()


@dataclass
class _Track:
    box: np.ndarray
    filters: dict[str, OneEuroFilter]
    missing: int = 0


class FaceSmoother:
    """Call once per frame with that frame's faces; returns the faces smoothed (same order)."""

    def __init__(self, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.5, iou: float = 0.3,
                 max_missing: int = 5) -> None:
        self.fps, self.min_cutoff, self.beta = fps if fps > 0 else 30.0, min_cutoff, beta
        self.iou, self.max_missing = iou, max_missing
        self.tracks: list[_Track] = []

    def _new_track(self, face: Face) -> _Track:
        make = lambda: OneEuroFilter(self.fps, self.min_cutoff, self.beta)  # noqa: E731
        return _Track(face.box.copy(), {"box": make(), "landmarks": make(), "pose": make()})

    def __call__(self, faces: list[Face]) -> list[Face]:
        assigned: dict[int, int] = {}
        if faces and self.tracks:
            iou = box_iou(np.array([f.box for f in faces]), np.array([t.box for t in self.tracks]))
            while iou.size and iou.max() >= self.iou:  # greedy matching, best overlap first
                i, j = np.unravel_index(np.argmax(iou), iou.shape)
                assigned[int(i)] = int(j)
                iou[i, :] = -1
                iou[:, j] = -1
        out = []
        used = set(assigned.values())
        for t_index, track in enumerate(self.tracks):
            if t_index not in used:
                track.missing += 1
        for i, face in enumerate(faces):
            if i in assigned:
                track = self.tracks[assigned[i]]
                track.missing = 0
            else:
                track = self._new_track(face)
                self.tracks.append(track)
            scale = float(max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1.0))
            box = track.filters["box"](face.box, scale)
            lms = None if face.landmarks is None else track.filters["landmarks"](face.landmarks, scale)
            pose = None if face.pose is None else track.filters["pose"](face.pose, 90.0)
            track.box = box
            out.append(replace(face, box=box, landmarks=lms, pose=pose))
        self.tracks = [t for t in self.tracks if t.missing <= self.max_missing]
        return out
