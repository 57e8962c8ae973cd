"""Augmentation cost per crop on one core: the training set's augmentation of stage-two crops, and the
two ways to warp and colour a batch (OpenCV per crop, or one torch op per batch). Prints markdown tables.

    python benchmarks/augment_speed.py --prepared data/aligned
    python benchmarks/augment_speed.py --prepared data/aligned --baseline 2b39105

The first table times ``TrainingSet[i]`` (read, flip, scale / shift / rotation, colour, resize to 96 px,
label bookkeeping) with the stage-two recipe's options, without and with its occluders and
self-occlusion, plus stacking into a batch of 64. ``--baseline REV`` times the same with the code of
git revision REV (in a fresh process). The second table times the pixel work alone on a batch of 64
random 120 px crops: ``cv2.warpAffine`` per crop against ``affine_grid`` + ``grid_sample`` on the batch,
and ``cv2.transform`` (a 3 x 4 colour map) per crop against a batched matrix product in torch. One
thread everywhere (a loader works on one core); best of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hyperface.data.shards import PreparedDataset
from hyperface.train.config import AugmentConfig
from hyperface.train.data import TrainingSet, collate, select_indices

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import extract_revision  # noqa: E402

RECIPE = dict(flip=0.5, scale=0.1, shift=0.04, rotate=15, brightness=0.3, contrast=0.3, saturation=0.3)
OCCLUSION = dict(mask=0.15, sunglasses=0.1, hand=0.15, greyscale=0.05, low_light=0.05, blur=0.1, noise=0.05,
                 jpeg=0.1, self_occlusion=15)
BATCH = 64


def best_of(fn, rounds: int) -> float:
    """Seconds of the fastest of ``rounds`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_training_set(prepared: Path, rounds: int, crops: int) -> dict[str, float]:
    """ms per crop of the training set's augmentation (and collation), plain and with occluders."""
    ds = PreparedDataset(prepared, split="train")
    idx = select_indices(ds, oversample={"landmarks": 16.0, "landmarks5": 1.0, "gender": 0.8}, max_samples=60000)
    pick = np.random.default_rng(0).choice(idx, crops)
    out = {}
    for name, options in (("recipe", RECIPE), ("recipe + occluders", {**RECIPE, **OCCLUSION})):
        ts = TrainingSet([(ds, pick)], input_size=96, num_points=ds.num_points, point_set=ds.point_set,
                         augment=AugmentConfig(**options))

        def run() -> None:
            for start in range(0, crops, BATCH):
                collate([ts[(0, i)] for i in range(start, min(crops, start + BATCH))])

        out[name] = 1e3 * best_of(run, rounds) / crops
    return out


def time_kernels(rounds: int) -> list[tuple[str, float, float]]:
    """(step, ms per crop with OpenCV per crop, ms per crop with one torch op per batch)."""
    rng = np.random.default_rng(0)
    side, out = 120, 96
    crops = rng.integers(0, 256, (BATCH, side, side, 3), dtype=np.uint8)
    angles = np.radians(rng.uniform(-15, 15, BATCH))
    scales = rng.uniform(0.9, 1.1, BATCH) / 1.25
    theta = np.zeros((BATCH, 2, 3), np.float32)  # normalised coordinates, output -> crop
    theta[:, 0, 0], theta[:, 0, 1] = scales * np.cos(angles), -scales * np.sin(angles)
    theta[:, 1, 0], theta[:, 1, 1] = scales * np.sin(angles), scales * np.cos(angles)
    theta[:, :, 2] = rng.uniform(-0.05, 0.05, (BATCH, 2))
    pixel = []  # the same maps in pixels, for cv2.warpAffine's inverse map
    for t in theta.astype(np.float64):
        lin = side / out * t[:, :2]
        pixel.append(np.column_stack([lin, side / 2 * (t[:, :2] @ np.full(2, 1 / out - 1) + t[:, 2] + 1) - 0.5]))
    warped = np.empty((BATCH, out, out, 3), np.uint8)

    def cv2_warp() -> None:
        for i in range(BATCH):
            cv2.warpAffine(crops[i], pixel[i], (out, out), dst=warped[i],
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)

    crops_t, theta_t = torch.from_numpy(crops), torch.from_numpy(theta)

    def torch_warp() -> None:
        x = crops_t.permute(0, 3, 1, 2).float()
        grid = F.affine_grid(theta_t, [BATCH, 3, out, out], align_corners=False)
        F.grid_sample(x, grid, align_corners=False).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    maps = rng.uniform(0.5, 1.2, (BATCH, 3, 4))
    coloured = np.empty_like(warped)
    cv2_warp()

    def cv2_colour() -> None:
        for i in range(BATCH):
            cv2.transform(warped[i], maps[i], dst=coloured[i])

    warped_t, maps_t = torch.from_numpy(warped), torch.from_numpy(maps).float()

    def torch_colour() -> None:
        y = warped_t.permute(0, 3, 1, 2).reshape(BATCH, 3, -1).float()
        z = torch.baddbmm(maps_t[:, :, 3:], maps_t[:, :, :3], y)
        z.round_().clamp_(0, 255).to(torch.uint8).reshape(BATCH, 3, out, out).permute(0, 2, 3, 1).contiguous()

    ms = lambda fn: 1e3 * best_of(fn, rounds) / BATCH  # noqa: E731
    return [("warp 120 -> 96 px (bilinear, rotation, scale)", ms(cv2_warp), ms(torch_warp)),
            ("colour map (3 x 4 per crop)", ms(cv2_colour), ms(torch_colour))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, required=True, help="stage two's prepared folder (data/aligned)")
    parser.add_argument("--baseline", help="git revision whose training-set augmentation to time too")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--crops", type=int, default=512)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # the training-set rows only, for --baseline
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.json:
        args.json.write_text(json.dumps(time_training_set(args.prepared, args.rounds, args.crops)))
        return 0
    rows = {"this tree": time_training_set(args.prepared, args.rounds, args.crops)}
    if args.baseline:
        tmp = Path(tempfile.mkdtemp(prefix="hyperface-baseline-"))
        try:
            env = dict(os.environ, PYTHONPATH=str(extract_revision(args.baseline, tmp)))
            subprocess.run([sys.executable, __file__, "--prepared", str(args.prepared), "--rounds", str(args.rounds),
                            "--crops", str(args.crops), "--json", str(tmp / "row.json")], env=env, check=True)
            rows = {args.baseline: json.loads((tmp / "row.json").read_text()), **rows}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nStage-two training-set augmentation, ms per crop on one core (best of {args.rounds} rounds of "
          f"{args.crops} crops, batches of {BATCH} stacked):\n")
    names = list(next(iter(rows.values())))
    print("| code | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for code, row in rows.items():
        print(f"| {code} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |")
    print(f"\nPixel work alone, ms per crop on one core, batch of {BATCH} (torch {torch.__version__}, "
          f"OpenCV {cv2.__version__}):\n")
    print("| step | OpenCV, per crop | torch, one op per batch | torch / OpenCV |")
    print("|---|---|---|---|")
    for step, a, b in time_kernels(args.rounds):
        print(f"| {step} | {a:.3f} | {b:.3f} | {b / a:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
