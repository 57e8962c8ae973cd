"""Crop extraction for the network: all candidates of an image at once.

Two equivalent ways: :func:`extract_crops` (one ``roi_align`` call on a tensor, for GPUs) and
:func:`extract_crops_cv2` (the prepared data's own :func:`hyperface.data.candidates.extract_crop`,
``cv2.warpAffine`` after area reduction, per box: bit-exact training crops, and on a CPU about three
times faster than ``roi_align``, whose CPU kernel is slow). The analyzer uses the second on CPUs.

The geometry is the prepared data's (see :mod:`hyperface.data.shards`): a crop is the candidate box
enlarged by ``context`` about its centre and warped, without keeping aspect, to ``size`` x ``size``;
pixel centres are at integer coordinates, so crop pixel ``j`` samples image coordinate
``x0 + (j + 0.5) * W / size`` of the enlarged box ``[x0, x0 + W]``. That is ``roi_align`` with
``aligned=False`` on the enlarged box. Outside the image the crop is black (0), as in training.

``sampling_ratio`` -1 (the default) averages ``ceil(box side / size)`` bilinear samples per output
pixel: bilinear when enlarging and close to area averaging when reducing, which is how
:func:`hyperface.data.candidates.extract_crop` cut the training crops.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align

from hyperface.data.candidates import extract_crop

__all__ = [
    "extract_crops_cv2",
    "image_to_tensor",
    "enlarge_boxes",
    "extract_crops",
    "relative_to_image",
    "image_to_relative",
]


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """H x W x 3 uint8 RGB -> (1, 3, H, W) float32 in 0..255 on ``device`` (uint8 moved first)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.dtype} {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float()


def enlarge_boxes(boxes: torch.Tensor, context: float) -> torch.Tensor:
    """Boxes (K, 4) scaled by ``context`` about their centres."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (context / 2)
    return torch.cat([c - half, c + half], dim=1)


def extract_crops(image: torch.Tensor, boxes: torch.Tensor, size: int, context: float = 1.0,
                  sampling_ratio: int = -1) -> torch.Tensor:
    """Crops (K, 3, size, size) float in 0..255 of ``image`` (1, 3, H, W) at ``boxes`` (K, 4).

    Boxes are (x0, y0, x1, y1) in image pixels; each crop covers the box enlarged by ``context``.
    """
    if boxes.numel() == 0:
        return image.new_zeros((0, image.shape[1], size, size))
    rois = enlarge_boxes(boxes.to(image.dtype), context)
    return roi_align(image, [rois], output_size=(size, size), spatial_scale=1.0,
                     sampling_ratio=sampling_ratio, aligned=False)


def extract_crops_cv2(image: np.ndarray, boxes: np.ndarray, size: int, context: float = 1.0) -> np.ndarray:
    """uint8 crops (K, size, size, 3) of the RGB ``image`` at ``boxes`` (K, 4), exactly as prepared."""
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for k, box in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        out[k] = extract_crop(image, box, context, size)
    return out


def relative_to_image(rel: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Candidate-relative landmarks (K, N, 2), ``a = (x - cx) / w``, to image pixels."""
    c = ((boxes[:, :2] + boxes[:, 2:]) / 2).unsqueeze(1)
    wh = (boxes[:, 2:] - boxes[:, :2]).unsqueeze(1)
    return c + rel * wh


def image_to_relative(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`relative_to_image`."""
    c = ((boxes[:, :2] + boxes[:, 2:]) / 2).unsqueeze(1)
    wh = (boxes[:, 2:] - boxes[:, :2]).unsqueeze(1)
    return (points - c) / wh
