"""benchmarks/paired_nme.py: two evaluate --per-face files compared face by face."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_modules import load_benchmark

paired_nme = load_benchmark("paired_nme")


def _write(path: Path, errors: dict[str, list[float | None]]) -> Path:
    results = [{"dataset": name, "per_face": [{"image": f"img{i}.jpg", "face": 0, "nme": e} for i, e in enumerate(es)]}
               for name, es in errors.items()]
    path.write_text(json.dumps({"results": results}))
    return path


def test_a_shift_every_face_shares_is_found_and_its_interval_excludes_zero(tmp_path, capsys):
    rng = np.random.default_rng(1)
    old = rng.uniform(0.02, 0.06, 300)
    new = old - 0.002 + rng.normal(0, 0.001, 300)
    a = _write(tmp_path / "old.json", {"300w": old.tolist()})
    b = _write(tmp_path / "new.json", {"300w": new.tolist()})
    r = paired_nme.paired(old, new)
    assert r["high"] < 0 and r["low"] < r["diff"] < r["high"] and r["better"] > 0.9
    assert paired_nme.main([str(a), str(b)]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert row.startswith("| 300w | 300 |") and "-0.2" in row


def test_noise_alone_gives_an_interval_around_zero_and_unmatched_or_missed_faces_are_left_out(tmp_path):
    rng = np.random.default_rng(2)
    old = rng.uniform(0.02, 0.06, 400)
    r = paired_nme.paired(old, old + rng.normal(0, 0.005, 400))
    assert r["low"] < 0 < r["high"]
    errors = paired_nme.face_errors(_write(tmp_path / "a.json", {"mtfl": [0.05, None, 0.04]}))
    assert errors == {("mtfl", "img0.jpg", 0): 0.05, ("mtfl", "img2.jpg", 0): 0.04}


def test_a_file_without_per_face_results_is_named(tmp_path):
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({"results": [{"dataset": "300w"}]}))
    with pytest.raises(SystemExit, match="plain.json.*--per-face"):
        paired_nme.face_errors(path)


def test_by_pose_splits_each_dataset_by_its_pose_bin_or_the_reference_yaw(tmp_path, capsys):
    def write(path, shift):
        faces = [{"image": f"a{i}.jpg", "face": 0, "nme": 0.04 + (shift if yaw >= 30 else 0.0), "pose_bin": None,
                  "pose_ref": [0.0, 0.0, yaw if i % 2 else -yaw]} for i, yaw in enumerate([5, 10, 20, 35, 40, 50])]
        mtfl = [{"image": f"m{i}.jpg", "face": 0, "nme": 0.05, "pose_bin": b, "pose_ref": None}
                for i, b in enumerate(["frontal", "frontal", "profile"])]
        path.write_text(json.dumps({"results": [{"dataset": "300w", "per_face": faces},
                                                {"dataset": "mtfl", "per_face": mtfl}]}))
        return path

    assert paired_nme.pose_group({"pose_bin": None, "pose_ref": [0, 0, -31.0]}) == "yaw +-30 and over"
    assert paired_nme.pose_group({"pose_bin": None, "pose_ref": [0, 0, 15.0]}) == "yaw +-15-30"
    assert paired_nme.pose_group({"pose_bin": None, "pose_ref": None}) is None
    old, new = write(tmp_path / "old.json", 0.0), write(tmp_path / "new.json", -0.01)
    assert paired_nme.main([str(old), str(new), "--by-pose"]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {"300w", "300w, yaw +-0-15", "300w, yaw +-15-30", "300w, yaw +-30 and over",
                         "mtfl", "mtfl, frontal", "mtfl, profile"}
    assert "| 3 |" in rows["300w, yaw +-30 and over"] and "-1.000" in rows["300w, yaw +-30 and over"]
    assert "+0.000" in rows["300w, yaw +-0-15"] and "| 2 |" in rows["mtfl, frontal"]
