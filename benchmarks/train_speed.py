"""Training speed on this machine: samples per second of a training step for each architecture, and the
share of the step time spent waiting for the data loader. Prints a markdown table.

    python benchmarks/train_speed.py                        # prepares 16 300-W images from ../shared/data
    python benchmarks/train_speed.py --prepared data/genface --workers 2 --threads 2
    python benchmarks/train_speed.py --config configs/stage2.yaml --set "data.train=[data/aligned]" --baseline 2b39105
    python benchmarks/train_speed.py --config configs/stage2.yaml --set "data.train=[data/aligned]" --variant run.cpu_amp=true

It runs the real pipeline: prepared shards -> augmentation in DataLoader workers -> the engine's
train_one_epoch (forward, masked multi-task loss, backward, AdamW step), batch 32 by default, all
tasks an architecture supports, 68 points. The first step (warm-up) is not counted. Large models
take few steps (ResNet-101 needs tens of seconds a step on a CPU). The detector's point stage trains
in a loop of its own (``OWN_LOOPS``): its row times that loop's step, batch 256, on random faces.

``--config FILE`` (with ``--set KEY=VALUE`` overrides, as ``hyperface train`` takes them) measures one
training recipe instead: the trainer's own stage (its data mix, augmentation, loader workers, model,
loss, optimiser and schedule, built by ``hyperface.train.build``), ``--steps`` steps (default 30)
after two warm-up steps. ``--baseline REV`` measures the same recipe with the code of git revision
REV too (its ``src`` and ``configs`` extracted to a temporary folder: each revision trains its own
copy of the recipe, with the same ``--set`` overrides), each measurement in a fresh process, old and
new alternating for ``--rounds`` rounds, and prints the median of each and their ratio: on shared
cores only a comparison made in the same run means anything. ``--variant KEY=VALUE`` (repeatable)
compares the recipe with and without those overrides in the same way, with this tree's code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
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


def measure_point_refiner(batch: int, steps: int) -> dict:
    """The detector's point stage trains in a loop of its own (``hyperface train-point-refiner``): its
    real step (crops cut with random boxes from stored faces, the NME loss, backward, AdamW) on random
    stored faces; the data are in memory, so nothing waits for a loader."""
    from hyperface.train.point_refiner import STORE_SIZE, FaceCrops, PointTrainOptions, train_step

    torch.manual_seed(0)
    model = create_model("hyperface-point-refiner").train()
    rng = np.random.default_rng(0)
    faces = FaceCrops(rng.integers(0, 256, (batch, STORE_SIZE, STORE_SIZE, 3), dtype=np.uint8),
                      rng.normal(0, 0.2, (batch, 5, 2)).astype(np.float32))
    stored, targets = torch.from_numpy(faces.crops).permute(0, 3, 1, 2), torch.from_numpy(faces.targets)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opts, gen = PointTrainOptions(), torch.Generator().manual_seed(0)
    times = []
    for _ in range(steps + 1):  # the first is the warm-up
        t = time.perf_counter()
        train_step(model, optimizer, stored, targets, opts, gen)
        times.append(time.perf_counter() - t)
    step_s = sum(times[1:]) / steps
    return {"arch": "hyperface-point-refiner", "input": model.config.input_size, "crop": STORE_SIZE,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "steps": steps,
            "samples_per_s": batch / step_s, "step_s": step_s, "data_share": 0.0}


#: Architectures trained by a loop of their own rather than from prepared crops, and how to measure them.
OWN_LOOPS = {"hyperface-point-refiner": measure_point_refiner}


def measure_recipe(config: Path, overrides: list[str], steps: int) -> dict:
    """Crops per second of ``steps`` training steps of a recipe, built as ``hyperface train`` builds it."""
    from hyperface.train import distributed as D
    from hyperface.train.build import build_stage, set_train_mode
    from hyperface.train.config import load_config
    from hyperface.train.stages import _data_geometry, _main_stage

    cfg = load_config(config, overrides)
    info = D.setup("cpu")
    D.configure_determinism(cfg.run.deterministic, info.device)
    D.seed_everything(cfg.run.seed)
    num_points, point_set = _data_geometry(cfg)
    spec = _main_stage(cfg, Path(tempfile.gettempdir()) / "hyperface-speed", num_points, point_set, None)
    parts = build_stage(spec, cfg, info, None)  # writes nothing: the run folder is never created
    set_train_mode(parts.step_module)
    meter, warm = Meter(), 2
    done_at = warm + steps

    def on_step(step: int, losses: dict, b: dict) -> bool:
        if step == warm:
            meter.sums.clear()
            meter.counts.clear()
        return step >= done_at

    step, epoch = 0, 0
    while step < done_at:
        parts.sampler.set_epoch(epoch)
        step, _ = train_one_epoch(parts.step_module, parts.optimizer, parts.scheduler, parts.loader,
                                  model_config=parts.model.config, device=info.device, meter=meter, step=step,
                                  amp_dtype=parts.amp_dtype, grad_clip=spec.optim.grad_clip, on_step=on_step)
        epoch += 1
    step_time = float(meter.sums["step_time"])
    return {"samples_per_s": float(meter.sums["samples"]) / step_time, "step_s": step_time / steps,
            "data_share": float(meter.sums["data_time"]) / step_time, "batch": spec.optim.batch_size,
            "workers": cfg.data.num_workers, "input": parts.model.config.input_size, "steps": steps}


def extract_revision(rev: str, into: Path) -> Path:
    """The ``src`` (and ``configs``) folders of git revision ``rev`` of this repository, extracted
    under ``into``; returns the ``src`` folder."""
    repo = Path(__file__).resolve().parents[1]
    archive = into / "src.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(repo), "archive", rev, "src", "configs"], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def compare_recipe(args: argparse.Namespace) -> int:
    """The recipe two ways, alternating in fresh processes: with the current code and with
    ``args.baseline``'s, or with and without the overrides of ``args.variant``."""
    tmp = Path(tempfile.mkdtemp(prefix="hyperface-baseline-"))
    try:
        repo = Path(__file__).resolve().parents[1]
        config = args.config.resolve().relative_to(repo)
        # name -> (src folder, recipe file, extra overrides); the first is the ratio's baseline
        trees: dict[str, tuple[Path, Path, list[str]]] = {}
        if args.baseline:
            # each revision with its own code and its own copy of the recipe (a key added since is
            # unknown to the old code), with the same overrides
            old = extract_revision(args.baseline, tmp)
            if not (old.parent / config).is_file():
                sys.exit(f"{config} does not exist at {args.baseline}: compare a recipe both revisions have")
            trees[args.baseline] = (old, old.parent / config, [])
            trees["this tree"] = (repo / "src", repo / config, [])
        else:
            trees["recipe"] = (repo / "src", repo / config, [])
            trees["with " + " ".join(args.variant)] = (repo / "src", repo / config, list(args.variant))
        results: dict[str, list[dict]] = {name: [] for name in trees}
        for r in range(args.rounds):
            for name, (src, recipe, extra) in trees.items():
                out = tmp / f"{r}.json"
                env = dict(os.environ, PYTHONPATH=str(src))
                command = [sys.executable, __file__, "--config", str(recipe), "--steps", str(args.steps),
                           "--threads", str(args.threads), *[f"--set={o}" for o in [*args.set, *extra]],
                           "--json", str(out)]
                subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=repo)
                results[name].append(json.loads(out.read_text()))
                print(f"round {r + 1}, {name}: {results[name][-1]['samples_per_s']:.1f} crops/s", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first = next(iter(results.values()))[0]
    print(f"\nTraining recipe {args.config} {' '.join(args.set)}: batch {first['batch']}, input {first['input']}, "
          f"{first['workers']} loader workers, {args.threads or torch.get_num_threads()} torch threads, CPU "
          f"({torch.__version__}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; median of "
          f"{args.rounds} rounds of {args.steps} steps, the two alternating:\n")
    print("| measured | crops / s (median) | rounds | s / step | waiting for data | ratio |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(r["samples_per_s"] for r in next(iter(results.values())))
    for name, rows in results.items():
        speed = statistics.median(r["samples_per_s"] for r in rows)
        each = ", ".join(f"{r['samples_per_s']:.0f}" for r in rows)
        print(f"| {name} | {speed:.1f} | {each} | "
              f"{statistics.median(r['step_s'] for r in rows):.3f} | "
              f"{100 * statistics.median(r['data_share'] for r in rows):.0f}% | {speed / base:.2f}x |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, help="a prepared folder to read (default: prepare a small slice)")
    parser.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--arch", nargs="*", default=None, help="architectures (default: all registered)")
    parser.add_argument("--steps", type=int, default=0, help="measured steps per architecture (0: per-arch default)")
    parser.add_argument("--config", type=Path, help="measure this training recipe (a hyperface train config)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument("--baseline", help="git revision whose code to measure the recipe with too")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE",
                        help="measure the recipe with and without these overrides too (e.g. run.cpu_amp=true)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of --baseline or --variant")
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # one recipe measurement, for --baseline
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.baseline and args.variant:
        parser.error("--baseline and --variant: compare one thing at a time")
    if args.config and (args.baseline or args.variant):
        args.steps = args.steps or 30
        return compare_recipe(args)
    if args.config:
        row = measure_recipe(args.config, args.set, args.steps or 30)
        if args.json:
            args.json.write_text(json.dumps(row))
        else:
            print(f"| {args.config} | {row['samples_per_s']:.1f} crops/s | {row['step_s']:.3f} s / step | "
                  f"{100 * row['data_share']:.0f}% waiting for data |")
        return 0
    archs = args.arch or list_models()
    tmp = Path(tempfile.mkdtemp(prefix="hyperface-bench-"))
    rows = []
    try:
        for arch in archs:
            if arch in OWN_LOOPS:  # batch 256, as train-point-refiner trains
                rows.append(OWN_LOOPS[arch](256, args.steps or 10))
                continue
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
