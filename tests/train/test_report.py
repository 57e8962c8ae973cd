"""``hyperface experiments report`` on real (tiny) training runs: seeds grouped, snapshots drawn."""

from __future__ import annotations

import numpy as np

from hyperface.cli.main import main as cli_main
from hyperface.train.config import config_from_dict
from hyperface.train.report import group_runs, load_run, loss_changes, markdown_table, paired_differences, results_table
from hyperface.train.snapshots import read_snapshots
from hyperface.train.stages import train
from train_helpers import tiny_config


def test_report_groups_seeds_and_draws_the_comparisons_of_the_runs_given(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    small = {"max_train_samples": 16, "max_val_samples": 16}
    plan = (("exp2a", 0, {}), ("exp2a", 1, {}), ("exp3", 0, {"model": {"tasks": ["detection", "landmarks"]}}))
    for name, seed, extra in plan:
        cfg = tiny_config(tiny_data, runs / f"seed-{seed}", run={"name": name, "seed": seed},
                          optim={"epochs": 2}, data=small, **extra)
        train(config_from_dict(cfg))
    # experiment 5's shape: continue seed 0's exp2a from its best weights
    cfg = tiny_config(tiny_data, runs / "seed-0", run={"name": "exp5", "seed": 0}, optim={"epochs": 1}, data=small,
                      model={"init": str(runs / "seed-0" / "exp2a" / "best.safetensors")},
                      loss={"optimise": ["landmarks"]})
    train(config_from_dict(cfg))

    out = tmp_path / "report"
    folders = [runs / "seed-0" / "exp2a", runs / "seed-1" / "exp2a", runs / "seed-0" / "exp3",
               runs / "seed-0" / "exp5", tmp_path / "nothing"]
    assert cli_main(["experiments", "report", *map(str, folders), "--out", str(out)]) == 0
    assert (out / "exp2a_vs_exp3.png").stat().st_size > 10_000
    assert (out / "exp5.png").is_file() and (out / "all_runs.png").is_file()
    assert not (out / "exp1_vs_exp2a.png").exists()  # exp1 was not given
    assert (out / "landmarks_exp2a.jpg").stat().st_size > 5_000
    text = (out / "report.md").read_text()
    assert "| exp2a | 0 | hyperface-compact |" in text and "| exp2a | 1 |" in text and "| exp3 | 0 |" in text
    assert "![exp2a_vs_exp3](exp2a_vs_exp3.png)" in text and "landmarks_exp3.jpg" in text
    assert "Loss at the start" in text  # exp5 continued exp2a's weights

    groups = group_runs([load_run(f) for f in folders[:4]])
    assert [(n, [r.seed for r in m]) for n, m in groups] == [("exp2a", [0, 1]), ("exp3", [0]), ("exp5", [0])]
    table = results_table(groups)
    row = next(line for line in table.splitlines() if line.startswith("| exp2a |"))
    nmes = [100 * r.best_row()["val_nme68"] for r in groups[0][1]]
    assert f"{np.mean(nmes):.2f} ± {np.std(nmes, ddof=1):.2f}" in row  # mean ± sample sd over the two seeds
    assert "| exp3 | 0 |" in table and "±" not in next(x for x in table.splitlines() if x.startswith("| exp3 |"))

    paired = paired_differences(groups[0], groups[1])  # exp3 has seed 0 only: one pair
    nme_row = next(line for line in paired.splitlines() if line.startswith("| 68-pt NME"))
    a0, b0 = groups[0][1][0].best_row()["val_nme68"], groups[1][1][0].best_row()["val_nme68"]
    assert f"{100 * (b0 - a0):+.2f}" in nme_row and "exp3 − exp2a per seed" in paired
    assert "| exp5 | landmarks |" in loss_changes(groups) and "exp2a" not in loss_changes(groups)

    exp5 = groups[2][1][0]
    parent = groups[0][1][0]
    best_epoch = parent.best_row()["epoch"]
    xs, ys = exp5.column("val_loss_landmarks", with_start=True)
    assert xs == [0.0, 1.0]
    assert ys[0] == next(r["val_loss_landmarks"] for r in parent.rows if r["epoch"] == best_epoch)
    assert exp5.column("val_loss_landmarks")[0] == [1.0]

    run = load_run(runs / "seed-0" / "exp3")
    assert run.column("train_loss_landmarks")[0] == [1.0, 2.0]
    table = markdown_table([run])
    assert "val pose" not in table and "(68 pts)" in table
    assert cli_main(["experiments", "report", str(tmp_path / "nothing"), "--out", str(out)]) == 1


def test_snapshots_hold_the_same_faces_every_epoch_in_crop_pixels(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, tmp_path, run={"name": "snap"}, optim={"epochs": 3},
                      data={"max_train_samples": 16, "max_val_samples": 24})
    train(config_from_dict(cfg))
    snaps = read_snapshots(tmp_path / "snap")
    assert [s.epoch for s in snaps] == [1, 2, 3]
    first, last = snaps[0], snaps[-1]
    assert first.images.dtype == np.uint8 and first.images.shape[1:] == (32, 32, 3) and len(first.images) >= 1
    np.testing.assert_array_equal(first.images, last.images)
    np.testing.assert_array_equal(first.truth, last.truth)
    assert not np.allclose(first.pred, last.pred)  # the model moved
    # the points sit on what they name in the picture the network saw: the eyes and lips are drawn as
    # dark lines through their points, so the picture is darkest on the points themselves, not on the
    # points drawn for a crop 1.25 times larger or smaller (a window mistaken for the stored crop's)
    assert first.truth.shape == first.pred.shape == (len(first.images), 68, 2)
    on = _darkness_on(first.images, first.truth[:, 36:60])
    for factor in (1 / 1.25, 1.25):
        moved = (first.truth[:, 36:60] + 0.5 - 16) * factor + 16 - 0.5  # scaled about the crop's centre
        assert on > _darkness_on(first.images, moved) + 10, factor


def _darkness_on(images: np.ndarray, points: np.ndarray) -> float:
    """How much darker (grey levels) the pictures are at ``points`` than over the face's middle half."""
    grey = images.astype(np.float64).mean(axis=3)
    size = grey.shape[1]
    at = [g[int(round(y)), int(round(x))] for g, face in zip(grey, points) for x, y in face
          if 0 <= round(x) < size and 0 <= round(y) < size]
    return float(np.median(grey[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4]) - np.mean(at))
