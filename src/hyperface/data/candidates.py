"""Candidate boxes for training samples: Selective Search regions, boxes jittered around each face,
random boxes; and the crop of a candidate as the network sees it.

Selective Search is the paper's proposal method (OpenCV contrib's implementation). It costs most of
the preparation time, so the image is first scaled so that its longest side is ``max_side`` pixels
(proposals are then scaled back to source pixels) and the number of proposals is capped. Jittered
boxes guarantee every face enough positives whatever Selective Search finds; random boxes add
negatives anywhere, and are the only source of candidates on tiny non-face images.

Boxes are (x0, y0, x1, y1) in source pixels, in the landmark coordinate frame (pixel centres at
integer coordinates).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from hyperface.boxes import box_iou
from hyperface.data.images import MAX_CROP_PIXELS_ENV, pixel_limit

__all__ = [
    "SS_MODES",
    "selective_search",
    "jitter_boxes",
    "random_boxes",
    "clip_boxes",
    "crop_matrix",
    "extract_crop",
    "CropTooLargeError",
    "max_crop_pixels",
    "MAX_CROP_PIXELS",
    "MAX_CROP_PIXELS_ENV",
]

SS_MODES = ("fast", "quality", "single")

# Largest source region one crop may read, padding included (3 bytes a pixel): a face filling a
# 50-megapixel photo fits; an absurd box (a coordinate of 60000 in a small image) does not.
MAX_CROP_PIXELS: int = 100_000_000


class CropTooLargeError(ValueError):
    """A candidate whose crop would need a source region larger than the pixel budget."""


def max_crop_pixels(limit: int | None = None) -> int:
    """The crop budget in force: ``limit``, else $HYPERFACE_MAX_CROP_PIXELS, else :data:`MAX_CROP_PIXELS`."""
    return pixel_limit(limit, MAX_CROP_PIXELS_ENV, MAX_CROP_PIXELS)


def selective_search(image: np.ndarray, *, mode: str = "fast", max_side: int = 256,
                     max_proposals: int = 200, min_size: float = 8.0,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """Selective Search proposals (K, 4) in source pixels for an RGB uint8 image.

    The image is scaled so that its longest side is at most ``max_side`` (never enlarged);
    proposals smaller than ``min_size`` source pixels on a side are dropped and duplicates removed.
    OpenCV ranks proposals with a process-global random state, so its order is not reproducible:
    the boxes come back sorted by coordinates, and when there are more than ``max_proposals`` a
    subset is drawn with ``rng`` (evenly spaced without one), so the result depends only on the
    image and ``rng``.
    """
    if mode not in SS_MODES:
        raise ValueError(f"selective search mode must be one of {SS_MODES}, got {mode!r}")
    h, w = image.shape[:2]
    scale = min(1.0, float(max_side) / max(h, w))
    small = image
    if scale < 1.0:
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if mode == "fast":
        ss.switchToSelectiveSearchFast()
    elif mode == "quality":
        ss.switchToSelectiveSearchQuality()
    else:
        ss.switchToSingleStrategy()
    rects = np.asarray(ss.process(), dtype=np.float64).reshape(-1, 4)
    if len(rects) == 0:
        return np.zeros((0, 4))
    sx, sy = w / small.shape[1], h / small.shape[0]
    boxes = np.stack([rects[:, 0] * sx, rects[:, 1] * sy,
                      (rects[:, 0] + rects[:, 2]) * sx, (rects[:, 1] + rects[:, 3]) * sy], axis=1)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    boxes = boxes[keep]
    boxes = np.unique(boxes, axis=0)  # sorted, duplicates removed
    if len(boxes) > max_proposals:
        if rng is None:
            idx = np.linspace(0, len(boxes) - 1, max_proposals).round().astype(np.int64)
        else:
            idx = np.sort(rng.choice(len(boxes), size=max_proposals, replace=False))
        boxes = boxes[idx]
    return boxes


def jitter_boxes(box: np.ndarray, n: int, rng: np.random.Generator, *, min_iou: float = 0.5,
                 max_iou: float = 1.0, shift: float = 0.15, scale: float = 0.2,
                 aspect: float = 0.1, max_rounds: int = 20) -> np.ndarray:
    """Up to ``n`` boxes around ``box`` whose IoU with it lies in (min_iou, max_iou].

    Centres move by up to ``shift`` times the box size, the size by a log-factor up to ``scale``
    and the aspect by a log-factor up to ``aspect``; draws outside the IoU band are rejected.
    """
    box = np.asarray(box, dtype=np.float64).reshape(4)
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    out: list[np.ndarray] = []
    got = 0
    for _ in range(max_rounds):
        if got >= n or w <= 0 or h <= 0:
            break
        m = max(16, 4 * n)
        dx = rng.uniform(-shift, shift, m) * w
        dy = rng.uniform(-shift, shift, m) * h
        s = np.exp(rng.uniform(-scale, scale, m))
        r = np.exp(rng.uniform(-aspect, aspect, m))
        nw, nh = w * s * np.sqrt(r), h * s / np.sqrt(r)
        cand = np.stack([cx + dx - nw / 2, cy + dy - nh / 2, cx + dx + nw / 2, cy + dy + nh / 2], axis=1)
        iou = box_iou(cand, box[None])[:, 0]
        cand = cand[(iou > min_iou) & (iou <= max_iou)][: n - got]
        out.append(cand)
        got += len(cand)
    return np.concatenate(out) if out else np.zeros((0, 4))


def random_boxes(width: int, height: int, n: int, rng: np.random.Generator, *,
                 min_side: float = 12.0, max_aspect: float = 1.25) -> np.ndarray:
    """``n`` random boxes inside a ``width`` x ``height`` image, log-uniform in size, near-square."""
    if n <= 0:
        return np.zeros((0, 4))
    longest = float(min(width, height))
    lo = min(float(min_side), longest)
    side = np.exp(rng.uniform(math.log(lo), math.log(longest), n))
    r = np.exp(rng.uniform(-math.log(max_aspect), math.log(max_aspect), n))
    bw = np.minimum(side * np.sqrt(r), width)
    bh = np.minimum(side / np.sqrt(r), height)
    x0 = rng.uniform(0, 1, n) * (width - bw)
    y0 = rng.uniform(0, 1, n) * (height - bh)
    return np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip boxes to the image (x in [0, width], y in [0, height])."""
    b = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 4)
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


def crop_matrix(box: np.ndarray, context: float, crop_size: int) -> np.ndarray:
    """2 x 3 affine from source pixels to crop pixels: ``box`` enlarged by ``context`` -> the crop.

    Pixel centres are at integer coordinates in both images, so the enlarged box's edges map to the
    crop's outer edges (-0.5 and crop_size - 0.5).
    """
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ew, eh = (x1 - x0) * context, (y1 - y0) * context
    if ew <= 0 or eh <= 0:
        raise ValueError(f"empty candidate box {box}")
    sx, sy = crop_size / ew, crop_size / eh
    ex0, ey0 = cx - ew / 2, cy - eh / 2
    return np.array([[sx, 0.0, -sx * ex0 - 0.5], [0.0, sy, -sy * ey0 - 0.5]])


def extract_crop(image: np.ndarray, box: np.ndarray, context: float, crop_size: int,
                 *, border_value: int = 0, max_pixels: int | None = None) -> np.ndarray:
    """The candidate ``box`` enlarged by ``context``, warped to ``crop_size`` x ``crop_size`` uint8.

    Large reductions first shrink the region with area averaging (no aliasing), then a bilinear
    warp places it exactly; outside the image is filled with ``border_value``. A region (padding
    included) over :func:`max_crop_pixels` (``max_pixels``) raises :class:`CropTooLargeError`
    before anything is allocated.
    """
    m = crop_matrix(box, context, crop_size)
    sx, sy = m[0, 0], m[1, 1]
    size = (crop_size, crop_size)
    if min(sx, sy) >= 0.7:
        return cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(border_value,) * 3)
    h, w = image.shape[:2]
    # Source pixel rectangle covering the enlarged box, with one pixel of margin.
    ex0 = (-0.5 - m[0, 2]) / sx
    ey0 = (-0.5 - m[1, 2]) / sy
    ex1, ey1 = ex0 + crop_size / sx, ey0 + crop_size / sy
    if not all(math.isfinite(v) for v in (ex0, ey0, ex1, ey1)):
        raise ValueError(f"candidate box {box} is not finite")
    rx0, ry0 = math.floor(ex0) - 1, math.floor(ey0) - 1
    rx1, ry1 = math.ceil(ex1) + 2, math.ceil(ey1) + 2
    region = image[max(ry0, 0):max(min(ry1, h), 0), max(rx0, 0):max(min(rx1, w), 0)]
    pad = (max(0, -ry0), max(0, ry1 - h), max(0, -rx0), max(0, rx1 - w))
    if region.size == 0:
        return np.full((crop_size, crop_size, 3), border_value, dtype=np.uint8)
    most = max_crop_pixels(max_pixels)
    if (rx1 - rx0) * (ry1 - ry0) > most:
        raise CropTooLargeError(
            f"crop of box {np.round(np.asarray(box, dtype=np.float64), 1).tolist()} needs a {rx1 - rx0}x{ry1 - ry0} "
            f"pixel region, over the limit of {most:,}; raise it with ${MAX_CROP_PIXELS_ENV} if the box is genuine")
    if any(pad):
        region = cv2.copyMakeBorder(region, pad[0], pad[1], pad[2], pad[3], cv2.BORDER_CONSTANT,
                                    value=(border_value,) * 3)
    rh, rw = region.shape[:2]
    nw, nh = max(1, round(rw * sx)), max(1, round(rh * sy))
    small = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
    fx, fy = nw / rw, nh / rh
    # resize maps x_small = (x_region + 0.5) * f - 0.5, with x_region = x - rx0.
    m2 = np.array([
        [sx / fx, 0.0, sx * (0.5 / fx + rx0 - 0.5) + m[0, 2]],
        [0.0, sy / fy, sy * (0.5 / fy + ry0 - 0.5) + m[1, 2]],
    ])
    return cv2.warpAffine(small, m2, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(border_value,) * 3)
