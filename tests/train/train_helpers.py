"""Helpers of the training tests: tiny prepared sets made with the real ``prepare`` code, a tiny model.

The faces are drawn: a skin-coloured ellipse with dark eyes, brows, nose and mouth placed at the
annotated 68 points, randomly scaled, moved and rolled, so that landmarks (and the PnP pose the
prepare step derives from them) can be learned from the pixels. Written as iBUG ``.pts`` folders,
then prepared like any dataset.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

TINY_ARCH = "hyperface-compact"
TINY_KWARGS = {"input_size": 32, "width": 0.25, "fc_channels": 32, "branch_channels": 16, "dropout": 0.0}


def template68() -> np.ndarray:
    """A frontal iBUG-68 layout in a unit face box centred at 0 (x right, y down)."""
    pts = []
    for t in np.linspace(math.pi, 0, 17):  # jaw, image left to right through the chin
        pts.append((0.45 * math.cos(t), 0.05 + 0.45 * math.sin(t)))
    for side in (-1, 1):  # brows 17-21 (left), 22-26 (right), each from outer to inner on the left
        xs = np.linspace(-0.35, -0.08, 5) if side < 0 else np.linspace(0.08, 0.35, 5)
        pts += [(x, -0.22 - 0.04 * math.sin(math.pi * (i / 4))) for i, x in enumerate(xs)]
    pts += [(0.0, y) for y in np.linspace(-0.12, 0.08, 4)]  # nose bridge 27-30
    pts += [(x, 0.13) for x in np.linspace(-0.08, 0.08, 5)]  # nose base 31-35
    for cx in (-0.2, 0.2):  # eyes 36-41, 42-47: corners and lids
        for t in np.linspace(math.pi, -math.pi, 7)[:6]:
            pts.append((cx + 0.08 * math.cos(t), -0.1 - 0.03 * math.sin(t)))
    for t in np.linspace(math.pi, -math.pi, 13)[:12]:  # outer mouth 48-59 from the left corner
        pts.append((0.18 * math.cos(t), 0.27 - 0.06 * math.sin(t)))
    for t in np.linspace(math.pi, -math.pi, 9)[:8]:  # inner mouth 60-67
        pts.append((0.12 * math.cos(t), 0.27 - 0.03 * math.sin(t)))
    out = np.array(pts, dtype=np.float64)
    assert out.shape == (68, 2)
    return out


def draw_faces(folder: Path, count: int, seed: int = 0, size: int = 96) -> list[Path]:
    """``count`` images with one drawn face each and their ``.pts`` files; returns the image paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    template = template68()
    paths = []
    for i in range(count):
        img = np.full((size, size, 3), rng.integers(40, 200, size=3), dtype=np.uint8)
        img = np.clip(img.astype(np.int16) + rng.integers(-20, 20, size=(size, size, 3)), 0, 255).astype(np.uint8)
        side = rng.uniform(0.45, 0.65) * size
        centre = size / 2 + rng.uniform(-0.1, 0.1, size=2) * size
        angle = rng.uniform(-0.3, 0.3)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pts = template @ rot.T * side + centre
        axes = (int(0.47 * side), int(0.55 * side))
        cv2.ellipse(img, (int(centre[0]), int(centre[1])), axes, math.degrees(angle), 0, 360, (205, 160, 130), -1)
        ink = (40, 25, 20)
        for group in ((17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60), (60, 68)):
            poly = pts[group[0]:group[1]].round().astype(np.int32)
            closed = group[0] in (36, 42, 48, 60)
            cv2.polylines(img, [poly], closed, ink, 1 if group[0] < 36 else 2, cv2.LINE_AA)
        cv2.polylines(img, [pts[0:17].round().astype(np.int32)], False, (120, 80, 60), 1, cv2.LINE_AA)
        path = folder / f"face_{i:03d}.png"
        cv2.imwrite(str(path), img[:, :, ::-1])
        lines = ["version: 1", "n_points: 68", "{"] + [f"{x:.3f} {y:.3f}" for x, y in pts] + ["}"]
        path.with_suffix(".pts").write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def draw_non_faces(folder: Path, count: int, seed: int = 1, size: int = 64) -> None:
    """Face-free images: noise and random rectangles."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
        for _ in range(3):
            x0, y0 = rng.integers(0, size - 8, size=2)
            cv2.rectangle(img, (int(x0), int(y0)), (int(x0) + 12, int(y0) + 9), rng.integers(0, 255, 3).tolist(), -1)
        cv2.imwrite(str(folder / f"bg_{i:03d}.png"), img)


def prepare_folder(sources: list[str], out: Path, **options) -> Path:
    """Run the real prepare step with small, fast options."""
    from hyperface.data.prepare import PrepareOptions, prepare

    defaults = dict(crop_size=40, context=1.25, ss_mode="none", positives_per_face=3, partials_per_face=1,
                    negatives_per_face=2, negatives_per_image=4, val_fraction=0.25, images_per_shard=8)
    defaults.update(options)
    prepare(sources, out, PrepareOptions(**defaults), progress=False)
    return out


def tiny_config(prepared: dict[str, Path], out_dir: Path, /, **sections) -> dict:
    """Plain config data for a tiny CPU run; ``sections`` update sections key by key."""
    cfg = {
        "run": {"out_dir": str(out_dir), "name": "tiny", "progress": False, "log_every": 1, "tensorboard": False,
                "seed": 0},
        "data": {"train": [str(prepared["faces"])], "num_workers": 0, "max_train_samples": 48, "max_val_samples": 32},
        "augment": {"flip": 0.5, "scale": 0.05, "shift": 0.03},
        "model": {"arch": TINY_ARCH, "tasks": ["detection", "landmarks", "pose"], "arch_kwargs": dict(TINY_KWARGS)},
        "optim": {"epochs": 2, "batch_size": 16, "lr": 0.003, "scheduler": "constant", "weight_decay": 0.0},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg
