"""Training augmentation of prepared samples, each step a small function of a sample dict.

Geometry follows :mod:`hyperface.data.shards`: a stored crop of side ``S`` is the candidate box
enlarged by ``context``; landmarks are candidate-relative ``a = (x - cx) / w`` (so the box spans
``a`` in [-0.5, 0.5]) and sit in crop pixels (centres at integers) at ``S * (0.5 + a / context) - 0.5``.

* :func:`flip_sample` mirrors the crop about its centre: ``a -> -a``, the point set's permutation
  swaps left and right, roll and yaw change sign, MTFL's pose class ``c`` (1..5) becomes ``6 - c``.
* :func:`crop_to_input` cuts the network input out of the stored crop: a sub-box of the candidate
  box (scaled by ``s``, moved by ``(dx, dy)`` box sides and turned by ``angle`` degrees, the
  scale/shift/rotation jitter) resized to the model's input size; the landmarks follow through
  ``a' = R(angle) (a - d) / s`` and the pose through :func:`hyperface.pose.rotate_pose`. With no
  jitter it is the candidate box itself, which is what validation and inference see. Rotation
  matters for a regression network: it is the only way a few thousand upright training faces teach
  it tilted ones, and roll labels then cover more than the data's narrow range.
* :func:`colour_jitter` changes brightness, contrast and saturation.
* :func:`~hyperface.train.self_occlusion.label_self_occlusion` (``self_occlusion`` > 0) labels the
  68 points that a turned head hides as invisible, from the sample's pose after the jitter; it runs
  in validation too, so validation faces carry the same labels.
* :func:`occlude_sample` paints occluders (masks, sunglasses, hands) and photometric degradations
  (:mod:`hyperface.train.occlusion`) on a crop, where the landmarks say, and turns the points an
  occluder covers into visibility labels. In :func:`augment_sample` it runs last, on the network
  input.

A sample's random draws come from the ``numpy.random.Generator`` passed in, so a caller that seeds
it from (seed, epoch, index) gets the same augmentation whichever worker or process runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from hyperface.data.shards import relative_to_crop
from hyperface.points import PointSet, get_point_set
from hyperface.pose import flip_pose, rotate_pose
from hyperface.train.occlusion import OCCLUDERS, OCCLUSIONS, apply_occlusions
from hyperface.train.self_occlusion import label_self_occlusion

if TYPE_CHECKING:
    from hyperface.train.config import AugmentConfig

__all__ = [
    "Jitter",
    "flip_sample",
    "draw_jitter",
    "crop_to_input",
    "jitter_points",
    "jitter_labels",
    "draw_colour",
    "colour_matrix",
    "colour_jitter",
    "occlude_sample",
    "augment_sample",
    "augment_kwargs",
    "makes_visibility_labels",
]

Sample = dict[str, Any]


def flip_sample(sample: Sample, point_set: PointSet | str | None) -> Sample:
    """The sample mirrored left-right (a new dict; the input is not changed).

    ``point_set`` names the set of ``landmarks`` (its flip permutation re-indexes points, visibility
    and masks); ``landmarks5`` always use the 5-point set's permutation. Pose: roll and yaw negated,
    and the pose class mirrored (left profile <-> right profile; 0, none, stays 0).
    """
    out = dict(sample)
    if "image" in sample:  # a label-only dict (the batched path mirrors its pixels later) has none
        out["image"] = np.ascontiguousarray(sample["image"][:, ::-1])
    if "landmarks" in sample:
        ps = get_point_set(point_set) if isinstance(point_set, str) else point_set
        n = sample["landmarks"].shape[0]
        if ps is None or ps.num_points != n:
            if np.any(sample.get("landmarks_mask", True)):
                raise ValueError(f"flip: {n} landmarks need a point set with {n} points, got "
                                 f"{getattr(ps, 'name', ps)!r}")
            # Unlabelled landmarks of another shape: nothing to re-index.
        else:
            out["landmarks"] = _flip_relative(sample["landmarks"], ps)
            for key in ("landmarks_mask", "visibility", "visibility_mask"):
                if key in sample:
                    out[key] = np.ascontiguousarray(ps.flip_values(sample[key]))
    if "landmarks5" in sample:
        five = get_point_set("five")
        out["landmarks5"] = _flip_relative(sample["landmarks5"], five)
        if "landmarks5_mask" in sample:
            out["landmarks5_mask"] = np.ascontiguousarray(five.flip_values(sample["landmarks5_mask"]))
    if "pose" in sample:
        out["pose"] = flip_pose(sample["pose"]).astype(np.asarray(sample["pose"]).dtype)
    if "pose_class" in sample:
        c = np.asarray(sample["pose_class"])
        out["pose_class"] = np.where(c > 0, 6 - c, 0).astype(c.dtype)
    return out


def _flip_relative(points: np.ndarray, ps: PointSet) -> np.ndarray:
    """Candidate-relative points of the mirrored crop: ``a -> -a`` (the crop is mirrored about the
    box centre), then re-indexed so that "left" points are on the left again."""
    pts = np.asarray(points)
    mirrored = pts[..., np.asarray(ps.flip_permutation), :].copy()
    mirrored[..., 0] = -mirrored[..., 0]
    return mirrored


class Jitter(tuple):
    """(dx, dy, s, angle): the input box's centre offset in box sides, its side relative to the box,
    and how many degrees the image content turns clockwise on screen (the box turns the other way)."""

    __slots__ = ()

    def __new__(cls, dx: float = 0.0, dy: float = 0.0, s: float = 1.0, angle: float = 0.0) -> Jitter:
        if not s > 0:
            raise ValueError(f"jitter scale must be > 0, got {s}")
        return super().__new__(cls, (float(dx), float(dy), float(s), float(angle)))

    dx = property(lambda self: self[0])
    dy = property(lambda self: self[1])
    s = property(lambda self: self[2])
    angle = property(lambda self: self[3])

    def matrix(self) -> np.ndarray:
        """2x2 map from candidate-relative offsets to the input box's: ``R(angle) / s``."""
        c, s = np.cos(np.radians(self.angle)), np.sin(np.radians(self.angle))
        return np.array([[c, -s], [s, c]]) / self.s


def draw_jitter(rng: np.random.Generator, scale: float, shift: float, rotate: float = 0.0) -> Jitter:
    """A random box jitter: side times uniform(1 - scale, 1 + scale), centre moved by up to ``shift``,
    content turned by uniform(-rotate, rotate) degrees."""
    s = 1.0 + rng.uniform(-scale, scale) if scale > 0 else 1.0
    dx, dy = rng.uniform(-shift, shift, size=2) if shift > 0 else (0.0, 0.0)
    angle = rng.uniform(-rotate, rotate) if rotate > 0 else 0.0
    return Jitter(dx, dy, s, angle)


def crop_to_input(image: np.ndarray, context: float, out_size: int, jitter: Jitter = Jitter(),
                  flip: bool = False) -> np.ndarray:
    """Cut the (jittered) candidate box out of a stored crop and resize it to ``out_size`` square.

    Output pixel ``i`` (centre) is the input box's relative coordinate ``(i + 0.5) / out_size - 0.5``;
    areas outside the stored crop are black. Large reductions are area-averaged first. ``flip``
    mirrors the crop about its centre first (as :func:`flip_sample` does), in the same warp: no
    mirrored copy is made.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[0] != img.shape[1]:
        raise ValueError(f"crop_to_input needs a square H x W x C crop, got shape {img.shape}")
    size = img.shape[0]
    jitter = Jitter(*jitter)
    step = size * jitter.s / (context * out_size)  # source pixels per output pixel
    if step > 1.5:  # area-average first so that the bilinear warp does not alias
        new_size = max(1, int(round(size / step * 1.25)))
        img = cv2.resize(img, (new_size, new_size), interpolation=cv2.INTER_AREA)
        size = new_size
    # Output pixel p (centre at p + 0.5 of T) is the input-box offset u = (p + 0.5) / T - 0.5, the
    # candidate-relative point a = d + inv(M) u with M = jitter.matrix(), the source pixel
    # size * (0.5 + a / context) - 0.5: an affine map p -> A p + b.
    k = size / context
    back = np.linalg.inv(jitter.matrix())
    linear = k * back / out_size
    offset = k * (np.array([jitter.dx, jitter.dy]) + back @ np.full(2, 0.5 / out_size - 0.5)) + size / 2 - 0.5
    matrix = np.column_stack([linear, offset]).astype(np.float64)
    if flip:  # source column x of the mirrored crop is column size - 1 - x of the stored one
        matrix[0] = -matrix[0]
        matrix[0, 2] += size - 1
    out = cv2.warpAffine(img, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(out_size, out_size, -1) if out.ndim == 2 else out


def jitter_points(points: np.ndarray, jitter: Jitter) -> np.ndarray:
    """Candidate-relative points (..., 2) re-expressed relative to the jittered box."""
    jitter = Jitter(*jitter)
    pts = np.asarray(points)
    moved = (pts - np.array([jitter.dx, jitter.dy])) @ jitter.matrix().T
    return moved.astype(pts.dtype, copy=False)


def draw_colour(rng: np.random.Generator, brightness: float = 0.0, contrast: float = 0.0,
                saturation: float = 0.0) -> tuple[float, float, float]:
    """Random brightness, contrast and saturation factors, each uniform in ``1 +- value`` (1 when 0)."""
    return tuple(1.0 + rng.uniform(-v, v) if v > 0 else 1.0 for v in (brightness, contrast, saturation))


#: ITU-R BT.601 luma weights of R, G, B.
LUMA = np.array([0.299, 0.587, 0.114])


def colour_matrix(brightness: float, contrast: float, saturation: float) -> tuple[np.ndarray, float]:
    """The colour jitter as one affine map per pixel: ``x' = M x + k * mean_luma(x)``.

    Brightness scales ``x`` by ``b``; contrast pulls every value towards the picture's mean luma
    ``m = b * mean_luma(x)`` by ``c``; saturation pulls each pixel towards its own luma by ``s``.
    Composed, ``M = c b ((1 - s) 1 luma^T + s I)`` and ``k = (1 - c) b``; returns ``(M, k)``.
    """
    b, c, s = float(brightness), float(contrast), float(saturation)
    m = c * b * ((1.0 - s) * np.outer(np.ones(3), LUMA) + s * np.eye(3))
    return m, (1.0 - c) * b


def jitter_labels(sample: Sample, jitter: Jitter) -> Sample:
    """The sample's landmarks (own and five-point) and pose re-expressed for the jittered box (a new
    dict); the image is left alone."""
    out = dict(sample)
    if jitter != Jitter():
        for key in ("landmarks", "landmarks5"):
            if key in out:
                out[key] = jitter_points(out[key], jitter)
    if jitter.angle and "pose" in out:
        out["pose"] = rotate_pose(out["pose"], jitter.angle).astype(np.asarray(out["pose"]).dtype)
    return out


def colour_jitter(image: np.ndarray, rng: np.random.Generator, brightness: float = 0.0,
                  contrast: float = 0.0, saturation: float = 0.0) -> np.ndarray:
    """Random brightness, contrast and saturation factors in ``1 +- value``; uint8 RGB in and out."""
    if brightness <= 0 and contrast <= 0 and saturation <= 0:
        return image
    m, k = colour_matrix(*draw_colour(rng, brightness, contrast, saturation))
    img = np.ascontiguousarray(image)
    offset = k * float(np.dot(cv2.mean(img)[:3], LUMA))  # k times the picture's mean luma
    # OpenCV applies the 3 x 4 map to every pixel with saturation to 0..255 and rounding, in one pass
    return cv2.transform(img, np.column_stack([m, np.full(3, offset)]))


def occlude_sample(sample: Sample, rng: np.random.Generator, *, context: float,
                   point_set: PointSet | str | None, probabilities: Mapping[str, float]) -> Sample:
    """Occluders and degradations (:func:`~hyperface.train.occlusion.apply_occlusions`) on a sample
    whose image is its candidate box enlarged ``context`` times (1 for the network input).

    The geometry comes from the labelled ``landmarks`` of ``point_set``, else from ``landmarks5``.
    When an occluder is painted on a sample with labelled landmarks, every labelled point gets a
    visibility label (``visibility_mask`` True): 0 where an occluder covers it or where it was
    already labelled invisible, 1 elsewhere. Without a painted occluder the labels stay as they were.
    Returns a new dict.
    """
    out = dict(sample)
    image = np.asarray(sample["image"])
    size = image.shape[0]
    ps = get_point_set(point_set) if isinstance(point_set, str) else point_set
    own = None
    if "landmarks" in sample:
        marks = np.asarray(sample["landmarks"])
        labelled = np.asarray(sample.get("landmarks_mask", np.ones(len(marks), bool)), dtype=bool)
        if labelled.any():
            if ps is None or ps.num_points != len(marks):
                raise ValueError(f"occlusion: {len(marks)} landmarks need a point set with {len(marks)} points, "
                                 f"got {getattr(ps, 'name', ps)!r}")
            own = labelled
    if own is not None:
        points, geometry = _pixels(sample["landmarks"], own, context, size), ps
    elif "landmarks5" in sample and np.any(sample.get("landmarks5_mask", True)):
        five = np.asarray(sample.get("landmarks5_mask", np.ones(5, bool)), dtype=bool)
        points, geometry = _pixels(sample["landmarks5"], five, context, size), "five"
    else:
        points, geometry = None, None
    out["image"], hidden, painted = apply_occlusions(image, points, geometry, rng, probabilities)
    if painted and own is not None:
        n = len(own)
        old_vis = np.asarray(sample.get("visibility", np.ones(n)), dtype=np.float32)
        old_mask = np.asarray(sample.get("visibility_mask", np.zeros(n, bool)), dtype=bool)
        seen = np.where(old_mask, old_vis > 0.5, True) & ~hidden
        out["visibility"] = np.where(own, seen, old_vis).astype(np.float32)
        out["visibility_mask"] = own | old_mask
    return out


def _pixels(relative: np.ndarray, labelled: np.ndarray, context: float, size: int) -> np.ndarray:
    """Candidate-relative points in crop pixels, NaN where unlabelled."""
    px = relative_to_crop(relative, context, size)
    px[~labelled] = np.nan
    return px


def augment_sample(sample: Sample, rng: np.random.Generator | None, *, context: float, out_size: int,
                   point_set: PointSet | str | None, flip: float = 0.0, scale: float = 0.0,
                   shift: float = 0.0, rotate: float = 0.0, brightness: float = 0.0, contrast: float = 0.0,
                   saturation: float = 0.0, occlusion: Mapping[str, float] | None = None,
                   self_occlusion: float = 0.0, input_context: float = 1.0) -> Sample:
    """Flip, jitter (scale, shift, rotation), colour-jitter, resize one sample to the network input,
    label what the head hides (``self_occlusion``: the margin in degrees, 0 = off), then paint the
    ``occlusion`` options (name -> probability, :data:`~hyperface.train.occlusion.OCCLUSIONS`).

    ``input_context``: the network sees the (jittered) box enlarged this many times (a model's
    ``arch_kwargs["context"]``, as :class:`hyperface.alignment.Alignment` cuts its window at inference);
    the labels stay relative to the box itself. With ``rng=None`` (validation) the result is the plain
    candidate box (so enlarged) at ``out_size`` (with self-occlusion labels when asked).
    """
    flipped = rng is not None and flip > 0 and rng.random() < flip
    image = sample["image"]
    labels = {k: v for k, v in sample.items() if k != "image"}
    sample = flip_sample(labels, point_set) if flipped else labels  # the warp mirrors the pixels
    jitter = draw_jitter(rng, scale, shift, rotate) if rng is not None else Jitter()
    sample = jitter_labels(sample, jitter)
    window = Jitter(jitter.dx, jitter.dy, jitter.s * input_context, jitter.angle)  # what the network sees
    sample["image"] = crop_to_input(image, context, out_size, window, flip=flipped)
    if self_occlusion > 0 and "pose" in sample:
        sample = label_self_occlusion(sample, point_set, self_occlusion)
    if rng is not None:
        sample["image"] = colour_jitter(sample["image"], rng, brightness, contrast, saturation)
        if occlusion and any(p > 0 for p in occlusion.values()):
            sample = occlude_sample(sample, rng, context=input_context, point_set=point_set,
                                    probabilities=occlusion)
    return sample


def augment_kwargs(cfg: AugmentConfig | None) -> dict[str, Any]:
    """:func:`augment_sample`'s keyword arguments for an ``augment`` config section ({} for None)."""
    if cfg is None:
        return {}
    kwargs = {k: getattr(cfg, k) for k in ("flip", "scale", "shift", "rotate", "brightness", "contrast", "saturation")}
    kwargs["occlusion"] = {k: getattr(cfg, k) for k in OCCLUSIONS}
    kwargs["self_occlusion"] = cfg.self_occlusion
    return kwargs


def makes_visibility_labels(cfg: AugmentConfig) -> bool:
    """Whether the ``augment`` section labels visibility on samples with landmarks (an occluder or
    self-occlusion switched on), so training has visibility labels that the prepared data lacks."""
    return cfg.self_occlusion > 0 or any(getattr(cfg, k) > 0 for k in OCCLUDERS)
