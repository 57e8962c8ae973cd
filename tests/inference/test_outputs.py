"""Outputs never destroy inputs or each other; bad settings and huge images are reported, not tracebacks;
files get the user's umask mode."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from hyperface.cli.main import main
from hyperface.data.images import load_image
from hyperface.inference import FaceAnalyzer
from hyperface.inference.inputs import as_rgb
from hyperface.models.registry import create_model
from hyperface.models.weights import save_weights

from inference_stubs import blob_image


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("hyperface-compact", input_size=32, num_points=5, point_set="five")
    return save_weights(model, tmp_path_factory.mktemp("w") / "compact.safetensors")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def photo(path, size=(80, 60)) -> None:
    Image.fromarray(blob_image(*size, [(size[0] / 2, size[1] / 2, 15)])).save(path)


def analyze(weights, *args) -> int:
    return main(["analyze", *map(str, args), "--weights", str(weights), "--proposals", "selective-search",
                 "--no-progress"])


def test_json_onto_an_input_is_refused_and_the_input_kept(weights, tmp_path, capsys):
    image = tmp_path / "x.jpg"
    photo(image)
    before = image.read_bytes()
    assert analyze(weights, image, "--json", image) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert image.read_bytes() == before
    link = tmp_path / "link.jsonl"  # the same file under another name
    os.link(image, link)
    assert analyze(weights, image, "--json", link) == 2
    assert image.read_bytes() == before and load_image(image).shape == (60, 80, 3)


def test_drawing_into_the_input_folder_never_overwrites_an_input(weights, tmp_path, capsys):
    photo(tmp_path / "a.jpg")
    photo(tmp_path / "a.faces.jpg")  # looks like an earlier run's picture; it is an input now
    before = (tmp_path / "a.faces.jpg").read_bytes()
    assert analyze(weights, tmp_path, "--draw", tmp_path) == 2
    assert "which is one of the inputs" in capsys.readouterr().err
    assert (tmp_path / "a.faces.jpg").read_bytes() == before


def test_export_onto_its_weights_is_refused(weights, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    copy = tmp_path / "m.safetensors"
    copy.write_bytes(weights.read_bytes())
    assert main(["export", "--weights", str(copy), "--onnx", str(copy)]) == 2
    assert "would destroy that input" in capsys.readouterr().err
    assert copy.read_bytes() == weights.read_bytes()
    assert main(["export", "--weights", str(copy), "--onnx", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_same_stem_images_draw_to_distinct_names(weights, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "a.jpg", (80, 60))
    photo(folder / "a.png", (64, 48))
    photo(folder / "b.png")
    draw = tmp_path / "drawn"
    assert analyze(weights, folder, "--draw", draw) == 0
    names = sorted(p.name for p in draw.iterdir())
    assert names == ["a.jpg.faces.jpg", "a.png.faces.jpg", "b.faces.jpg"]
    assert load_image(draw / "a.jpg.faces.jpg").shape == (60, 80, 3)
    assert load_image(draw / "a.png.faces.jpg").shape == (48, 64, 3)


def test_draw_paths_are_unique_and_deterministic(tmp_path):
    from hyperface.cli.analyze import draw_paths

    x, y, d = tmp_path / "x", tmp_path / "y", tmp_path / "d"
    items = [(x / "a.jpg", "image", x), (x / "a.png", "image", x), (y / "a.jpg", "image", y),
             (x / "a.png.jpg", "image", x), (x / "clip.mp4", "video", x), (x / "clip.avi", "video", x)]
    paths = draw_paths(items, d)
    assert [p.relative_to(d).as_posix() for p in paths] == [
        "a.jpg.faces.jpg", "a.png.faces.jpg", "a.jpg.faces.2.jpg", "a.png.faces.2.jpg",
        "clip.mp4.faces.mp4", "clip.avi.faces.mp4"]
    assert draw_paths(items, d) == paths


def test_outputs_are_checked_before_any_work(weights, tmp_path, capsys, monkeypatch):
    image = tmp_path / "x.png"
    photo(image)
    built = []
    monkeypatch.setattr(FaceAnalyzer, "__init__", lambda *a, **k: built.append(1) or None)
    assert analyze(weights, image, "--json", tmp_path) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert analyze(weights, image, "--draw", tmp_path / "file") == 2
    assert "is a file" in capsys.readouterr().err
    assert analyze(weights, image, "--json", tmp_path / "file" / "out.jsonl") == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert built == []  # refused before the models were loaded


def test_ctrl_c_keeps_an_earlier_complete_json(weights, tmp_path, capsys, monkeypatch):
    for name in ("a.png", "b.png", "c.png"):
        photo(tmp_path / name)
    out = tmp_path / "out.jsonl"
    assert analyze(weights, tmp_path, "--json", out, "--batch-size", "1") == 0
    complete = out.read_text()
    assert len(complete.splitlines()) == 3
    real, calls = FaceAnalyzer.batch, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FaceAnalyzer, "batch", interrupted)
    try:
        status = analyze(weights, tmp_path, "--json", out, "--batch-size", "1")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped analyze as a traceback")
    assert status == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and f"{out} left as it was" in err and "Traceback" not in err
    assert out.read_text() == complete
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def _bomb_png(path, side: int = 20000) -> None:
    """A 1-bit PNG of side x side pixels (about 50 KB): PIL refuses to open it as a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes((1 + side // 8) * side), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_reported_and_the_batch_goes_on(weights, tmp_path, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "a.png")
    _bomb_png(folder / "huge.png")
    photo(folder / "z.png")
    out = tmp_path / "out.jsonl"
    assert analyze(weights, folder, "--json", out) == 1
    assert "huge.png" in caplog.text
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(os.path.basename(r["input"]), "error" in r) for r in records] == [
        ("a.png", False), ("huge.png", True), ("z.png", False)]
    assert "image too large" in records[1]["error"]


def test_outputs_get_the_umask_mode(weights, tmp_path, umask_022):
    photo(tmp_path / "a.png")
    out, draw = tmp_path / "out.jsonl", tmp_path / "drawn"
    assert analyze(weights, tmp_path / "a.png", "--json", out, "--draw", draw) == 0
    assert mode(out) == 0o644 and mode(draw / "a.faces.jpg") == 0o644
    assert mode(save_weights(create_model("hyperface-compact", input_size=32), tmp_path / "w.safetensors")) == 0o644


def test_onnx_export_gets_the_umask_mode(weights, tmp_path, umask_022):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(weights), "--onnx", str(out)]) == 0
    assert mode(out) == 0o644


def test_bad_min_face_and_missing_gpu_are_usage_errors(weights, tmp_path, capsys):
    photo(tmp_path / "a.png")
    assert main(["analyze", str(tmp_path / "a.png"), "--weights", str(weights), "--min-face", "0",
                 "--no-progress"]) == 2
    assert "--min-face must be a positive number" in capsys.readouterr().err
    assert analyze(weights, tmp_path / "a.png", "--device", "gpu") == 2
    assert "--device" in capsys.readouterr().err
    with pytest.raises(ValueError, match="min_face.* > 0"):
        FaceAnalyzer(weights, proposal_options={"min_face": 0})
    if not torch.cuda.is_available():
        assert analyze(weights, tmp_path / "a.png", "--device", "cuda") == 2
        assert "no CUDA GPU is available" in capsys.readouterr().err
        with pytest.raises(ValueError, match="no CUDA GPU"):
            FaceAnalyzer(weights, device="cuda")


def test_rgba_array_is_composited_on_white_like_an_rgba_file(tmp_path):
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, :15, 3] = 255  # left half opaque red, right half transparent
    rgba[:5, :, 3] = 128
    path = tmp_path / "t.png"
    Image.fromarray(rgba, "RGBA").save(path)
    from_file = load_image(path)
    from_array, _, _ = as_rgb(rgba)
    np.testing.assert_array_equal(from_array, from_file)
    assert tuple(from_array[10, 25]) == (255, 255, 255)  # transparent -> white
    np.testing.assert_array_equal(as_rgb(rgba[..., 0])[0], np.repeat(rgba[..., :1], 3, axis=2))  # grey


def test_evaluate_reports_and_plots_get_the_umask_mode(tmp_path, umask_022):
    from hyperface.evaluate import plots
    from hyperface.evaluate.report import write_report_json

    assert mode(write_report_json(tmp_path / "r" / "report.json", {"table": []})) == 0o644
    fig = plots._figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [0, 1])
    assert mode(plots._save(fig, tmp_path / "p" / "curve.png")) == 0o644
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["curve.png"]


def test_evaluate_refuses_outputs_over_its_weights_or_onto_folders(weights, tmp_path, capsys):
    copy = tmp_path / "m.safetensors"
    copy.write_bytes(weights.read_bytes())
    data = f"pts:{tmp_path / 'nowhere'}"
    assert main(["evaluate", "--weights", str(copy), "--data", data, "--json", str(copy)]) == 2
    assert "--json" in (err := capsys.readouterr().err) and "is one of the inputs" in err
    assert copy.read_bytes() == weights.read_bytes()
    assert main(["evaluate", "--weights", str(copy), "--data", data, "--markdown", str(tmp_path)]) == 2
    assert "--markdown" in (err := capsys.readouterr().err) and "is a folder" in err
    assert main(["evaluate", "--weights", str(copy), "--data", data, "--plots", str(copy)]) == 2
    assert "--plots" in (err := capsys.readouterr().err) and "is a file" in err
