"""Contact sheet of prepared samples with their labels drawn, to check a prepared set by eye.

Each tile: the stored crop; the candidate box (yellow, the centred square of side crop/context);
landmarks of the target point set (green; red where labelled invisible) or, where only those are
labelled, the five points (magenta); a frame coloured by the detection label (green face, red
non-face, grey ignored); below, the label text: face/non-face with the IoU, pose (roll, pitch, yaw
degrees, with its source, else MTFL's pose class) and gender, or a mined hard negative's detector
score.

With ``augment`` (an :class:`~hyperface.train.config.AugmentConfig`) each tile shows instead what
training feeds the network: the candidate box after :func:`~hyperface.train.augment.augment_sample`
with those options (one generator per sample from (seed, index)), e.g. the occluders with the points
they hide in red.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hyperface import fileio
from hyperface.data.records import GENDERS
from hyperface.data.shards import PreparedDataset, relative_to_crop
from hyperface.train.augment import augment_kwargs, augment_sample
from hyperface.train.config import AugmentConfig

__all__ = ["KINDS", "draw_tile", "contact_sheet"]

#: Sample kinds a contact sheet can be limited to.
KINDS = ("face", "nonface", "landmarks")

_GREEN, _RED, _GREY, _YELLOW, _MAGENTA = (40, 200, 60), (220, 50, 40), (150, 150, 150), (240, 210, 40), (230, 60, 230)
_BAND = 30  # text rows under each tile


def draw_tile(sample: dict, info: dict, context: float, tile: int) -> np.ndarray:
    """One RGB tile (tile + text band, tile) for a sample dict of :class:`PreparedDataset`."""
    crop = sample["image"]
    s = crop.shape[0]
    img = cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA if tile < s else cv2.INTER_LINEAR)
    img = np.ascontiguousarray(img)
    k = tile / s
    half = tile / context / 2
    c = tile / 2
    cv2.rectangle(img, (round(c - half), round(c - half)), (round(c + half) - 1, round(c + half) - 1), _YELLOW, 1)

    def points(rel: np.ndarray, mask: np.ndarray, color: tuple, radius: int) -> None:
        px = (relative_to_crop(rel[mask], context, s) + 0.5) * k - 0.5
        for x, y in px:
            cv2.circle(img, (round(x), round(y)), radius, color, -1, lineType=cv2.LINE_AA)

    if sample["landmarks_mask"].any():
        hidden = sample["visibility_mask"] & (sample["visibility"] < 0.5)
        points(sample["landmarks"], sample["landmarks_mask"] & ~hidden, _GREEN, 1)
        points(sample["landmarks"], sample["landmarks_mask"] & hidden, _RED, 1)
    elif sample["landmarks5_mask"].any():
        points(sample["landmarks5"], sample["landmarks5_mask"], _MAGENTA, 2)

    if not sample["detection_mask"]:
        color, label = _GREY, "ignored"
    elif sample["detection"] == 1:
        color, label = _GREEN, "face"
    else:
        color, label = _RED, "non-face"
    cv2.rectangle(img, (0, 0), (tile - 1, tile - 1), color, 2)
    band = np.full((_BAND, tile, 3), 255, dtype=np.uint8)
    line1 = f"{label} {info['iou']:.2f}"
    if sample["gender_mask"]:
        line1 += " " + ("M" if GENDERS[int(sample["gender"])] == "male" else "F")
    line2 = ""
    if sample["pose_mask"]:
        r, p, y = (round(float(v)) for v in sample["pose"])
        line2 = f"r{r} p{p} y{y} {info['pose_source']}"
    elif sample.get("pose_class", 0):  # MTFL's 5-way class (1 left profile .. 5 right profile)
        line2 = f"pose class {int(sample['pose_class'])}"
    elif info.get("score") is not None:  # a hard negative (prepare --mode hard-negatives)
        line2 = f"detector {info['score']:.2f}"
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, tile / 420)
    cv2.putText(band, line1, (2, 12), font, scale, color if color != _GREY else (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(band, line2, (2, 26), font, scale, (30, 30, 30), 1, cv2.LINE_AA)
    return np.concatenate([img, band], axis=0)


def contact_sheet(roots: str | Path | Sequence[str | Path], out: str | Path, *, n: int = 64,
                  split: str | None = "val", seed: int = 0, tile: int = 160, columns: int = 0,
                  augment: AugmentConfig | None = None, only: str | None = None) -> dict:
    """Draw ``n`` random samples of a prepared set into one image file ``out`` (written atomically),
    after the training augmentation ``augment`` when given; ``only`` (:data:`KINDS`) draws them from
    the faces, the non-faces or the samples with landmarks alone.

    Returns ``{"path", "samples", "width", "height", "bytes"}``.
    """
    ds = PreparedDataset(roots, split=split)
    if len(ds) == 0:
        raise ValueError(f"no samples in split {split!r} of {roots}")
    if n < 1 or tile < 32:
        raise ValueError("need n >= 1 and tile >= 32")
    pool = np.arange(len(ds))
    if only is not None:
        if only not in KINDS:
            raise ValueError(f"only={only!r}: choose from {', '.join(KINDS)}")
        rows = ds.labels()
        keep = {"face": rows["detection_mask"] & (rows["detection"] == 1),
                "nonface": rows["detection_mask"] & (rows["detection"] == 0),
                "landmarks": rows["landmarks_mask"].any(axis=1)}[only]
        pool = np.flatnonzero(keep)
        if len(pool) == 0:
            raise ValueError(f"no {only} samples in split {split!r} of {roots}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
    if augment is None:
        tiles = [draw_tile(ds[int(i)], ds.info(int(i)), ds.context, tile) for i in idx]
    else:
        kwargs = augment_kwargs(augment)
        tiles = [draw_tile(augment_sample(ds[int(i)], np.random.default_rng([seed, int(i)]), context=ds.context,
                                          out_size=ds.crop_size, point_set=ds.point_set, **kwargs),
                           ds.info(int(i)), 1.0, tile) for i in idx]
    cols = columns or int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    th, tw = tiles[0].shape[:2]
    sheet = np.full((rows * (th + 4) + 4, cols * (tw + 4) + 4, 3), 235, dtype=np.uint8)
    for j, t in enumerate(tiles):
        r, c = divmod(j, cols)
        y, x = 4 + r * (th + 4), 4 + c * (tw + 4)
        sheet[y:y + th, x:x + tw] = t
    out = Path(out)
    suffix = out.suffix.lower() or ".png"
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if suffix == ".png" else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"{out}: cannot encode an image with suffix {suffix!r} (use .png or .jpg)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_bytes(out, data.tobytes())
    return {"path": str(out), "samples": len(tiles), "width": sheet.shape[1], "height": sheet.shape[0],
            "bytes": len(data)}
