"""Crop extraction for the network: all candidates of an image at once.

The geometry is the prepared data's (see :mod:`hyperface.data.shards`): a crop is the candidate box
enlarged by ``context`` about its centre and warped, without keeping aspect, to ``size`` x ``size``;
pixel centres are at integer coordinates. :func:`extract_crops` cuts each crop with the prepared
data's own :func:`hyperface.data.candidates.extract_crop` (``cv2.warpAffine`` after area reduction),
so the network sees bit-exact training crops. Outside the image the crop is black (0), as in training.

:func:`sample_crops` cuts crops as torchvision's ``roi_align`` (``aligned=False``) does, the way the
``fast`` cascade's networks were trained and tuned: ``sampling`` x ``sampling`` bilinear samples per
crop pixel, averaged; a sample more than a pixel outside the image counts 0. OpenCV's ``remap`` does
the bilinear sampling (its fixed-point weights put a value at most 1 off in about a tenth of the pixels).
"""

from __future__ import annotations

import cv2
import numpy as np

from hyperface.data.candidates import extract_crop

__all__ = ["extract_crops", "sample_crops", "relative_to_image", "image_to_relative"]

_REMAP_ROWS = 32767


def extract_crops(image: np.ndarray, boxes: np.ndarray, size: int, context: float = 1.0) -> np.ndarray:
    """uint8 crops (K, size, size, 3) of the RGB ``image`` at ``boxes`` (K, 4), exactly as prepared."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for k, box in enumerate(boxes):
        out[k] = extract_crop(image, box, context, size)
    return out


def sample_crops(image: np.ndarray, boxes: np.ndarray, size: int, sampling: int = 2) -> np.ndarray:
    """uint8 crops (K, size, size, 3) of the RGB ``image`` at ``boxes`` (K, 4), sampled as ``roi_align``."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    k, n = len(boxes), size * sampling
    h, w = image.shape[:2]
    if k == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    most = _REMAP_ROWS // n  # OpenCV's remap takes maps of at most 32767 rows: a crowd goes in parts
    if k > most:
        return np.concatenate([sample_crops(image, boxes[i:i + most], size, sampling) for i in range(0, k, most)])
    rw = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    rh = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    grid = (np.arange(n, dtype=np.float32) + 0.5) / sampling  # sample positions in crop pixels
    xs = boxes[:, :1] + grid[None] * (rw / size)[:, None]  # (K, n)
    ys = boxes[:, 1:2] + grid[None] * (rh / size)[:, None]
    map_x = np.empty((k, n, n), np.float32)
    map_y = np.empty((k, n, n), np.float32)
    map_x[:] = xs[:, None, :]
    map_y[:] = ys[:, :, None]
    # replicated borders clamp samples within a pixel of the image to its edge, as roi_align does
    out = cv2.remap(np.ascontiguousarray(image), map_x.reshape(k * n, n), map_y.reshape(k * n, n),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(k, n, n, 3)
    off_x, off_y = (xs < -1) | (xs > w), (ys < -1) | (ys > h)
    if off_x.any() or off_y.any():
        out[off_x[:, None, :] | off_y[:, :, None]] = 0
    # each crop pixel is the mean of its sampling x sampling samples, rounded half up (exactly so for 2 and
    # 3 samples a side): OpenCV's area reduction by a whole factor (the crops are stacked, so no block
    # spans two), 5x faster than numpy's sum over the blocks
    return cv2.resize(out.reshape(k * n, n, 3), (size, k * size), interpolation=cv2.INTER_AREA).reshape(k, size, size, 3)


def relative_to_image(rel: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Candidate-relative landmarks (K, N, 2), ``a = (x - cx) / w``, to image pixels."""
    c = ((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None]
    wh = (boxes[:, 2:] - boxes[:, :2])[:, None]
    return c + rel * wh


def image_to_relative(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`relative_to_image`."""
    c = ((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None]
    wh = (boxes[:, 2:] - boxes[:, :2])[:, None]
    return (points - c) / wh
