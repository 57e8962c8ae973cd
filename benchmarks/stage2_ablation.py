"""Stage two: where its training loses. Trains each row of the ablation (today's recipe,
configs/stage2-scratch.yaml, with one change) at the same budget of training crops, and prints the
table of their validation numbers.

    python benchmarks/stage2_ablation.py run --out runs/ablation              # every row, one after another
    python benchmarks/stage2_ablation.py run --out runs/ablation --rows base,wing
    python benchmarks/stage2_ablation.py report --out runs/ablation          # the markdown table

``run`` trains the rows in order, each with ``hyperface train`` in a child process (its output in
``OUT/NAME.log``); a finished row is skipped and a started one resumed (``--resume``), so the same
command continues after an interruption. Every row trains the base recipe's budget, 4 epochs of
60,000 crops: rows that change the data mix change which crops, not how many. ``report`` reads each
row's ``metrics.csv`` (the last epoch: equal budgets, not best epochs) and prints NME of the 68-point
faces (300-W) and of the 5-point faces (MTFL) of the validation split, in the aligned crop's terms,
gender accuracy, pose MAE, visibility error and the training speed the run logged (crops per second
of its training steps, on whatever else shared the cores then). ``--reference W`` (repeatable) adds a
row for a trained stage-two weights file measured the same way (e.g. the bundled file and its
predecessor).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

BASE = "configs/stage2-scratch.yaml"
OCCLUSION_OFF = ["augment.mask=0", "augment.sunglasses=0", "augment.hand=0", "augment.greyscale=0",
                 "augment.low_light=0", "augment.blur=0", "augment.noise=0", "augment.jpeg=0",
                 "augment.self_occlusion=0"]

#: name -> (what changes, --set overrides); the order is the order they train in.
ROWS: dict[str, tuple[str, list[str]]] = {
    "base": ("today's recipe (68-point faces 52% of the crops, L1, occluders, 96 px, cosine 2e-3)", []),
    "no-occlusion": ("without occluders, degradations and self-occlusion", OCCLUSION_OFF),
    "only68": ("68-point faces only (300-W; no gender labels)",
               ["data.oversample={landmarks: 1.0, landmarks5: 0.0, gender: 0.0}"]),
    "share77": ("68-point faces 77% of the crops (oversample 48, not 16)", ["data.oversample.landmarks=48"]),
    "wing": ("wing loss (w 0.1, eps 0.02 box sides) instead of L1", ["loss.landmark_loss=wing"]),
    "onecycle": ("one-cycle schedule: peak 4e-3 after 30% warm-up, cosine to 0",
                 ["optim.lr=4e-3", "optim.warmup_steps=1125"]),
    "input128": ("128 px input (crops prepared at 160)",
                 ["model.arch_kwargs={input_size: 128}", "data.train=[data/aligned-160]"]),
    "landmarks-only": ("the landmark task alone (single-task run)", ["model.tasks=[landmarks]"]),
    "gender-only": ("the gender task alone (single-task run)", ["model.tasks=[gender]"]),
    "rotate8": ("rotation +-8 degrees, not 15", ["augment.rotate=8"]),
    "landmarks40": ("the landmark loss weighted 40, not 20 (the other tasks' weights kept)",
                    ["loss.weights.landmarks=40"]),
    "width15": ("a trunk 1.5x as wide (2.25x the MACs), trained under run.cpu_amp (the bf16 row: no change)",
                ["model.arch_kwargs={width: 1.5}", "run.cpu_amp=true"]),
    "bins": ("landmarks read from x and y bins (SimCC-style head, soft-argmax), not regressed",
             ["model.arch_kwargs={landmark_head: bins}"]),
    "fc512": ("the fused layer and the task branches twice as wide (fc 512, branches 256; the trunk kept)",
              ["model.arch_kwargs={fc_channels: 512, branch_channels: 256}"]),
    "dropout0": ("no dropout on the fused layer (0, not 0.1)", ["model.arch_kwargs={dropout: 0.0}"]),
    "bf16": ("bfloat16 autocast on the CPU (run.cpu_amp): 1.2x the crops per second on quiet cores",
             ["run.cpu_amp=true"]),
    # separate trunks at equal cost: two networks of width 0.71 (25 M MACs each, 52% of the base's 48 M)
    "split-lv": ("separate trunks, this one's half: landmarks and visibility, width 0.71 (0.52x the MACs)",
                 ["model.tasks=[landmarks, visibility]", "model.arch_kwargs={width: 0.71}"]),
    "split-pg": ("separate trunks, the other half: pose and gender, width 0.71 (0.52x the MACs)",
                 ["model.tasks=[pose, gender]", "model.arch_kwargs={width: 0.71}"]),
}

COLUMNS = ("val_nme68", "val_nme5", "val_acc68@0.08", "val_gender_acc", "val_pose_mae", "val_loss_visibility")


def command(name: str, out: Path) -> list[str]:
    """The ``hyperface train`` arguments of a row (a new run, or --resume of a started one)."""
    run = out / name
    if (run / "config.yaml").is_file():
        return ["train", "--resume", str(run)]
    sets = [f"run.out_dir={out}", f"run.name={name}", "run.save_every=250", *ROWS[name][1]]
    return ["train", "--config", BASE, *[a for s in sets for a in ("--set", s)]]


def run_rows(out: Path, names: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "hyperface.cli.main"]
    # Idle OpenMP threads sleep instead of spinning: on cores shared with other jobs a spinning
    # thread waits for one that is descheduled, which can cost most of the speed.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    for name in names:
        if (out / name / "done.json").is_file():
            print(f"{name}: done", flush=True)
            continue
        args = command(name, out)
        print(f"{name}: hyperface {' '.join(args)}", flush=True)
        with open(out / f"{name}.log", "a", encoding="utf-8") as log:
            code = subprocess.run([*exe, *args], env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        if code != 0:
            print(f"{name}: exit status {code}; see {out / name}.log", flush=True)
            return code
    return 0


def epoch_rows(run: Path) -> list[dict[str, str]] | None:
    path = run / "metrics.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows if rows else None


def measure_weights(weights: Path) -> dict[str, float]:
    """The validation metrics of a stage-two weights file on the base recipe's validation faces, as
    training measures them (``hyperface.train.engine.evaluate``, self-occlusion labels included)."""
    import torch

    from hyperface.models import load_model
    from hyperface.train.config import load_config
    from hyperface.train.data import EpochSampler, TrainingSet, make_loader
    from hyperface.train.engine import evaluate
    from hyperface.train.loss import MultiTaskLoss
    from hyperface.train.stages import _data_geometry, _main_stage

    cfg = load_config(BASE)
    model = load_model(weights).eval()
    spec = _main_stage(cfg, Path("runs"), *_data_geometry(cfg), None)  # for its validation parts only
    c = model.config
    val = TrainingSet(spec.val_parts, input_size=c.input_size, num_points=c.num_points, point_set=c.point_set,
                      augment=None, self_occlusion=cfg.augment.self_occlusion, input_context=model.input_context)
    loader = make_loader(val, EpochSampler(len(val), shuffle=False, pad=False), batch_size=128, num_workers=0,
                         drop_last=False)
    criterion = MultiTaskLoss(c.tasks, cfg.loss.weights, point_set=c.point_set, landmark_loss="l1")
    return evaluate(model, criterion, loader, device=torch.device("cpu"))


def report(out: Path, names: list[str], references: list[Path] = ()) -> int:
    def pct(v: str | None) -> str:
        return f"{100 * float(v):.2f}%" if v not in (None, "") else "-"

    def num(v: str | None, digits: int = 2) -> str:
        return f"{float(v):.{digits}f}" if v not in (None, "") else "-"

    print("| row | change | epochs | 68-pt NME | 5-pt NME | 68-pt failures @0.08 | gender | pose MAE | "
          "visibility loss | crops / s | command |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for reference in references:
        m = {f"val_{k}": str(v) for k, v in measure_weights(reference).items()}
        fail = 1 - float(m["val_acc68@0.08"])
        print(f"| reference | {reference} (trained elsewhere, measured here) | | {pct(m.get('val_nme68'))} | "
              f"{pct(m.get('val_nme5'))} | {pct(fail)} | {pct(m.get('val_gender_acc'))} | "
              f"{num(m.get('val_pose_mae'))} | {num(m.get('val_loss_visibility'), 4)} | | |")
    for name in names:
        rows = epoch_rows(out / name)
        what, sets = ROWS[name]
        cmd = "`" + " ".join([f"--set {s}" if " " not in s else f'--set "{s}"' for s in sets]) + "`" if sets else "(none)"
        if rows is None:
            print(f"| {name} | {what} | 0 | | | | | | | | {cmd} |")
            continue
        r = rows[-1]
        speed = sum(float(x["samples_per_s"]) for x in rows) / len(rows)
        fail = 1 - float(r["val_acc68@0.08"]) if r.get("val_acc68@0.08") else None
        print(f"| {name} | {what} | {r['epoch']} | {pct(r.get('val_nme68'))} | {pct(r.get('val_nme5'))} | "
              f"{pct(fail) if fail is not None else '-'} | {pct(r.get('val_gender_acc'))} | "
              f"{num(r.get('val_pose_mae'))} | {num(r.get('val_loss_visibility'), 4)} | {speed:.0f} | {cmd} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "report"))
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    parser.add_argument("--reference", type=Path, action="append", default=[],
                        help="report: a stage-two weights file to measure beside the rows (repeatable)")
    args = parser.parse_args()
    names = [n for n in args.rows.split(",") if n]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; choose from {', '.join(ROWS)}")
    return run_rows(args.out, names) if args.action == "run" else report(args.out, names, args.reference)


if __name__ == "__main__":
    sys.exit(main())
