"""``hyperface experiments report`` on real (tiny) training runs."""

from __future__ import annotations

from hyperface.cli.main import main as cli_main
from hyperface.train.config import config_from_dict
from hyperface.train.report import load_run, markdown_table
from hyperface.train.stages import train
from train_helpers import tiny_config


def test_report_draws_the_comparisons_of_the_runs_given(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    for name, extra in (("exp2a", {}), ("exp3", {"model": {"tasks": ["detection", "landmarks"]}})):
        cfg = tiny_config(tiny_data, runs, run={"name": name}, optim={"epochs": 2},
                          data={"max_train_samples": 16, "max_val_samples": 16}, **extra)
        train(config_from_dict(cfg))
    out = tmp_path / "report"
    assert cli_main(["experiments", "report", str(runs / "exp2a"), str(runs / "exp3"), str(tmp_path / "nothing"),
                     "--out", str(out)]) == 0
    assert (out / "exp2a_vs_exp3.png").stat().st_size > 10_000
    assert (out / "all_runs.png").is_file()
    assert not (out / "exp1_vs_exp2a.png").exists()  # exp1 was not given
    text = (out / "report.md").read_text()
    assert "| exp2a | hyperface-compact |" in text and "| exp3 |" in text
    assert "![exp2a_vs_exp3](exp2a_vs_exp3.png)" in text
    run = load_run(runs / "exp3")
    assert run.column("train_loss_landmarks")[0] == [1.0, 2.0]
    table = markdown_table([run])
    assert "val pose" not in table and "(68 pts)" in table
    assert cli_main(["experiments", "report", str(tmp_path / "nothing"), "--out", str(out)]) == 1
