"""68-point pseudo-labels from dlib's shape predictor for faces that lack them (issue 27, item 4).

The pool's 68-point faces are 300-W's training faces alone (about 2,500 after the validation
split); MTFL, UTKFace and FairFace hold some 25,000 more faces with five points or none. dlib's
68-point predictor (an ensemble of regression trees trained on iBUG 300-W; 3.0% NME on 300-W's
common test) labels them, and the fine landmark network trains on both (``configs/stage2-fine.yaml``,
docs/training.md). What the script does:

1. **calibrates** dlib's convention against 300-W's annotations as distributed: dlib on the 300-W
   training faces given here (``--calibrate``), the mean offset of its points from the annotation
   in pixels (one (x, y) for all points), added to every pseudo-label;
2. **labels** each training face of each ``--source``: dlib's HOG detector (no upsampling, then once
   upsampled when nothing is found) picks the box that holds the face (the box holding the face's
   five annotated points' centre, else the largest box whose centre lies in the image's middle half)
   and the predictor gives its 68 points (``--mirror``: the mean of them and of its points on the mirror
   image). A face with five annotated points is **kept only when
   dlib's five agree with them** (NME <= ``--max-five-nme``, eye-centre distance); faces in the
   validation split (``hyperface.data.splits``, the same hash as ``prepare`` and ``evaluate``) are
   never labelled, so no validation face enters training;
3. **writes** one ``.pts`` file (300-W's format) per kept face beside a link to its image, named
   ``NNNNNN_<name>``, one folder per source: ``pts:OUT/mtfl`` is a dataset for ``hyperface prepare``.

dlib's model carries 300-W's licence terms (non-commercial research), as the bundled weights do; it
is named in the model card. Run it with an interpreter that has dlib (``benchmarks/peers-requirements.txt``)
and hyperface's source on the path::

    PYTHONPATH=src PEERS/bin/python benchmarks/pseudo_labels_dlib.py --predictor shape_predictor_68_face_landmarks.dat \\
        --calibrate pts:../shared/data/300w/lfpw/trainset --source "mtfl:../shared/data/mtfl?split=training" \\
        --source utkface:../shared/data/utkface --source fairface:../shared/data/fairface --out pseudo --workers 2

It prints, per source, the faces seen, labelled, kept, and the kept faces' five-point agreement.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path

import cv2
import numpy as np

from hyperface.data.readers import open_dataset
from hyperface.data.readers.pts import numbered_stem, write_pts
from hyperface.data.splits import DEFAULT_VAL_FRACTION, split_of
from hyperface.points import get_point_set, to_five

_MODEL: tuple | None = None  # (detector, predictor, mirror) of this worker process
_FLIP68 = list(get_point_set("ibug68").flip_permutation)  # a mirrored face's points, left and right swapped


def _init(predictor_path: str, mirror: bool = False) -> None:
    global _MODEL
    import dlib

    _MODEL = (dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor_path), mirror)


def _predict(predictor, rgb: np.ndarray, box, mirror: bool) -> np.ndarray:
    """dlib's 68 points (68, 2) in ``box``; with ``mirror`` the mean of them and of its points on the mirror
    image (mirrored back, left and right points swapped): on 300-W faces its NME falls from 3.24% to 3.15%
    (docs/training.md, "The fine network: the pipeline's own alignment, mirrored teacher labels, ...", where
    the fine network trained on such labels is measured)."""
    import dlib

    points = np.array([[p.x, p.y] for p in predictor(rgb, box).parts()], dtype=np.float64)
    if not mirror:
        return points
    w = rgb.shape[1]
    flipped_box = dlib.rectangle(w - 1 - box.right(), box.top(), w - 1 - box.left(), box.bottom())
    shape = predictor(np.ascontiguousarray(rgb[:, ::-1]), flipped_box)
    flipped = np.array([[w - 1 - p.x, p.y] for p in shape.parts()], dtype=np.float64)
    return (points + flipped[_FLIP68]) / 2


def _box_of(rects, centre: np.ndarray | None, shape: tuple[int, int]):
    """The detection that holds the face: around ``centre`` (the annotated points' centre) when known,
    else the largest whose centre lies in the image's middle half."""
    h, w = shape
    best, area = None, 0.0
    for r in rects:
        x0, y0, x1, y1 = r.left(), r.top(), r.right(), r.bottom()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        inside = (x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1) if centre is not None else (
            w / 4 <= cx <= 3 * w / 4 and h / 4 <= cy <= 3 * h / 4)
        if inside and (x1 - x0) * (y1 - y0) > area:
            best, area = r, float((x1 - x0) * (y1 - y0))
    return best


def label(job: tuple[str, np.ndarray | None]) -> np.ndarray | None:
    """dlib's 68 points (68, 2) of the face in image ``path`` (its annotated five points, or None), or None."""
    path, five = job
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    detector, predictor, mirror = _MODEL
    centre = None if five is None else np.nanmean(five, axis=0)
    for upsample in (0, 1):
        box = _box_of(detector(rgb, upsample), centre, rgb.shape[:2])
        if box is not None:
            return _predict(predictor, rgb, box, mirror)
    return None


def five_nme(points68: np.ndarray, five: np.ndarray) -> float:
    """Mean distance of dlib's five points (from its 68) to the annotated five, over the eye-centre distance."""
    pred = to_five(points68, "ibug68")
    ok = ~np.isnan(five).any(axis=1)
    return float(np.linalg.norm(pred[ok] - five[ok], axis=1).mean() / np.linalg.norm(five[1] - five[0]))


def training_faces(spec: str, val_fraction: float, limit: int | None = None):
    """(image path, face record) of each training face of ``spec`` whose image holds one face (the first
    ``limit`` images); faces of the validation split (the hash ``prepare`` and ``evaluate`` share) never."""
    for n, record in enumerate(open_dataset(spec)):
        if limit is not None and n >= limit:
            return
        if split_of(record.group, val_fraction) or len(record.faces) != 1:
            continue
        yield str(record.image), record.faces[0]


def faces(spec: str, val_fraction: float, limit: int | None = None):
    """(image path, annotated five points or None, 68 points or None) of each training face of ``spec``
    whose image holds one face (the first ``limit``)."""
    for path, face in training_faces(spec, val_fraction, limit):
        if face.landmarks is not None and face.point_set == "ibug68":
            yield path, to_five(face.landmarks, "ibug68"), face.landmarks
        elif face.landmarks is not None and face.point_set == "five":
            yield path, np.asarray(face.landmarks, dtype=np.float64), None
        else:
            yield path, None, None


def source_folders(specs: list[str], out: Path) -> list[Path]:
    """One output folder per source, named by its format (``pts:OUT/mtfl``); two of one format get a suffix."""
    names = [spec.split(":", 1)[0].split("=")[-1] for spec in specs]
    return [out / (name if names.count(name) == 1 else f"{name}-{k}") for k, name in enumerate(names)]


def write_face(folder: Path, index: int, image: str, points: np.ndarray) -> None:
    """Face ``index``'s points as ``NNNNNN_<name>.pts`` beside a link to its image, in ``folder``."""
    stem = numbered_stem(index, image)
    link = folder / f"{stem}{Path(image).suffix}"
    if not link.exists():
        link.symlink_to(Path(image).resolve())
    write_pts(folder / f"{stem}.pts", points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictor", required=True, help="dlib's shape_predictor_68_face_landmarks.dat")
    ap.add_argument("--calibrate", action="append", default=[], help="FORMAT:PATH with 300-W's 68 points")
    ap.add_argument("--source", action="append", required=True, help="FORMAT:PATH to label (repeatable)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-five-nme", type=float, default=0.10,
                    help="keep a face with five annotated points only when dlib's agree within this NME")
    ap.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="images per dataset (a quick look)")
    ap.add_argument("--mirror", action="store_true",
                    help="label each face as the mean of dlib's points on it and on its mirror image")
    args = ap.parse_args()
    with mp.Pool(args.workers, initializer=_init, initargs=(args.predictor, args.mirror)) as pool:
        offset = np.zeros(2)
        if args.calibrate:
            jobs = [(p, f, lm) for spec in args.calibrate for p, f, lm in faces(spec, args.val_fraction, args.limit)]
            got = pool.map(label, [(p, f) for p, f, _ in jobs], chunksize=16)
            diffs = [pred - lm for (_, _, lm), pred in zip(jobs, got) if pred is not None]
            if not diffs:
                raise SystemExit(f"--calibrate: dlib found none of the {len(jobs)} faces of {args.calibrate}")
            offset = -np.mean([d.mean(axis=0) for d in diffs], axis=0)
            print(f"calibration: {len(diffs)} of {len(jobs)} 300-W faces; dlib's points + ({offset[0]:.3f}, "
                  f"{offset[1]:.3f}) px = the annotation's convention")
        for spec, folder in zip(args.source, source_folders(args.source, args.out)):
            folder.mkdir(parents=True, exist_ok=True)
            jobs = list(faces(spec, args.val_fraction, args.limit))
            got = pool.map(label, [(p, f) for p, f, _ in jobs], chunksize=16)
            kept, agreement, found = 0, [], 0
            for i, ((path, five, _), pred) in enumerate(zip(jobs, got)):
                if pred is None:
                    continue
                found += 1
                pred = pred + offset
                if five is not None:
                    nme = five_nme(pred, five)
                    if not nme <= args.max_five_nme:
                        continue
                    agreement.append(nme)
                write_face(folder, i, path, pred)
                kept += 1
            five_text = (f"; five-point agreement of the kept faces {100 * np.mean(agreement):.2f}% (median "
                         f"{100 * np.median(agreement):.2f}%)" if agreement else "")
            print(f"{spec}: {len(jobs)} training faces, {found} found by dlib, {kept} kept -> pts:{folder}{five_text}")


if __name__ == "__main__":
    main()
