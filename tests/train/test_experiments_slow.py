"""The study's five experiments, end to end on a small slice of the data pool, then the report.

Slow (several minutes on two CPU cores: AlexNet-sized models at 227 px); run with ``-m slow``. The
slice is prepared here with the real prepare code: 40 300-W faces (68 points, PnP pose, non-faces
from the same photos) and 40 face-free images (CIFAR-10 and photos) for experiment 2(b).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import prepare_folder

from hyperface.cli.main import main as cli_main
from hyperface.models import read_config
from hyperface.train.logs import read_csv

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("exp1", "exp2a", "exp2b", "exp3", "exp4", "exp5")


def _slice(shared: Path, tmp: Path) -> tuple[Path, Path]:
    faces, negatives = tmp / "src" / "faces", tmp / "src" / "negatives"
    faces.mkdir(parents=True)
    negatives.mkdir(parents=True)
    for folder, count in (("lfpw", 28), ("helen", 12)):
        for image in sorted((shared / "300w" / folder / "trainset").glob("*.jpg"))[:count]:
            shutil.copy(image, faces)
            shutil.copy(image.with_suffix(".pts"), faces)
    for image in sorted((shared / "negatives" / "cifar10").iterdir())[:32] + sorted(
            (shared / "negatives" / "photos").iterdir())[:8]:
        shutil.copy(image, negatives)
    opts = dict(crop_size=284, context=1.25, positives_per_face=3, partials_per_face=1, negatives_per_face=3,
                negatives_per_image=3, val_fraction=0.2, images_per_shard=16)
    return (prepare_folder([f"pts:{faces}"], tmp / "genface", **opts),
            prepare_folder([f"negatives:{negatives}"], tmp / "negatives", **opts))


@pytest.mark.slow
def test_five_experiments_end_to_end_and_report(shared_data, tmp_path):
    genface, negatives = _slice(shared_data, tmp_path)
    runs = tmp_path / "runs"
    common = ["run.out_dir=" + str(runs), f"data.train=[{genface}]", "optim.epochs=2", "stage1.optim.epochs=1",
              "optim.batch_size=16", "stage1.optim.batch_size=16", "data.max_train_samples=96",
              "data.max_val_samples=48", "optim.warmup_steps=0", "stage1.optim.warmup_steps=0", "data.num_workers=1",
              "run.progress=false", "run.log_every=1"]
    extra = {"exp2b": [f"stage1.negatives=[{negatives}]"],
             "exp5": [f"model.init={runs / 'exp2a' / 'best.safetensors'}", "optim.epochs=2"]}
    for name in EXPERIMENTS:
        args = ["train", "--config", str(REPO / "configs" / "experiments" / f"{name}.yaml")]
        for item in common + extra.get(name, []):
            args += ["--set", item]
        assert cli_main(args) == 0, name
        rows = read_csv(runs / name / "metrics.csv")
        assert [r["epoch"] for r in rows] == [1.0, 2.0], name
        assert all(r["val_faces68"] > 0 for r in rows), name

    # 2(a), 2(b), 3: the main model's convolutions came from stage one's R-CNN
    for name in ("exp2a", "exp2b", "exp3"):
        assert (runs / name / "stage1" / "done.json").is_file()
        assert read_config(runs / name / "best.safetensors").meta["trunk_init"].startswith("rcnn-face")
    # 4: two tasks, positives only; 5: only the landmark branch and the trunk moved, all branches logged
    assert read_config(runs / "exp4" / "best.safetensors").tasks == ("landmarks", "pose")
    before, after = load_file(runs / "exp2a" / "best.safetensors"), load_file(runs / "exp5" / "last.safetensors")
    for key in before:
        if key.startswith("heads."):
            assert torch.equal(before[key], after[key]) != (".landmarks." in key), key
    assert not torch.equal(before["trunk.conv1.weight"], after["trunk.conv1.weight"])
    exp5 = read_csv(runs / "exp5" / "metrics.csv")[-1]
    assert {"val_loss_detection", "val_loss_pose", "train_loss_pose", "val_loss_landmarks"} <= set(exp5)

    out = tmp_path / "report"
    assert cli_main(["experiments", "report", *(str(runs / n) for n in EXPERIMENTS), "--out", str(out)]) == 0
    for stem in ("exp1_vs_exp2a", "exp2a_vs_exp2b", "exp2a_vs_exp3", "exp1_vs_exp4", "exp5", "all_runs"):
        assert (out / f"{stem}.png").stat().st_size > 10_000, stem
    text = (out / "report.md").read_text()
    assert all(f"| {n} | 0 | hyperface-alexnet |" in text for n in EXPERIMENTS)  # experiment, seed, arch
