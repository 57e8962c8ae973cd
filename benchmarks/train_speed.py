"""Training speed on this machine: samples per second of a training step for each architecture, and the
share of the step time spent waiting for the data loader. Prints a markdown table.

    python benchmarks/train_speed.py                        # prepares 16 300-W images from ../shared/data
    python benchmarks/train_speed.py --prepared data/genface --workers 2 --threads 2

It runs the real pipeline: prepared shards -> augmentation in DataLoader workers -> the engine's
train_one_epoch (forward, masked multi-task loss, backward, AdamW step), batch 32 by default, all
tasks an architecture supports, 68 points. The first step (warm-up) is not counted. Large models
take few steps (ResNet-101 needs tens of seconds a step on a CPU).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hyperface.data.shards import PreparedDataset
from hyperface.models import create_model, list_models
from hyperface.train.config import AugmentConfig, OptimConfig
from hyperface.train.data import EpochSampler, TrainingSet, make_loader
from hyperface.train.engine import Meter, TrainStep, train_one_epoch
from hyperface.train.loss import MultiTaskLoss
from hyperface.train.stages import build_optimizer

STEPS = {"hyperface-compact": 8, "hyperface-alexnet": 3, "rcnn-face": 3, "hyperface-resnet": 2}


def prepare_slice(data_root: Path, out: Path, crop_size: int) -> Path:
    """A small prepared set (16 LFPW faces) made with the real prepare code."""
    from hyperface.data.prepare import PrepareOptions, prepare

    src = out.parent / "src"
    if not src.exists():
        src.mkdir(parents=True)
        images = sorted((data_root / "300w" / "lfpw" / "trainset").glob("*.jpg"))[:16]
        if not images:
            sys.exit(f"no 300-W images under {data_root}; pass --prepared DIR or --data-root")
        for image in images:
            shutil.copy(image, src)
            shutil.copy(image.with_suffix(".pts"), src)
    prepare([f"pts:{src}"], out, PrepareOptions(crop_size=crop_size, ss_mode="none", val_fraction=0.0),
            progress=False)
    return out


def measure(arch: str, dataset: PreparedDataset, batch: int, workers: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = create_model(arch, num_points=dataset.num_points, point_set=dataset.point_set)
    criterion = MultiTaskLoss(model.config.tasks, point_set=model.config.point_set)
    train_set = TrainingSet([(dataset, np.arange(len(dataset)))], input_size=model.config.input_size,
                            num_points=dataset.num_points, point_set=dataset.point_set, augment=AugmentConfig())
    sampler = EpochSampler(len(train_set), seed=0)
    loader = make_loader(train_set, sampler, batch_size=batch, num_workers=workers, drop_last=True)
    optimizer = build_optimizer(model, criterion, OptimConfig())
    step_module = TrainStep(model, criterion).train()
    meters = []

    def on_step(step: int, losses: dict, b: dict) -> bool:
        return step >= done_at

    done_at, step, epoch = 1, 0, 0
    # warm-up step, then the measured ones (a new epoch whenever the small set runs out)
    step, _ = train_one_epoch(step_module, optimizer, None, loader, model_config=model.config,
                              device=torch.device("cpu"), meter=Meter(), step=step, on_step=on_step)
    done_at = 1 + steps
    while step < done_at:
        epoch += 1
        sampler.set_epoch(epoch)
        meters.append(Meter())
        step, _ = train_one_epoch(step_module, optimizer, None, loader, model_config=model.config,
                                  device=torch.device("cpu"), meter=meters[-1], step=step,
                                  on_step=on_step)
    step_time = sum(float(m.sums.get("step_time", 0.0)) for m in meters)
    data_time = sum(float(m.sums.get("data_time", 0.0)) for m in meters)
    samples = sum(float(m.sums.get("samples", 0.0)) for m in meters)
    return {"arch": arch, "input": model.config.input_size, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "steps": steps, "samples_per_s": samples / step_time, "step_s": step_time / steps,
            "data_share": data_time / step_time}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, help="a prepared folder to read (default: prepare a small slice)")
    parser.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--arch", nargs="*", default=None, help="architectures (default: all registered)")
    parser.add_argument("--steps", type=int, default=0, help="measured steps per architecture (0: per-arch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    archs = args.arch or list_models()
    tmp = Path(tempfile.mkdtemp(prefix="hyperface-bench-"))
    rows = []
    try:
        for arch in archs:
            size = create_model(arch, num_points=68).config.input_size
            if args.prepared:
                dataset = PreparedDataset(args.prepared, split=None)
            else:  # crops of the model input size times the prepare default context (1.25)
                crop = int(round(size * 1.25))
                folder = tmp / f"crop{crop}"
                if not folder.exists():
                    prepare_slice(args.data_root, folder, crop)
                dataset = PreparedDataset(folder, split=None)
            if len(dataset) < args.batch:
                sys.exit(f"{len(dataset)} samples: fewer than one batch of {args.batch}")
            t0 = time.perf_counter()
            row = measure(arch, dataset, args.batch, args.workers, args.steps or STEPS.get(arch, 3))
            row["crop"] = dataset.crop_size
            rows.append(row)
            print(f"{arch}: {row['samples_per_s']:.1f} samples/s ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nTraining step, batch {args.batch}, {torch.get_num_threads()} torch threads, {args.workers} loader "
          f"workers, CPU ({torch.__version__}):\n")
    print("| architecture | input | stored crop | params (M) | steps | s / step | samples / s | waiting for data |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['input']} | {r['crop']} | {r['params_m']:.1f} | {r['steps']} | {r['step_s']:.2f} | "
              f"{r['samples_per_s']:.1f} | {100 * r['data_share']:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
