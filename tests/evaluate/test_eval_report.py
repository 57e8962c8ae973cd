"""The report: one table with a row per model and mode; JSON without NaN; plots as PNG files."""

from __future__ import annotations

import json

import numpy as np

from hyperface.evaluate.metrics import match_detections
from hyperface.evaluate.plots import write_plots
from hyperface.evaluate.report import build_table, report_dict, to_markdown, write_report_json
from hyperface.evaluate.results import FaceResult, RunResult
from hyperface.evaluate.summary import summarize


def _run(model: str, mode: str, shift: float) -> RunResult:
    faces = [FaceResult(image=f"i{k}", face=0, nme_set="ibug68", nme=0.01 * k + shift,
                        pose_pred=np.array([1.0, 2.0, 3.0 + k]), pose_ref=np.zeros(3), pose_source="pnp",
                        gender_true=k % 2, gender_pred=0) for k in range(4)]
    faces.append(FaceResult(image="i9", face=0, nme_set="ibug68", nme=float("nan"),
                            pose_pred=np.full(3, np.nan), pose_ref=np.zeros(3), pose_source="pnp",
                            gender_true=1, gender_pred=-1))
    run = RunResult(model=model, dataset="300w", mode=mode, images=5, faces=faces, score_threshold=0.5)
    if mode == "full":
        run.detections = [match_detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.2], [[0, 0, 10, 10]])]
        run.detections_default = [match_detections([[0, 0, 10, 10]], [0.9], [[0, 0, 10, 10]])]
    return run


def test_table_has_a_row_per_model_and_mode(tmp_path):
    runs = [_run("a", "full", 0.0), _run("a", "box", 0.0), _run("b", "full", 0.02)]
    summaries = [summarize(r) for r in runs]
    header, rows = build_table(summaries)
    assert [r[:2] for r in rows] == [["a", "full"], ["a", "box"], ["b", "full"]]
    col = header.index("300w: NME68 mean %")
    assert rows[0][col] == "1.50" and rows[2][col] == "3.50"  # mean of 0, 1, 2, 3 % (+2)
    assert rows[0][header.index("300w: NME68 found")] == "4/5"
    assert rows[0][header.index("300w: pose MAE vs PnP r/p/y (mean) °")] == "1.0/2.0/4.5 (2.50)"
    assert rows[0][header.index("300w: gender acc %")] == "40.0"
    assert rows[0][header.index("300w: det recall %")] == "100.0"
    assert rows[1][header.index("300w: det AP")] == "—"  # no detection in box mode
    assert rows[0][header.index("300w: det recall at P >= 90% %")] == "100.0"  # the face at 0.9, then a false one
    md = to_markdown(summaries)
    assert "AP 1.000; recall 100.0% at precision >= 90% (scores >= 0.90)" in md
    assert md.count("\n| a | ") == 2 and "| b | full |" in md

    path = write_report_json(tmp_path / "r.json", report_dict(summaries, command="x"))
    data = json.loads(path.read_text())
    assert data["table"]["rows"] == rows
    assert data["results"][0]["landmarks"]["ibug68"]["auc"] is not None

    written = write_plots(runs, tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == ["ced_68-point_300w_box.png", "ced_68-point_300w_full.png", "pose_by_yaw_pnp_300w_box.png",
                     "pose_by_yaw_pnp_300w_full.png", "pr_300w_full.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
