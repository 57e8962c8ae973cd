"""Synthetic occluders and photometric degradations painted on a face crop, and which landmarks they hide.

Training faces are mostly clean and unoccluded, while the faces the model meets wear masks and
sunglasses, hold a hand or a cup in front of the face, and come blurred, dark, noisy or heavily
compressed. Painting those on the training crops teaches the network to see through them, and
because the occluder is drawn where the landmarks say, the points it covers are known: they become
honest visibility labels (``visibility`` 0) for the visibility task.

Every function has one signature, ``fn(image, points, point_set, rng) -> (image, hidden)``:

* ``image``: the uint8 RGB crop (H x W x 3); a new array comes back, the input is left alone;
* ``points``: the landmarks in crop pixels (N x 2, pixel centres at integers), NaN rows for
  unlabelled points, or None for a sample without landmarks;
* ``point_set``: the set the points belong to (a name or :class:`~hyperface.points.PointSet`);
* ``rng``: every random draw comes from it, so a seeded generator gives the same picture;
* ``hidden``: (N,) bool, the points inside the painted occluder (``(0,)`` without points).

Occluders (:data:`OCCLUDERS`): ``mask`` (a medical mask with pleats or a cloth mask, solid or with a
pattern, over the lower nose, mouth and chin), ``sunglasses`` (two dark lenses over the eyes with a
bridge and arms), ``hand`` (a skin-toned hand or a random-coloured object over a random part of the
face, or of the crop when it has no landmarks). The mask and the glasses follow the face's 68 points:
the sample's own for iBUG 68, otherwise :data:`hyperface.alignment.MEAN_SHAPE68` fitted to the
labelled points by a similarity (:func:`face_shape68`); without points they draw nothing. Every
painted area is a polygon, filled anti-aliased, and a point is hidden when it lies inside one
(:func:`cv2.pointPolygonTest`), so the label and the picture agree to the sub-pixel.

Photometric degradations (:data:`PHOTOMETRIC`; they hide nothing): ``greyscale``, ``low_light``
(gamma and gain), ``blur`` (Gaussian or motion), ``noise`` (Gaussian), ``jpeg`` (re-encoding at low
quality). Sizes scale with the face (inter-ocular distance) or the crop side, so the same options
suit a 64-pixel and a 227-pixel input.

:func:`apply_occlusions` runs the ones switched on (a probability each) in the order of
:data:`OCCLUSIONS`: occluders first, so that blur, noise and compression also degrade them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import cv2
import numpy as np

from hyperface.alignment import MEAN_SHAPE68, similarity_fit
from hyperface.points import PointSet, convert_matrix, get_point_set

__all__ = [
    "OCCLUDERS",
    "PHOTOMETRIC",
    "OCCLUSIONS",
    "face_shape68",
    "draw_mask",
    "draw_sunglasses",
    "draw_hand",
    "greyscale",
    "low_light",
    "blur",
    "noise",
    "jpeg",
    "apply_occlusions",
]

Occlusion = Callable[[np.ndarray, "np.ndarray | None", "PointSet | str | None", np.random.Generator],
                     tuple[np.ndarray, np.ndarray]]

_MEAN68 = np.asarray(MEAN_SHAPE68, dtype=np.float64)
_SHIFT = 4  # fixed-point bits of the polygon vertices given to OpenCV (1/16 pixel)

# Skin tones from light to dark (RGB), jittered per draw.
_SKIN = np.array([(250, 220, 195), (235, 190, 160), (225, 170, 120), (195, 135, 95), (150, 100, 65),
                  (100, 65, 45)], dtype=np.float64)
_MEDICAL = np.array([(160, 200, 230), (120, 175, 215), (238, 238, 238), (190, 192, 198)], dtype=np.float64)


# -- geometry ---------------------------------------------------------------------------------------

def _point_set(point_set: PointSet | str | None) -> PointSet | None:
    return get_point_set(point_set) if isinstance(point_set, str) else point_set


def _check(image: np.ndarray, points: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"occlusion: need a uint8 H x W x 3 RGB crop, got {img.dtype} {img.shape}")
    if points is None:
        return img, None
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"occlusion: landmarks must be N x 2 pixels, got shape {pts.shape}")
    return img, pts


def _no_hidden(points: np.ndarray | None) -> np.ndarray:
    return np.zeros(0 if points is None else len(points), dtype=bool)


def face_shape68(points: np.ndarray | None, point_set: PointSet | str | None) -> np.ndarray | None:
    """The face's 68 points (68 x 2 pixels) from its labelled points, or None when they cannot say.

    iBUG-68 points are returned as they are; any other set (and unlabelled NaN rows of a 68-point
    face) takes :data:`~hyperface.alignment.MEAN_SHAPE68` fitted by a similarity to the labelled
    points the mean shape can provide (``convert_matrix("ibug68", set)``). Needs two such points.
    """
    ps = _point_set(point_set)
    if points is None or ps is None:
        return None
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) != ps.num_points:
        raise ValueError(f"occlusion: {len(pts)} landmarks do not match point set {ps.name!r} "
                         f"({ps.num_points} points)")
    labelled = np.isfinite(pts).all(axis=1)
    if ps.name == "ibug68" and labelled.all():
        return pts.copy()
    weights, available = convert_matrix("ibug68", ps.name)
    use = labelled & available
    if use.sum() < 2:
        return None
    try:
        m = similarity_fit((weights @ _MEAN68)[use], pts[use])
    except ValueError:  # coincident points
        return None
    face = _MEAN68 @ m[:, :2].T + m[:, 2]
    if ps.name == "ibug68":
        face[labelled] = pts[labelled]
    return face


def _eye_frame(face: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Eye centres (left, right on the image), the unit vector along the eye line, its normal
    pointing down the face, and the inter-ocular distance (at least one pixel)."""
    left, right = face[36:42].mean(axis=0), face[42:48].mean(axis=0)
    d = float(np.linalg.norm(right - left))
    u = (right - left) / d if d > 1e-6 else np.array([1.0, 0.0])
    return left, right, u, np.array([-u[1], u[0]]), max(d, 1.0)


def _superellipse(centre: np.ndarray, a: float, b: float, u: np.ndarray, v: np.ndarray, exponent: float,
                  count: int = 48) -> np.ndarray:
    """Polygon of ``|x/a|^n + |y/b|^n = 1`` in the frame (u, v) about ``centre``: an ellipse for n = 2,
    a rounded rectangle for larger n."""
    t = np.linspace(0, 2 * np.pi, count, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = a * np.sign(c) * np.abs(c) ** (2 / exponent)
    y = b * np.sign(s) * np.abs(s) ** (2 / exponent)
    return centre + x[:, None] * u + y[:, None] * v


def _quad(p: np.ndarray, q: np.ndarray, width: float) -> np.ndarray:
    """A bar of ``width`` pixels from ``p`` to ``q``, as a polygon."""
    d = q - p
    n = np.array([-d[1], d[0]]) / max(float(np.linalg.norm(d)), 1e-6) * width / 2
    return np.array([p + n, q + n, q - n, p - n])


def _coverage(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    """Anti-aliased union of the polygons as float coverage (H x W) in [0, 1]."""
    cover = np.zeros(shape, dtype=np.uint8)
    for poly in polygons:
        fixed = np.round((np.asarray(poly) + 0.5) * (1 << _SHIFT) - 0.5).astype(np.int32)
        cv2.fillPoly(cover, [fixed.reshape(-1, 1, 2)], 255, cv2.LINE_AA, _SHIFT)
    return cover.astype(np.float32) / 255.0


def _inside(points: np.ndarray | None, polygons: list[np.ndarray]) -> np.ndarray:
    """Which points (NaN rows never) lie inside or on one of the polygons."""
    if points is None:
        return np.zeros(0, dtype=bool)
    hidden = np.zeros(len(points), dtype=bool)
    contours = [np.asarray(p, dtype=np.float32).reshape(-1, 1, 2) for p in polygons]
    for i, (x, y) in enumerate(np.asarray(points, dtype=np.float64).tolist()):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        hidden[i] = any(cv2.pointPolygonTest(c, (x, y), False) >= 0 for c in contours)
    return hidden


def _composite(image: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``layer`` over ``image`` with per-pixel opacity ``alpha`` (H x W)."""
    a = alpha[..., None]
    out = image.astype(np.float32) * (1 - a) + np.clip(layer, 0, 255).astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's x and y (float32, H x W, read-only): built once per crop size, not per occluder."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _frame_coords(shape: tuple[int, int], origin: np.ndarray, u: np.ndarray,
                  v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's coordinates (along u, along v) relative to ``origin``: for shading and patterns."""
    xs, ys = _pixel_grid(int(shape[0]), int(shape[1]))
    dx, dy = xs - origin[0], ys - origin[1]
    return dx * u[0] + dy * u[1], dx * v[0] + dy * v[1]


def _line(img: np.ndarray, p: np.ndarray, q: np.ndarray, colour, thickness: int) -> None:
    scale = 1 << _SHIFT
    a = tuple(int(round(c * scale)) for c in p)
    b = tuple(int(round(c * scale)) for c in q)
    cv2.line(img, a, b, tuple(float(c) for c in colour), max(1, thickness), cv2.LINE_AA, _SHIFT)


# -- occluders --------------------------------------------------------------------------------------

def draw_mask(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A face mask over the lower half of the nose, the mouth and the chin, following the jaw line.

    Medical (light blue, white or grey with pleats and ear loops) or cloth (a random colour, solid,
    striped or dotted). Nothing is drawn without landmarks.
    """
    img, pts = _check(image, points)
    face = face_shape68(pts, point_set)
    if face is None:
        return img.copy(), _no_hidden(pts)
    _, _, u, v, iod = _eye_frame(face)
    nose_tip = face[30]
    # The lower edge follows the jaw (points 1..15) pushed outward from the nose tip, so that it sits
    # just beyond the face contour and under the chin; the upper edge crosses the nose between
    # points 28 and 29 and runs to the cheeks.
    grow = rng.uniform(1.03, 1.10)
    jaw = nose_tip + (face[1:16] - nose_tip) * grow
    top = face[28] + (face[29] - face[28]) * rng.uniform(0.3, 1.0) - v * 0.02 * iod
    cheek_left = (jaw[0] + top) / 2 - v * rng.uniform(0.0, 0.06) * iod
    cheek_right = (jaw[-1] + top) / 2 - v * rng.uniform(0.0, 0.06) * iod
    polygon = np.vstack([jaw, cheek_right, top, cheek_left])

    h, w = img.shape[:2]
    along, down = _frame_coords((h, w), nose_tip, u, v)
    medical = rng.random() < 0.5
    if medical:
        colour = _MEDICAL[rng.integers(len(_MEDICAL))] + rng.uniform(-8, 8, size=3)
    else:
        colour = rng.uniform(20, 235, size=3)
    layer = np.broadcast_to(colour, (h, w, 3)).astype(np.float32).copy()
    if medical:  # pleats: darker lines across the mask, parallel to the eye line
        chin = float(np.dot(jaw[7] - nose_tip, v))
        for f in (0.2, 0.45, 0.7):
            level = nose_tip + v * (f * chin)
            _line(layer, level - u * 2 * iod, level + u * 2 * iod, colour * 0.8, round(0.03 * iod))
    else:
        pattern = rng.integers(3)  # 0 solid, 1 stripes, 2 dots
        second = rng.uniform(20, 235, size=3)
        period = iod * rng.uniform(0.15, 0.3)
        if pattern == 1:
            direction = along if rng.random() < 0.5 else down
            layer[np.mod(direction, period) < period / 2] = second
        elif pattern == 2:
            du, dv = np.mod(along, period) - period / 2, np.mod(down, period) - period / 2
            layer[du ** 2 + dv ** 2 < (period * 0.25) ** 2] = second
    # Shading: darker towards the sides, where the mask turns away from the camera.
    layer *= (1.0 - 0.25 * np.clip(np.abs(along) / (1.2 * iod), 0, 1) ** 2)[..., None]
    out = _composite(img, layer, _coverage((h, w), [polygon]))
    if medical:  # ear loops from the mask's corners towards the ears
        loop = tuple(np.clip(colour * 1.05, 0, 255))
        for corner, low, ear in ((jaw[0], jaw[3], face[0]), (jaw[-1], jaw[-4], face[16])):
            _line(out, corner, ear, loop, round(0.02 * iod))
            _line(out, low, ear, loop, round(0.02 * iod))
    return out, _inside(pts, [polygon])


def draw_sunglasses(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark lenses (ellipses or rounded rectangles) over both eyes, a bridge and the arms.

    Nothing is drawn without landmarks.
    """
    img, pts = _check(image, points)
    face = face_shape68(pts, point_set)
    if face is None:
        return img.copy(), _no_hidden(pts)
    left, right, u, v, iod = _eye_frame(face)
    a = iod * rng.uniform(0.30, 0.40)  # lens half-width (an eye is about 0.2 iod from its centre to a corner)
    b = a * rng.uniform(0.65, 0.9)
    exponent = 2.0 if rng.random() < 0.5 else rng.uniform(3.5, 6.0)
    lift = v * iod * rng.uniform(-0.06, 0.02)
    lenses = [_superellipse(c + lift, a, b, u, v, exponent) for c in (left, right)]
    bar = max(1.0, 0.05 * iod)
    bridge_y = -v * b * 0.35
    bridge = _quad(left + lift + u * a * 0.9 + bridge_y, right + lift - u * a * 0.9 + bridge_y, bar)
    # Arms towards the ears, stopping short of the face contour (they pass behind it).
    arms = [_quad(left + lift - u * a * 0.95 - v * b * 0.4, left + (face[0] - left) * 0.85 - v * b * 0.4, bar),
            _quad(right + lift + u * a * 0.95 - v * b * 0.4, right + (face[16] - right) * 0.85 - v * b * 0.4, bar)]
    polygons = lenses + [bridge] + arms

    h, w = img.shape[:2]
    base = rng.uniform(8, 45) + rng.uniform(-10, 10, size=3)
    _, down = _frame_coords((h, w), (left + right) / 2 + lift, u, v)
    # A faint sheen at the top of the lenses.
    sheen = np.clip(-down / (b + 1e-6), 0, 1) * rng.uniform(15, 45)
    layer = base[None, None, :] + sheen[..., None]
    opacity = rng.uniform(0.88, 1.0)
    out = _composite(img, layer, _coverage((h, w), polygons) * opacity)
    return out, _inside(pts, polygons)


def draw_hand(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A hand (skin tone with finger gaps) or an object (a random colour) over a random part of the face.

    The blob is an ellipse or a random convex polygon centred near a random point of the face; a
    crop without landmarks gets it at a random place of its central region, sized by the crop.
    """
    img, pts = _check(image, points)
    h, w = img.shape[:2]
    face = face_shape68(pts, point_set)
    if face is not None:
        _, _, _, _, iod = _eye_frame(face)
        centre = face[rng.integers(len(face))] + rng.normal(0, 0.15 * iod, size=2)
        a = iod * rng.uniform(0.45, 0.9)
    else:
        centre = np.array([w, h], dtype=np.float64) * rng.uniform(0.2, 0.8, size=2)
        a = min(h, w) * rng.uniform(0.12, 0.3)
    b = a * rng.uniform(0.4, 0.9)
    angle = rng.uniform(0, np.pi)
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-u[1], u[0]])
    if rng.random() < 0.5:
        polygon = _superellipse(centre, a, b, u, v, 2.0)
    else:
        t = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(6, 10))))
        r = rng.uniform(0.7, 1.0, size=len(t))
        raw = centre + (r * a * np.cos(t))[:, None] * u + (r * b * np.sin(t))[:, None] * v
        polygon = cv2.convexHull(raw.astype(np.float32)).reshape(-1, 2).astype(np.float64)

    skin = rng.random() < 0.7
    colour = (_SKIN[rng.integers(len(_SKIN))] + rng.uniform(-12, 12, size=3)) if skin else rng.uniform(0, 255, size=3)
    along, across = _frame_coords((h, w), centre, u, v)
    # Light from one side of the blob, darker on the other.
    shade = 1.0 + 0.15 * np.clip(across / b, -1, 1) * (1 if rng.random() < 0.5 else -1)
    layer = colour[None, None, :] * shade[..., None]
    if skin:  # finger gaps: three dark lines along the long axis, over the outer half
        for f in (-0.45, 0.0, 0.45):
            start = centre + v * f * b
            _line(layer, start, start + u * a * 1.2, colour * 0.7, round(0.04 * a + 0.5))
    out = _composite(img, layer, _coverage((h, w), [polygon]))
    return out, _inside(pts, [polygon])


# -- photometric degradations -----------------------------------------------------------------------

def greyscale(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The crop in grey (three equal channels), as from a monochrome or infrared camera."""
    img, pts = _check(image, points)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), _no_hidden(pts)


def low_light(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dark exposure: gamma 1.5..3 (shadows sink) and gain 0.3..0.8."""
    img, pts = _check(image, points)
    gamma, gain = rng.uniform(1.5, 3.0), rng.uniform(0.3, 0.8)
    table = np.clip(255.0 * gain * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(img, table), _no_hidden(pts)


def blur(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Out of focus (Gaussian, sigma 1..3% of the crop side) or moving (a line kernel of 3..8%, at a
    random angle)."""
    img, pts = _check(image, points)
    side = min(img.shape[:2])
    if rng.random() < 0.5:
        sigma = max(0.5, side * rng.uniform(0.01, 0.03))
        return cv2.GaussianBlur(img, (0, 0), sigma), _no_hidden(pts)
    length = max(2.0, side * rng.uniform(0.03, 0.08))
    k = int(np.ceil(length)) | 1
    kernel = np.zeros((k, k), dtype=np.float32)
    angle = rng.uniform(0, np.pi)
    half = (length - 1) / 2 * np.array([np.cos(angle), np.sin(angle)])
    c = np.array([k // 2, k // 2], dtype=np.float64)
    _line(kernel, c - half, c + half, (1.0,), 1)
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT), _no_hidden(pts)


def noise(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sensor noise: Gaussian, sigma 4..20 grey levels, per pixel and channel."""
    img, pts = _check(image, points)
    sigma = rng.uniform(4, 20)
    noisy = img.astype(np.float32) + rng.normal(0, sigma, size=img.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8), _no_hidden(pts)


def jpeg(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Re-encoded as JPEG at quality 5..35: blocks, ringing and smeared colour."""
    img, pts = _check(image, points)
    quality = int(rng.integers(5, 36))
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("occlusion: OpenCV could not encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), _no_hidden(pts)


OCCLUDERS: dict[str, Occlusion] = {"mask": draw_mask, "sunglasses": draw_sunglasses, "hand": draw_hand}
PHOTOMETRIC: dict[str, Occlusion] = {"greyscale": greyscale, "low_light": low_light, "blur": blur,
                                     "noise": noise, "jpeg": jpeg}
#: Every option in the order :func:`apply_occlusions` runs them.
OCCLUSIONS: dict[str, Occlusion] = {**OCCLUDERS, **PHOTOMETRIC}


def apply_occlusions(image: np.ndarray, points: np.ndarray | None, point_set: PointSet | str | None,
                     rng: np.random.Generator,
                     probabilities: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Each option of ``probabilities`` (names of :data:`OCCLUSIONS`) applied with its probability.

    Returns the crop, the points hidden by any occluder and whether an occluder was painted. An
    option at 0 draws no random number, so switching options off leaves other draws unchanged.
    """
    bad = [k for k in probabilities if k not in OCCLUSIONS]
    if bad:
        raise ValueError(f"unknown occlusion option(s) {bad}; choose from {', '.join(OCCLUSIONS)}")
    for key, p in probabilities.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"occlusion option {key!r} is a probability in [0, 1], got {p}")
    img, pts = _check(image, points)
    hidden = _no_hidden(pts)
    painted = False
    for key, fn in OCCLUSIONS.items():
        p = float(probabilities.get(key, 0.0))
        if p <= 0 or rng.random() >= p:
            continue
        before = img
        img, covered = fn(img, pts, point_set, rng)
        hidden |= covered
        painted |= key in OCCLUDERS and not np.array_equal(img, before)  # a face occluder without points draws nothing
    return img, hidden, painted
