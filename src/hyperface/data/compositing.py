"""Synthetic photos: donor faces pasted, scaled, into a face-free background (the ``composite`` reader).

A :class:`CompositeImage` is the recipe of one photo: the background file, the output size and each
:class:`Paste` (donor image, the ellipse cut around its face, the scale and shift that place it). The
reader lays photos out without decoding a pixel; :func:`~hyperface.data.images.load_image` renders
the recipe when ``prepare`` (or ``evaluate``) needs the pixels, so nothing is written to disk and a
recipe gives the same image every time, in any process.

A paste maps donor pixel ``p`` to ``scale * p + shift`` (pixel centres at integers, as everywhere),
so the face's box and landmarks move by the same formula as its pixels. Its alpha is 1 inside the
ellipse through the face box's corners (the whole face is pasted) and falls linearly to 0 at the
cut's ellipse, times the same ramp where the donor image ends, so no hard edge (a rectangle, the
donor's border) marks a paste for a detector to learn.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hyperface.data.images import SyntheticImage, load_image

__all__ = ["Paste", "CompositeImage", "paste_face"]


@dataclass(frozen=True)
class Paste:
    """One donor face placed in a composite: output pixel = ``scale`` * donor pixel + ``shift``."""

    donor: Path | SyntheticImage
    centre: tuple[float, float]  # the ellipse's centre, donor pixels (the face box's centre)
    axes: tuple[float, float]    # its semi-axes, donor pixels
    scale: float
    shift: tuple[float, float]
    opaque: float = 0.75         # alpha is 1 inside this share of the ellipse's radius, fading to 0 at 1

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """Donor pixel coordinates (..., 2) -> output pixel coordinates."""
        return np.asarray(xy, dtype=np.float64) * self.scale + np.asarray(self.shift, dtype=np.float64)

    def region(self) -> np.ndarray:
        """(x0, y0, x1, y1) in output pixels that the paste may change: the ellipse's bounding box."""
        centre = self.apply(self.centre)
        half = np.asarray(self.axes, dtype=np.float64) * self.scale
        return np.concatenate([centre - half, centre + half])


def _alpha(paste: Paste, roi: tuple[int, int, int, int], donor_size: tuple[int, int]) -> np.ndarray:
    """Opacity of the paste at the pixel centres of ``roi`` (x0, y0, x1, y1) of the output."""
    x0, y0, x1, y1 = roi
    (tx, ty), s = paste.shift, paste.scale
    px = (np.arange(x0, x1, dtype=np.float64) - tx) / s  # donor coordinates of the output pixels
    py = (np.arange(y0, y1, dtype=np.float64) - ty) / s
    (cx, cy), (ax, ay) = paste.centre, paste.axes
    radius = np.sqrt(((px - cx) / ax)[None, :] ** 2 + ((py - cy) / ay)[:, None] ** 2)
    feather = max(1.0 - paste.opaque, 1e-6)
    alpha = np.clip((1.0 - radius) / feather, 0.0, 1.0)
    ramp = feather * min(ax, ay)  # fade out where the donor image ends, as at the ellipse
    dw, dh = donor_size
    ex = np.clip(np.minimum(px + 0.5, dw - 0.5 - px) / ramp, 0.0, 1.0)
    ey = np.clip(np.minimum(py + 0.5, dh - 0.5 - py) / ramp, 0.0, 1.0)
    return (alpha * ex[None, :] * ey[:, None]).astype(np.float32)


def _warp(donor: np.ndarray, paste: Paste, roi: tuple[int, int, int, int]) -> np.ndarray:
    """The donor's pixels under the ellipse, scaled and shifted onto ``roi`` of the output (float32)."""
    x0, y0, x1, y1 = roi
    dh, dw = donor.shape[:2]
    (cx, cy), (ax, ay) = paste.centre, paste.axes
    cx0, cy0 = max(0, math.floor(cx - ax) - 1), max(0, math.floor(cy - ay) - 1)
    cx1, cy1 = min(dw, math.ceil(cx + ax) + 2), min(dh, math.ceil(cy + ay) + 2)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((y1 - y0, x1 - x0, 3), dtype=np.float32)
    crop = donor[cy0:cy1, cx0:cx1]
    s, (tx, ty) = paste.scale, paste.shift
    fx = fy = 1.0
    if s < 0.5:  # shrink by area averaging first: bilinear warping alone would alias
        w, h = cx1 - cx0, cy1 - cy0
        nw, nh = max(1, round(w * s * 2)), max(1, round(h * s * 2))
        crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / w, nh / h
    # crop pixel r -> donor pixel (r + 0.5) / f - 0.5 + c0 -> output s * donor + t - roi origin
    matrix = np.array([[s / fx, 0.0, s * (0.5 / fx - 0.5 + cx0) + tx - x0],
                       [0.0, s / fy, s * (0.5 / fy - 0.5 + cy0) + ty - y0]])
    out = cv2.warpAffine(np.ascontiguousarray(crop), matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float32)


def paste_face(canvas: np.ndarray, donor: np.ndarray, paste: Paste) -> None:
    """Blend ``paste`` of the ``donor`` image into ``canvas`` (H x W x 3 float32), in place."""
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = paste.region()
    roi = (max(0, math.floor(x0)), max(0, math.floor(y0)), min(w, math.ceil(x1) + 1), min(h, math.ceil(y1) + 1))
    if roi[2] <= roi[0] or roi[3] <= roi[1]:
        return
    alpha = _alpha(paste, roi, (donor.shape[1], donor.shape[0]))[..., None]
    patch = _warp(donor, paste, roi)
    target = canvas[roi[1]:roi[3], roi[0]:roi[2]]
    target += alpha * (patch - target)


@dataclass(frozen=True)
class CompositeImage(SyntheticImage):
    """A background resized to ``size`` (width, height) with ``pastes`` blended in, in order."""

    name: str
    background: Path
    size: tuple[int, int]
    pastes: tuple[Paste, ...] = ()

    def render(self) -> np.ndarray:
        w, h = self.size
        image = load_image(self.background)
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        canvas = image.astype(np.float32)
        donors: dict[str, np.ndarray] = {}
        for paste in self.pastes:
            key = os.fspath(paste.donor)
            if key not in donors:
                donors[key] = load_image(paste.donor)
            paste_face(canvas, donors[key], paste)
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
