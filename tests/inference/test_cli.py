"""``hyperface analyze``: folders, videos with a broken frame, JSON lines schema, drawings, exit status."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from hyperface.cli.main import main
from hyperface.inference.assets import ASSETS, DEFAULT_WEIGHTS
from hyperface.models.registry import create_model
from hyperface.models.weights import save_weights

from inference_stubs import blob_image, write_video

FACE_KEYS = {"box", "score", "landmarks", "point_set", "visibility", "pose", "gender", "gender_probability",
             "sources"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("hyperface-compact", input_size=32, num_points=5, point_set="five")
    return save_weights(model, tmp_path_factory.mktemp("w") / "compact.safetensors")


def split_records(path) -> tuple[list[dict], list[dict]]:
    """(analysed lines, failure lines) of an analyze --json file; a failure has exactly input, frame, error."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    failed = [r for r in records if "error" in r]
    for rec in failed:
        assert set(rec) == {"input", "frame", "error"} and rec["input"] in rec["error"]
    return [r for r in records if "error" not in r], failed


def check_record(rec: dict) -> None:
    assert set(rec) == {"input", "frame", "width", "height", "faces"}
    assert isinstance(rec["input"], str) and isinstance(rec["width"], int) and isinstance(rec["height"], int)
    assert rec["frame"] is None or isinstance(rec["frame"], int)
    for face in rec["faces"]:
        assert set(face) == FACE_KEYS
        assert len(face["box"]) == 4 and 0.0 <= face["score"] <= 1.0
        assert np.asarray(face["landmarks"]).shape == (5, 2) and face["point_set"] == "five"
        assert len(face["visibility"]) == 5 and set(face["pose"]) == {"roll", "pitch", "yaw"}
        assert face["gender"] in ("male", "female") and 0.5 <= face["gender_probability"] <= 1.0


def test_folder_with_a_broken_image(weights, tmp_path, capsys, caplog):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(blob_image(120, 90, [(60, 45, 20)])).save(folder / "a.png")
    Image.fromarray(blob_image(100, 100, [(50, 50, 25)])).save(folder / "sub" / "b.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("not an image, and not even an image name")
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("a.png 35 20 85 70\nb.jpg 20 20 80 80\nb.jpg 0 0 30 30\n")
    out, draw = tmp_path / "out" / "faces.jsonl", tmp_path / "drawn"
    status = main(["analyze", str(folder), "--weights", str(weights), "--proposals", f"boxes:{boxes}",
                   "--json", str(out), "--draw", str(draw), "--score-threshold", "0", "--no-progress"])
    assert status == 1  # broken.jpg failed
    captured = capsys.readouterr()
    assert "broken.jpg" in caplog.text and "1 failure" in captured.out
    records, failed = split_records(out)
    assert sorted(r["input"] for r in records) == sorted([str(folder / "a.png"), str(folder / "sub" / "b.jpg")])
    assert [(r["input"], r["frame"]) for r in failed] == [(str(folder / "broken.jpg"), None)]
    for rec in records:
        check_record(rec)
        assert len(rec["faces"]) >= 1
    assert (draw / "a.faces.jpg").is_file() and (draw / "sub" / "b.faces.jpg").is_file()
    assert not list(out.parent.glob(".*.tmp"))  # the temporary file was renamed


def test_video_with_a_broken_frame(weights, tmp_path, caplog):
    video = tmp_path / "clip.avi"
    write_video(video, 6, broken=2)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"input": str(video), "frame": i, "boxes": [[14 + 4 * i, 16, 46 + 4 * i, 48]]}
                                 for i in range(6)]))
    out, draw = tmp_path / "v.jsonl", tmp_path / "drawn"
    status = main(["analyze", str(video), "--weights", str(weights), "--proposals", f"boxes:{boxes}",
                   "--json", str(out), "--draw", str(draw), "--score-threshold", "0", "--smooth",
                   "--batch-size", "2", "--no-progress"])
    assert status == 1
    assert "clip.avi: frame 2" in caplog.text
    records, failed = split_records(out)
    assert [r["frame"] for r in records] == [0, 1, 3, 4, 5]
    assert [r["frame"] for r in failed] == [2] and "clip.avi: frame 2" in failed[0]["error"]
    for rec in records:
        check_record(rec)
        assert rec["width"] == 96 and rec["height"] == 64 and len(rec["faces"]) == 1
    cap = cv2.VideoCapture(str(draw / "clip.faces.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


def test_all_good_exits_0_and_missing_files_exit_2_before_the_models_load(weights, tmp_path, capsys, monkeypatch):
    image = tmp_path / "one.png"
    Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "o.jsonl"
    assert main(["analyze", str(image), "--weights", str(weights), "--proposals", "selective-search",
                 "--json", str(out), "--no-progress"]) == 0
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["input"] == str(image) and rec["width"] == 50 and rec["height"] == 40 and rec["frame"] is None
    capsys.readouterr()
    from hyperface.inference import FaceAnalyzer

    monkeypatch.setattr(FaceAnalyzer, "__init__", lambda *a, **k: pytest.fail("the models were loaded"))
    missing_out = tmp_path / "missing.jsonl"
    assert main(["analyze", str(image), str(tmp_path / "nope.jpg"), "--weights", str(weights), "--proposals",
                 "selective-search", "--json", str(missing_out), "--no-progress"]) == 2
    assert "nope.jpg: no such file" in capsys.readouterr().err
    assert not missing_out.exists() and not (tmp_path / "missing.jsonl.partial").exists()
    assert main(["analyze", str(image), "--weights", str(tmp_path / "w.safetensors")]) == 2
    assert "w.safetensors" in capsys.readouterr().err


def test_example_finds_the_astronauts_face_with_the_bundled_model(tmp_path, capsys):
    assert (ASSETS / DEFAULT_WEIGHTS).is_file(), "the package must ship its default weights"
    out = tmp_path / "e.jsonl"
    assert main(["analyze", "--example", "--json", str(out), "--no-progress"]) == 0
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["width"] == 512 and len(rec["faces"]) >= 1
    best = rec["faces"][0]
    x0, y0, x1, y1 = best["box"]
    assert x0 < 225 < x1 and y0 < 130 < y1  # her face, centred near (225, 130) in the photo
    assert len(best["landmarks"]) == 68 and best["gender"] in ("male", "female")
